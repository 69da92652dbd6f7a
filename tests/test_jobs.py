"""Notebook jobs through papermill in real kernels: typed parameters, honest failures, reproduce."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlops_magics.errors import MlopsError
from mlops_magics.runner.run import run_notebook
from mlops_magics.runner.parameters import ParameterError

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).parent / "notebooks"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlops_magics.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_typed_parameters_and_a_job_run_with_its_tracked_cells(client, tmp_path):
    import mlops_magics as mm

    assert mm.run_notebook is run_notebook
    result = mm.run_notebook(NOTEBOOKS / "job_params.ipynb", texts=[("n", "007"), ("layers", "[1, 2, 3]")],
                          progress=False)
    assert result.status == "FINISHED" and result.failure is None and result.exit_code == 0
    assert result.parameters["n"] == 7 and result.parameters["layers"] == [1, 2, 3]
    run = client.get_run(result.run_id)
    tags = run.data.tags
    assert tags["mlops.kind"] == "job"
    assert run.data.params["n"] == "7" and run.data.params["layers"] == "[1, 2, 3]"
    assert run.data.params["rate"] == "0.5"  # defaults merged in
    assert tags["mlops.notebook"].endswith("job_params.ipynb") and len(tags["mlops.notebook.sha256"]) == 64
    assert tags["mlops.git.commit"] and tags["mlops.git.dirty"] in ("true", "false")
    assert tags["mlops.papermill.version"] and len(tags["mlops.env.sha256"]) == 64
    assert "score" in run.data.metrics  # from the %%track cell inside the job
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 5  # mm.log_metric in a plain cell
    assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["data"]
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "mlops/job")}
    assert paths == {"mlops/job/output.ipynb", "mlops/job/output.html"}
    executed = nbformat.read(result.output_path, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_unknown_parameter_is_refused_before_any_kernel(tmp_path):
    with pytest.raises(ParameterError, match=r"unknown parameter 'nn'.*Did you mean 'n'\?"):
        run_notebook(NOTEBOOKS / "job_params.ipynb", texts=[("nn", "3")])
    with pytest.raises(ParameterError, match="wants an int, got 'x'"):
        run_notebook(NOTEBOOKS / "job_params.ipynb", texts=[("n", "x")])
    with pytest.raises(ParameterError, match="no cell tagged 'parameters'"):
        run_notebook(NOTEBOOKS / "job_no_params.ipynb", {"n": 3})
    with pytest.raises(MlopsError, match="no Jupyter kernel named 'pyhton3'"):
        run_notebook(NOTEBOOKS / "job_params.ipynb", kernel="pyhton3")
    assert not (tmp_path / ".mlops_magics" / "jobs").exists()  # nothing ran


@pytest.mark.parametrize("notebook, kwargs, failure, cell, code", [
    ("job_fails", {}, "error", 2, 1),
    ("job_sleeps", {"timeout": 2}, "timeout", 1, 124),
    ("job_dies", {}, "kernel_died", 2, 138),
])
def test_failures_are_told_apart(client, notebook, kwargs, failure, cell, code):
    result = run_notebook(NOTEBOOKS / f"{notebook}.ipynb", progress=False, **kwargs)
    assert (result.status, result.failure, result.failed_cell, result.exit_code) == ("FAILED", failure, cell, code)
    run = client.get_run(result.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.failure"] == failure
    assert run.data.tags["mlops.job.failed_cell"] == str(cell)
    assert run.data.tags["mlops.error"]
    executed = nbformat.read(result.output_path, as_version=4)
    banner = executed.cells[0]
    assert banner.cell_type == "markdown" and ("papermill-error-cell-tag" in banner.metadata.get("tags", [])
                                               or "mlops-failure-banner" in banner.metadata.get("tags", []))
    if notebook == "job_dies":  # what the tracked cell recorded before the kernel died is kept
        assert run.data.params.get("before") == "1.5"


def test_retries_rerun_after_timeout_but_not_after_error(client):
    result = run_notebook(NOTEBOOKS / "job_sleeps.ipynb", timeout=1.5, retries=1, progress=False)
    assert result.failure == "timeout" and result.attempts == 2
    failed = run_notebook(NOTEBOOKS / "job_fails.ipynb", retries=3, progress=False)
    assert failed.failure == "error" and failed.attempts == 1


def test_cli_run_exit_codes_and_describe(tmp_path):
    out = cli("run", str(NOTEBOOKS / "job_params.ipynb"), "--describe")
    assert out.returncode == 0 and "n       int    3        how many" in out.stdout
    out = cli("run", str(NOTEBOOKS / "job_params.ipynb"), "-p", "n", "2", "-y", "rate: 0.25", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "job finished: run " in out.stdout
    out = cli("run", str(NOTEBOOKS / "job_fails.ipynb"), "--no-progress")
    assert out.returncode == 1 and "job failed (error) at cell 2: ValueError: boom at x=1" in out.stderr
    out = cli("run", str(NOTEBOOKS / "job_params.ipynb"), "-p", "nn", "2")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Did you mean 'n'?" in out.stderr


def test_reproduce_a_deterministic_job(client):
    first = run_notebook(NOTEBOOKS / "job_params.ipynb", {"n": 4}, progress=False)
    out = cli("reproduce", first.run_id, "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "reproduced: same data, same metrics" in out.stdout
    assert "metric score" in out.stdout and "data data (output)" in out.stdout
    again = [r for r in client.search_runs([client.get_run(first.run_id).info.experiment_id])
             if r.data.tags.get("mlops.reproduces") == first.run_id]
    assert len(again) == 1 and again[0].data.params["n"] == "4"


def test_reproduce_a_random_job_says_why_not(client):
    first = run_notebook(NOTEBOOKS / "job_random.ipynb", progress=False)
    out = cli("reproduce", first.run_id, "--no-progress")
    assert out.returncode == 1
    assert "NOT reproduced: differs: data sample (output), metric spread" in out.stderr


def test_reproduce_refuses_a_changed_notebook(client, tmp_path):
    copy = tmp_path / "copy.ipynb"
    copy.write_bytes((NOTEBOOKS / "job_params.ipynb").read_bytes())
    first = run_notebook(copy, progress=False)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("extra = 1"))
    nbformat.write(nb, copy)
    out = cli("reproduce", first.run_id)
    assert out.returncode == 1 and "changed since run" in out.stderr and "--use-current" in out.stderr
    assert cli("reproduce", first.run_id, "--use-current", "--no-progress").returncode == 0


def test_a_running_job_shows_its_cell_in_mlflow(client):
    """While a long cell runs, the job run's tag says which cell it is; quick cells are not told."""
    import threading
    import time

    ended = {}
    job = threading.Thread(target=lambda: ended.update(result=run_notebook(
        NOTEBOOKS / "job_sleeps.ipynb", {"wait": 4}, progress=False)))
    job.start()
    seen, deadline = None, time.monotonic() + 90
    while job.is_alive() and seen is None and time.monotonic() < deadline:
        for run in client.search_runs(["0"], "tags.`mlops.kind` = 'job' and attributes.status = 'RUNNING'"):
            seen = run.data.tags.get("mlops.job.cell") or seen
        time.sleep(0.2)
    job.join(120)
    assert seen == "3/4 import time"  # after the parameters and the injected ones, too quick to be told
    assert ended["result"].status == "FINISHED"
