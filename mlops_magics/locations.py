"""Where records go: the MLflow tracking URI and the local mlops-magics folder.

The one place that resolves them. The default is MLflow's own default, a SQLite
store ``mlflow.db`` in the working directory, so ``mlflow ui`` run there just works.
Never the deprecated ``./mlruns`` file store.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "MLOPS_MAGICS_HOME"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "Default"
JOB_RUN_ENV = "MLOPS_MAGICS_JOB_RUN"  # set by the job runner in a job's kernel: the job run's key


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    if explicit:
        return explicit
    env = os.environ.get(TRACKING_URI_ENV, "").strip()
    if env:
        return env
    return "sqlite:///" + str(Path.cwd().resolve() / "mlflow.db")


def reading_client(uri: str, error: type[Exception], hint: str = "set MLFLOW_TRACKING_URI or run where mlflow.db is",
                   *, registry: bool = False):
    """An ``MlflowClient`` for reading what is there: a SQLite store that does not exist is
    ``error("no MLflow store at ...: hint")``, not a new empty database where the user stands."""
    if uri.startswith("sqlite:///"):
        store = Path(uri[len("sqlite:///"):].split("?", 1)[0])
        if not store.is_file():
            raise error(f"no MLflow store at {store}: {hint}")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri if registry else None)


def experiment_name(explicit: str | None = None) -> str:
    """The experiment: ``explicit``, else ``$MLFLOW_EXPERIMENT_NAME``, else MLflow's ``Default``."""
    return explicit or os.environ.get(EXPERIMENT_ENV, "").strip() or DEFAULT_EXPERIMENT


def home() -> Path:
    """The local folder: ``$MLOPS_MAGICS_HOME``, else ``.mlops_magics`` in the working directory."""
    env = os.environ.get(HOME_ENV, "").strip()
    return Path(env).expanduser() if env else Path.cwd() / ".mlops_magics"


def display_uri(uri: str) -> str:
    """``uri`` without credentials, for messages."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def journal_path() -> Path:
    """The journal file: ``<home>/journal.db``."""
    return home() / "journal.db"


def job_run() -> str | None:
    """In a notebook job's kernel: the client key of the job's run, else None."""
    return os.environ.get(JOB_RUN_ENV, "").strip() or None
