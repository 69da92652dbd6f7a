"""Notebook jobs under faults, in real kernels: Ctrl-C / SIGTERM, kernel name aliases, the failing
cell as the author counts it, failing magics, secrets given as parameters."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from mlops_magics.errors import MlopsError
from mlops_magics.runner.run import run_notebook

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).parent / "notebooks"
START_WAIT_S = 240  # kernels start slowly on a loaded 2-core machine; no speed is asserted


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mlops_magics.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _wait_for(path: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if proc.poll() is not None:
            raise AssertionError(f"ended before the cell slept: {proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the sleeping cell never started")


def _gone(pid: int, within: float = 20.0) -> bool:
    import psutil

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def _job_runs(client, kind="job"):
    return client.search_runs(["0"], f"tags.`mlops.kind` = '{kind}'")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_job_run_interrupted_and_exits_130(client, tmp_path, signum):
    marker = tmp_path / "sleeping"
    proc = subprocess.Popen([sys.executable, "-m", "mlops_magics.cli", "run", str(NOTEBOOKS / "job_interrupt.ipynb"),
                             "-p", "marker", str(marker), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernel = int(_wait_for(marker, proc))
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"job failed (interrupted) at cell 2: KeyboardInterrupt: stopped by {signum.name}" in err
    assert "Traceback" not in err
    assert _gone(kernel), "the job's kernel is still running"
    assert cli("sync").returncode == 0
    run, = _job_runs(client)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.failure"] == "interrupted"
    assert run.data.tags["mlops.error"] == f"KeyboardInterrupt: stopped by {signum.name}"
    assert run.data.tags["mlops.job.failed_cell"] == "2"
    assert run.data.params["started"] == "1.0"  # the tracked cell before the interrupt is kept
    executed = nbformat.read(run.data.tags["mlops.job.output"], as_version=4)
    assert "was interrupted at cell 2" in executed.cells[0].source


def test_the_api_raises_keyboard_interrupt_after_recording(client, tmp_path):
    """mm.run_notebook stopped by Ctrl-C (here: SIGINT to this process) still stops the caller."""
    import threading

    from mlops_magics.runner.failures import JobInterrupted

    marker = tmp_path / "sleeping"

    def interrupt_when_sleeping():
        deadline = time.monotonic() + START_WAIT_S
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        if marker.exists():  # never at a moment the job is not running: it would stop pytest
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_sleeping, daemon=True).start()
    with pytest.raises(JobInterrupted) as caught:
        run_notebook(NOTEBOOKS / "job_interrupt.ipynb", {"marker": str(marker)}, progress=False)
    result = caught.value.result
    assert isinstance(caught.value, KeyboardInterrupt)
    assert (result.status, result.failure, result.failed_cell, result.exit_code) == ("FAILED", "interrupted", 2, 130)
    assert _gone(int(marker.read_text()))


def test_kernel_names_jupyter_client_accepts_are_accepted(client, tmp_path):
    result = run_notebook(NOTEBOOKS / "job_kernel_alias.ipynb", progress=False)  # kernelspec name "python"
    assert result.status == "FINISHED", result.error
    nb = nbformat.read(NOTEBOOKS / "job_kernel_alias.ipynb", as_version=4)
    nb.metadata.kernelspec.name = "pyhton3"
    nbformat.write(nb, tmp_path / "typo.ipynb")
    with pytest.raises(MlopsError, match=r"no Jupyter kernel named 'pyhton3'\. Did you mean 'python3'\?"):
        run_notebook(tmp_path / "typo.ipynb")
    out = cli("run", str(tmp_path / "typo.ipynb"))
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1


@pytest.mark.parametrize("texts", [[("x", "2")], []])
def test_failed_cell_is_the_index_in_the_input_notebook(client, texts):
    """With parameters given, papermill adds a cell before the failing one; without, it does not."""
    result = run_notebook(NOTEBOOKS / "job_fails_cell3.ipynb", texts=texts, progress=False)
    assert (result.failure, result.failed_cell) == ("error", 3)
    assert result.error == f"ValueError: cell three fails at x={texts[0][1] if texts else 1}"
    run = client.get_run(result.run_id)
    assert run.data.tags["mlops.job.failed_cell"] == "3"


@pytest.mark.parametrize("notebook, cell, error", [
    ("job_bad_magic", 1, "UsageError: Line magic function `%nonexistent_magic` not found."),
    ("job_bad_cell_magic", 2, "UsageError: Cell magic `%%nonexistent_cell_magic` not found."),
])
def test_a_failing_magic_records_its_real_error(client, notebook, cell, error):
    result = run_notebook(NOTEBOOKS / f"{notebook}.ipynb", progress=False)
    assert (result.failure, result.failed_cell, result.error) == ("error", cell, error)
    tags = client.get_run(result.run_id).data.tags
    assert tags["mlops.error"] == error and tags["mlops.job.failed_cell"] == str(cell)


TOKEN, PASSWORD = "s3cr3t-tok-42", "hunter2pw"
URL = f"postgresql://bob:{PASSWORD}@db.example/x"


def test_secret_parameters_reach_the_kernel_and_no_file(client, tmp_path):
    home = tmp_path / ".mlops_magics"
    (home / "jobs").mkdir(parents=True, mode=0o755)
    os.chmod(home, 0o755)  # folders that existed before, readable by all
    out = cli("run", str(NOTEBOOKS / "job_secrets.ipynb"), "-p", "token", TOKEN, "-p", "db_url", URL,
              "-p", "fail", "True", "--no-progress")
    assert out.returncode == 1, out.stderr
    assert "RuntimeError: bad token ***" in out.stderr
    assert cli("sync").returncode == 0
    run, = _job_runs(client)
    assert run.data.metrics["length"] == len(TOKEN) + 1  # the kernel had the real values
    assert run.data.metrics["chars"] == len(URL)
    assert run.data.params["token"] == "***"
    assert run.data.params["db_url"] == "postgresql://bob:***@db.example/x"
    assert run.data.tags["mlops.error"] == "RuntimeError: bad token ***"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "mlops/job")}
    assert artifacts == {"mlops/job/output.ipynb", "mlops/job/output.html"}
    copy = Path(run.data.tags["mlops.job.output"])
    assert copy.parent == home / "jobs"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "jobs").stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    executed = nbformat.read(copy, as_version=4)
    injected, = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'token = "***"' in injected.source and "bob:***@db.example" in injected.source
    leaks = _files_holding(tmp_path, [TOKEN.encode(), PASSWORD.encode()])
    assert leaks == [], f"secret values in {leaks}"
    assert TOKEN not in out.stdout + out.stderr and PASSWORD not in out.stdout + out.stderr


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` (the journal home, the job copies, mlflow.db, the artifacts,
    the kernels' IPython folder) whose bytes hold one of ``needles``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(root)))
    return found


@pytest.mark.slow
def test_a_signal_ends_a_sweep_and_its_running_jobs_interrupted(client, tmp_path):
    import psutil

    marker = tmp_path / "sleeping"
    since = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "mlops_magics.cli", "sweep", str(NOTEBOOKS / "job_interrupt.ipynb"),
                             "--grid", "wait=60,61", "--grid", f"marker={marker}", "--workers", "2", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernel = int(_wait_for(marker, proc))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert err.strip() == "sweep interrupted (stopped by SIGTERM)"
    assert _gone(kernel)
    left = [p.pid for p in psutil.process_iter(["cmdline", "create_time"])
            if (p.info["create_time"] or 0) >= since - 1 and any(
                part in " ".join(p.info["cmdline"] or []) for part in ("_kernel_fork_server", "distributed", "ipykernel"))
            and p.status() != psutil.STATUS_ZOMBIE and _of_this_test(p)]
    assert left == []
    assert cli("sync").returncode == 0
    sweep, = _job_runs(client, "sweep")
    jobs = _job_runs(client)
    assert len(jobs) == 2
    for run in [sweep, *jobs]:
        assert run.info.status == "FAILED"
        assert run.data.tags["mlops.failure"] == "interrupted"
        assert run.data.tags["mlops.error"] == "the sweep stopped: KeyboardInterrupt: stopped by SIGTERM"


def _of_this_test(process) -> bool:
    """A process of this test's sweep: once the sweep exits its children are reparented, but
    their environment still names this test's journal home."""
    try:
        return os.environ["MLOPS_MAGICS_HOME"] == process.environ().get("MLOPS_MAGICS_HOME")
    except Exception:
        return False
