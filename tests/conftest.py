"""Shared fixtures: a fresh in-process IPython shell with the real extension loaded,
against a temporary SQLite MLflow store read back with MlflowClient."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory):
    """An MLflow SQLite store with its schema made once: migrations take seconds, a copy none."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    here = os.getcwd()
    os.chdir(path.parent)  # the Default experiment's artifact root is made relative to cwd
    try:
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    finally:
        os.chdir(here)
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch, _empty_store):
    """Every test in its own working directory, store and IPython dir."""
    import shutil

    shutil.copy(_empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / ".ipython"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLOPS_MAGICS_HOME", str(tmp_path / ".mlops_magics"))
    for var in ("MLFLOW_EXPERIMENT_NAME", "MLOPS_MAGICS_NOTEBOOK", "JPY_SESSION_NAME"):
        monkeypatch.delenv(var, raising=False)
    yield
    from mlops_magics import _current

    _current.reset()


_LEFT_RUNNING: list[str] = []
_GRACE_S = 20.0  # a delivery process leaves once its clients are gone and nothing waits


def _started_for(tmp_path) -> list:
    """Processes of this test: their command line names its temporary folder."""
    import psutil

    mine, where = [], str(tmp_path)
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and where in " ".join(p.info["cmdline"] or []):
                mine.append(p)
        except psutil.Error:
            continue
    return mine


@pytest.fixture(autouse=True)
def _nothing_left_running(tmp_path):
    """After each test, nothing it started runs on: servers, kernels, JupyterLab are stopped by
    the test; a delivery process may take a moment to see its last client go. What is still
    there after the grace period is ended here and fails the test, by name."""
    import time

    import psutil

    yield
    deadline = time.monotonic() + _GRACE_S
    left = _started_for(tmp_path)
    while left and time.monotonic() < deadline:
        try:  # only delivery processes still holding records for a server that is gone: no need to wait
            if all(_still_delivering(p.cmdline()) for p in left):
                break
        except psutil.Error:
            pass
        time.sleep(0.5)
        left = _started_for(tmp_path)
    if not left:
        return
    named, excused = [], []
    for p in left:
        try:
            argv = p.cmdline()
            (excused if _still_delivering(argv) else named).append(" ".join(argv)[:160])
            p.kill()
        except psutil.Error:
            continue
    _LEFT_RUNNING.extend(named + [f"{line} (records still waited for MLflow)" for line in excused])
    if named:
        pytest.fail("left running after the test (now killed): " + "; ".join(named), pytrace=False)


def _still_delivering(argv: list[str]) -> bool:
    """A delivery process whose journal still holds records for a server the test took away:
    it is doing its job (it gives up on its own after a while); ended here, not a failure."""
    import sqlite3

    if "mlops_magics.journal.deliverd" not in argv:
        return False
    try:
        db = sqlite3.connect(f"file:{argv[-1]}?mode=ro", uri=True, timeout=2)
        try:
            return db.execute("SELECT COALESCE(SUM(n_ops - done), 0) FROM batches").fetchone()[0] > 0
        finally:
            db.close()
    except sqlite3.Error:
        return False


def pytest_terminal_summary(terminalreporter):
    if _LEFT_RUNNING:
        terminalreporter.section("processes tests left running (killed)")
        for line in _LEFT_RUNNING:
            terminalreporter.line(line)


@pytest.fixture
def tracking_uri(tmp_path):
    return os.environ["MLFLOW_TRACKING_URI"]


@pytest.fixture
def client(tracking_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture(scope="module")
def browser(lab):
    """Headless Debian chromium through Playwright, for the module's JupyterLab ``lab`` (tests/lab.py)."""
    from lab import chromium

    with chromium() as launched:
        yield launched


class _Publisher:
    """Collects what the shell displays: a list of mimebundles."""

    def __init__(self, shell):
        from IPython.core.displaypub import CapturingDisplayPublisher

        self.pub = CapturingDisplayPublisher(shell=shell)
        self.outputs = self.pub.outputs


@pytest.fixture
def ip(tmp_path):
    """A fresh InteractiveShell (not the global one) with ``%load_ext mlops_magics`` done."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell(config=cfg, display_pub_class=CapturingDisplayPublisher)
    shell.run_line_magic("load_ext", "mlops_magics")
    yield shell
    shell.run_line_magic("unload_ext", "mlops_magics")
    shell.cleanup()


def run(shell, source: str):
    """Run a cell as the notebook would (history on, so execution counts advance)."""
    return shell.run_cell(source, store_history=True)


def last_bundle(shell, mime="text/plain"):
    """The last displayed mimebundle that has ``mime``."""
    for out in reversed(shell.display_pub.outputs):
        if mime in out["data"]:
            return out["data"]
    raise AssertionError(f"nothing displayed with {mime}")


def invoke(*argv: str):
    """Run the ``mlops-magics`` command line in-process."""
    from click.testing import CliRunner

    from mlops_magics.cli import cli

    return CliRunner().invoke(cli, list(argv), prog_name="mlops-magics")


def under_ci() -> bool:
    """True when CI=true (or 1/yes): there a missing dependency fails a test, never skips it."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(message: str) -> None:
    """A missing dependency: the test fails under CI, elsewhere it skips saying what to install."""
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


def fresh_python(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter of this environment: it must succeed; the last line it printed."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def assert_once_across_reload(ip, ours) -> None:
    """``ours()`` lists what the extension hooked into ``ip``: one, one after ``%reload_ext``,
    none after ``%unload_ext``, one again after ``%load_ext``."""
    assert len(ours()) == 1
    ip.run_line_magic("reload_ext", "mlops_magics")
    assert len(ours()) == 1
    ip.run_line_magic("unload_ext", "mlops_magics")
    assert ours() == []
    ip.run_line_magic("load_ext", "mlops_magics")
    assert len(ours()) == 1


def one_line_error(result) -> str:
    """The error a user sees: exactly one line on stderr, nothing on stdout."""
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def cell_runs(client, experiment="Default"):
    """Tracked cell runs of an experiment, oldest first."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} missing"
    found = client.search_runs([exp.experiment_id], "tags.`mlops.kind` = 'cell'", order_by=["start_time ASC"])
    return list(found)


_REAL_PROCESSES = ("test_journal.py", "test_team_mode.py", "test_browser.py")


def pytest_collection_modifyitems(config, items):
    """Tests that drive real kernels, servers and browsers get one re-run.

    They run real processes on a shared 2-core machine, where a neighbour's load can
    stretch a start-up past a timeout. A re-run shows in the summary ("R" and
    "rerun"), so a test that only passes the second time stays visible.
    """
    for item in items:
        if item.get_closest_marker("race"):  # a race that passes only the second time is a failure
            continue
        if item.get_closest_marker("kernel") or item.fspath.basename in _REAL_PROCESSES:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
