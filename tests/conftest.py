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


@pytest.fixture
def tracking_uri(tmp_path):
    return os.environ["MLFLOW_TRACKING_URI"]


@pytest.fixture
def client(tracking_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


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
        if item.get_closest_marker("kernel") or item.fspath.basename in _REAL_PROCESSES:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
