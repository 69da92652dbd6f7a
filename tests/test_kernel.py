"""Real kernels through nbclient and papermill, over the notebooks in tests/notebooks/.

The kernel is the venv's own ``python3`` kernel, so the extension arrives through the
installed IPython startup file (no ``%load_ext``), exactly as in JupyterLab.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import cell_runs

pytestmark = pytest.mark.kernel

HERE = Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"
TRAIN = HERE.parent / "notebooks" / "train.ipynb"


def kernel_env(tmp_path: Path, monkeypatch) -> None:
    """Kernels see only temporary Jupyter and IPython folders and the test's MLflow store."""
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime")):
        monkeypatch.setenv(var, str(tmp_path / ".jupyter" / sub))
    monkeypatch.delenv("MLOPS_MAGICS_NO_AUTOLOAD", raising=False)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugpy start-up


@pytest.fixture(autouse=True)
def _kernel_env(tmp_path, monkeypatch):
    kernel_env(tmp_path, monkeypatch)


def execute(name: str, cwd: Path):
    """Run fixture notebook ``name`` in a fresh kernel; return the executed notebook.

    nbclient shuts the kernel down before returning (or raising), so the session's
    exit-time delivery has happened by then.
    """
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=60, startup_timeout=60,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    finally:
        execute.last = nb  # the partly executed notebook, for tests that expect a failure
    return nb


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def displays(cell) -> list[dict]:
    return [o["data"] for o in cell.outputs if o.output_type == "display_data"]


def execute_isolated(name: str, tmp_path_factory, empty_store):
    """Run ``name`` once for several tests: its own folder, store and environment.

    Returns the executed notebook, the CellExecutionError if one stopped it, a client
    on its store and the tracked cell runs found there.
    """
    import shutil

    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp(name)
    shutil.copy(empty_store, tmp / "mlflow.db")
    uri = f"sqlite:///{tmp}/mlflow.db"
    error = None
    with pytest.MonkeyPatch.context() as mp:  # what conftest's _isolated does for one test
        mp.chdir(tmp)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("IPYTHONDIR", str(tmp / ".ipython"))
        mp.setenv("MLOPS_MAGICS_HOME", str(tmp / ".mlops_magics"))
        for var in ("MLFLOW_EXPERIMENT_NAME", "MLOPS_MAGICS_NOTEBOOK", "JPY_SESSION_NAME"):
            mp.delenv(var, raising=False)
        kernel_env(tmp, mp)
        try:
            execute(name, tmp)
        except CellExecutionError as exc:
            error = exc
        from mlops_magics.journal.sync import sync

        sync(timeout=60)  # what the kernel had no time to deliver as it stopped (a user: `mlops-magics sync`)
    client = MlflowClient(tracking_uri=uri)
    return execute.last, error, client, cell_runs(client)


@pytest.fixture(scope="module")
def first_cell(tmp_path_factory, _empty_store):
    """track_first_cell.ipynb executed once, and its runs read back: shared by three tests."""
    nb, error, client, runs = execute_isolated("track_first_cell", tmp_path_factory, _empty_store)
    assert error is None, error
    return nb, client, runs


@pytest.fixture(scope="module")
def failing(tmp_path_factory, _empty_store):
    """failing_cell.ipynb executed once (it stops with an error), and its runs read back."""
    return execute_isolated("failing_cell", tmp_path_factory, _empty_store)


def test_track_first_cell_without_load_ext_lands_in_mlflow(first_cell):
    nb, client, runs = first_cell

    assert not [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert "all records are in MLflow" in displays(nb.cells[2])[-1]["text/plain"]
    assert len(runs) == 2
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlops.kind"] == "cell"
    assert run.data.params["lr"] == "0.1"
    assert run.data.metrics["score"] == pytest.approx(4.95)
    assert "mlops.cell.id" not in run.data.tags  # nbclient sends no cellId, and that is fine
    digests = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
    assert 0 < len(digests["values"]) <= 36

    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["mlops.kind"] == "session"
    assert parent.info.status == "FINISHED"  # ended when the kernel shut down
    assert runs[1].data.tags["mlflow.parentRunId"] == parent.info.run_id  # one session per kernel
    assert runs[1].data.params["lr"] == "0.2"


def test_execution_count_tag_matches_the_notebook_prompt(first_cell):
    nb, _, runs = first_cell

    prompts = [str(c.execution_count) for c in nb.cells[:2]]
    assert [r.data.tags["mlops.execution_count"] for r in runs] == prompts


def test_tracked_cell_shows_html_and_text_summary(first_cell):
    nb, _, _ = first_cell

    first, second = displays(nb.cells[0]), displays(nb.cells[1])
    assert len(first) == 1 and len(second) == 1
    for bundle in first + second:
        assert "text/html" in bundle and "text/plain" in bundle
    assert "lr=0.1" in first[0]["text/plain"] and "score=4.95" in first[0]["text/plain"]
    assert "lr=0.1" in first[0]["text/html"]
    # another cell with similar code (no cell id under nbclient, no notebook file): compared with nothing
    assert "lr=0.2" in second[0]["text/plain"] and "(was" not in second[0]["text/plain"]
    assert "values" in second[0]["text/plain"] and "unchanged" not in second[0]["text/plain"]


def test_no_autoload_leaves_track_unknown(tmp_path, monkeypatch, client):
    monkeypatch.setenv("MLOPS_MAGICS_NO_AUTOLOAD", "1")

    with pytest.raises(CellExecutionError) as info:
        execute("plain_track", tmp_path)

    assert info.value.ename == "UsageError"
    assert "%%track" in info.value.evalue and "not found" in info.value.evalue
    assert client.search_runs([client.get_experiment_by_name("Default").experiment_id]) == []


def test_failing_tracked_cell_stops_the_notebook_and_fails_the_run(failing):
    nb, error, client, runs = failing

    assert isinstance(error, CellExecutionError)
    assert error.ename == "ZeroDivisionError"
    assert error.evalue == "division by zero"
    failed, after = nb.cells
    assert after.execution_count is None and after.outputs == []  # the next cell never ran
    assert [o.ename for o in failed.outputs if o.output_type == "error"] == ["ZeroDivisionError"]

    [run] = runs
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.failure"] == "error"
    assert run.data.tags["mlops.error"] == "ZeroDivisionError: division by zero"
    assert run.data.params["rate"] == "0.5"  # what the cell set before failing is kept


def test_traceback_of_a_failing_tracked_cell_names_its_own_prompt(failing):
    nb, error, _, _ = failing

    [tb] = [o.traceback for o in nb.cells[0].outputs if o.output_type == "error"]
    labels = set(re.findall(r"Cell In\[(\d+)\]", re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(tb))))
    assert labels == {str(nb.cells[0].execution_count)}


def test_load_ext_after_autoload_is_a_noop_and_reload_never_doubles_hooks(tmp_path, client):
    nb = execute("reload", tmp_path)

    assert "already loaded" in stream_text(nb.cells[0])
    hooks = [int(m) for c in nb.cells for m in re.findall(r"^hooks (\d+)$", stream_text(c), re.M)]
    assert hooks == [1, 1, 0]  # after auto-load, after %reload_ext, after %unload_ext
    assert "lr=0.3" in displays(nb.cells[4])[0]["text/plain"]

    [run] = cell_runs(client)  # delivered by %unload_ext
    assert run.data.params["lr"] == "0.3"
    assert run.info.status == "FINISHED"


def test_training_notebook_under_papermill(tmp_path, client, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("MLOPS_MAGICS_NOTEBOOK", str(TRAIN))
    pm.execute_notebook(str(TRAIN), str(tmp_path / "train.out.ipynb"), parameters={"C": 0.5},
                        kernel_name="python3", cwd=str(tmp_path), progress_bar=False)

    runs = {r.info.run_name: r for r in cell_runs(client)}
    assert set(runs) == {"prepare", "train", "evaluate"}
    evaluate = runs["evaluate"]
    assert evaluate.info.status == "FINISHED"
    assert evaluate.data.params["C"] == "0.5"
    assert 0.8 < evaluate.data.metrics["f1"] <= 1.0
    assert evaluate.data.tags["mlops.notebook"] == str(TRAIN)

    def datasets(run):
        return {(d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"]): d.dataset.digest
                for d in run.inputs.dataset_inputs}

    evaluated, prepared = datasets(evaluate), datasets(runs["prepare"])
    assert {"X_test", "y_test"} <= {name for name, _ in evaluated}
    assert all(0 < len(d) <= 36 for d in evaluated.values())
    # the frames the evaluation read are, digest for digest, the ones the preparation wrote
    assert evaluated["X_test", "input"] == prepared["X_test", "output"]
    assert evaluated["y_test", "input"] == prepared["y_test", "output"]
