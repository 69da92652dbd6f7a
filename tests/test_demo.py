"""The newcomer's path: `make demo`'s loop and the notebooks in notebooks/, executed for real."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def test_the_demo_loop_runs_end_to_end(tmp_path, client):
    from mlops_magics.demo import run_demo

    lines: list[str] = []
    done = run_demo(tmp_path / "demo-output", echo=lines.append)
    steps = [(step, what) for step, what, _ in done["steps"]]
    assert steps[0] == ("sweep", "4 of 4 points finished")
    assert steps[1][0] == "promote" and steps[1][1].startswith("promoted")
    assert ("demo-monitor", "finished") in steps  # the clean batch raises nothing
    assert ("demo-monitor-drifted", "finished, alert drift") in steps
    assert [s for s, _ in steps].count("demo-retrain") == 1  # the alert triggered exactly one retrain
    out = tmp_path / "demo-output"
    for name in ("drift.png", "drift.svg", "f1-history.png", "f1-history.svg", "index.html"):
        assert (out / name).stat().st_size > 1000, name
    index = (out / "index.html").read_text()
    assert "demo-retrain" in index and 'src="drift.svg"' in index
    executed = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert len(executed) == 4 and any(n.startswith("demo-monitor-drifted") for n in executed)
    champion = client.get_model_version_by_alias("breast-cancer", "champion")
    assert champion.run_id == done["sweep"].best.job.run_id
    assert "demo summary" in "\n".join(lines) and "make ui" in lines[-1]


def test_quickstart_notebook_runs_top_to_bottom(tmp_path, client):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = ["".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in c.get("outputs", []))
             for c in nb.cells if c.cell_type == "code"]
    assert any("C=2.0 (was 0.5)" in t for t in texts)  # the second tracked run says what changed
    assert any("drifted" in t for t in texts)  # %drift
    runs = [r for r in client.search_runs(["0"]) if r.data.tags.get("mlops.kind") == "cell"]
    assert sorted(r.data.params["C"] for r in runs) == ["0.5", "2.0"]
