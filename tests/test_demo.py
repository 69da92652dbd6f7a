"""The newcomer's path: `make demo`'s loop and the notebooks in notebooks/, executed for real.

One run of the demo (about four minutes on two cores) is checked for the story it tells: the
clean batch said to have no drift, validation and the champion/challenger comparison on every
batch, a retrain on newer data promoted (or not) after recorded checks, counts that add up,
and run ids linked to the MLflow UI when its address is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
UI = "http://127.0.0.1:5999"  # only written into links: nothing needs to serve it


def _inputs(store, run_id: str) -> dict[str, str]:
    return {d.name: d.digest for d in store.get_run(run_id).inputs}


def test_the_demo_tells_its_story(tmp_path, client):
    from mlops_magics import naming
    from mlops_magics.demo import EXPERIMENT, MODEL, _index, run_demo
    from mlops_magics.schedules.store import ScheduleStore
    from mlops_magics.store_read import Store

    lines: list[str] = []
    done = run_demo(tmp_path / "demo-output", echo=lines.append, ui_url=UI)
    text = "\n".join(lines)
    steps = done["steps"]
    by_step: dict[str, list[tuple[str, str]]] = {}
    for step, what, run in steps:
        by_step.setdefault(step, []).append((what, run))
    store = Store()

    # the sweep, then champion and challenger, each after promotion's checks, recorded on the run
    sweep = done["sweep"]
    assert steps[0][0] == "sweep" and steps[0][1].startswith("4 of 4 points finished; best C=")
    (first_champion, champion_run), (_, challenger_run) = by_step["promote: champion"][0], by_step["promote: challenger"][0]
    assert champion_run == sweep.best.job.run_id and first_champion.startswith("v1 is now champion")
    assert challenger_run == sweep.points[1].job.run_id
    for run_id in (champion_run, challenger_run):
        tags, metrics = client.get_run(run_id).data.tags, client.get_run(run_id).data.metrics
        assert tags[naming.promotion_check("baseline")].startswith("passed")
        assert tags[naming.promotion_check("loads")].startswith("passed")
        assert metrics["baseline.f1"] < metrics["f1"]
        # the training notebook's slices (tumour size bands) and permutation importance
        assert {"f1.slice.small", "f1.slice.medium", "f1.slice.large", "f1.worst_slice", "f1.slice_gap"} <= set(metrics)
        assert len([k for k in metrics if k.startswith("importance.")]) == 30

    # the clean batch: validated, no drift, champion and challenger compared; no alert, no retrain from it
    [(clean, clean_run)] = by_step["demo-monitor"]
    assert "validation passed" in clean and "no drift: " in clean and "alert" not in clean, clean
    assert "challenger agrees on" in clean and "f1 champion" in clean
    # the drifted batch: validation fails on ranges, the data set drifted, the alert raised
    [(drifted, drifted_run)] = by_step["demo-monitor-drifted"]
    assert "validation failed" in drifted and "dataset drift: " in drifted and drifted.endswith("alert drift"), drifted
    for run_id, failed in ((clean_run, False), (drifted_run, True)):
        run = client.get_run(run_id).data
        assert (run.metrics[naming.METRIC_VALIDATION_FAILED] > 0) is failed
        assert run.tags[naming.COMPARE_A] == f"models:/{MODEL}@champion"
        assert run.tags[naming.COMPARE_B] == f"models:/{MODEL}@challenger"
        assert 0 <= run.metrics[naming.METRIC_COMPARE_AGREEMENT] <= 1
    assert client.get_run(clean_run).data.tags.get(naming.ALERT) is None
    # simulated slots read as simulated, never as missed or caught up
    assert "06:00 on the simulated clock, clean batch" in clean and "07:00 on the simulated clock" in drifted
    assert not re.search(r"catch-up|missed", text)

    # the retrain: once, triggered by the drifted run, the champion's C on newer data
    [(retrained, retrain_run)] = by_step["demo-retrain"]
    assert f"triggered by the alert of run {drifted_run[:8]}" in retrained
    retrain = client.get_run(retrain_run).data
    assert retrain.tags[naming.TRIGGERED_BY] == drifted_run
    assert retrain.params["C"] == client.get_run(champion_run).data.params["C"]
    mine, theirs = _inputs(store, retrain_run), _inputs(store, champion_run)
    assert mine["X_train"] != theirs["X_train"] and mine["y_train"] != theirs["y_train"]  # trained on newer data
    assert mine["X_test"] == theirs["X_test"]  # scored on the same rows: promote compares like with like
    assert "held-out rows of the drifted batch" in retrained and retrain.tags[naming.COMPARE_A] == f"models:/{MODEL}@champion"
    # its promotion: decided by the comparison, after the three checks, all recorded on its run
    [(promoted, run)] = by_step["promote: champion"][1:]
    assert run == retrain_run and "on the same held-out rows" in promoted
    assert retrain.tags[naming.PROMOTION] in (naming.PROMOTION_PROMOTED, naming.PROMOTION_KEPT)
    assert retrain.tags[naming.promotion_check("signature")].startswith("passed")
    assert retrain.tags[naming.promotion_check("baseline")].startswith("passed")
    p = done["promotions"][-1]
    assert p.promoted == (p.value > p.holder_value)  # a real comparison: either way is possible
    holder = client.get_model_version_by_alias(MODEL, "champion").run_id
    assert holder == (retrain_run if p.promoted else champion_run)

    # the demo's schedules are paused after its simulated day
    assert all(s.paused for s in ScheduleStore().all() if s.name.startswith("demo-"))

    # the output: counts that add up, links to the UI
    out = tmp_path / "demo-output"
    executed = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    copies = sorted(p.name for p in (out / "notebooks").glob("*.html"))
    assert len(executed) == 4 and [n[:-6] for n in executed] == [n[:-5] for n in copies]
    assert "4 executed notebooks (an HTML copy beside each), 2 charts" in text
    for name in ("drift.png", "drift.svg", "f1-history.png", "f1-history.svg", "index.html"):
        assert (out / name).stat().st_size > 1000, name
    index = (out / "index.html").read_text()
    experiment_id = store.experiment(EXPERIMENT).experiment_id
    for run_id in {r for _, _, r in steps if r}:
        assert f'href="{UI}/#/experiments/{experiment_id}/runs/{run_id}"' in index
    assert "no drift: " in index and 'src="drift.svg"' in index
    assert index.count('href="notebooks/') == 8
    # without a UI: plain ids, and how to open them
    plain = _index(done, done["notebooks"], ["drift", "f1-history"], None, experiment_id)
    assert "/#/experiments/" not in plain and "<code>mlops-magics ui</code>" in plain
    assert f"<code>{champion_run}</code>" in plain
    assert "demo summary" in text and "make ui" in lines[-1]


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
