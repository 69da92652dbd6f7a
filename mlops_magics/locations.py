"""Where records go: the MLflow tracking URI and the local mlops-magics folder.

The one place that resolves them. The default is MLflow's own default, a SQLite
store ``mlflow.db`` in the working directory, so ``mlflow ui`` run there just works.
Never the deprecated ``./mlruns`` file store.
"""

from __future__ import annotations

import os
import re
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


_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")


def display_uri(uri: str) -> str:
    """``uri`` as it may be shown or logged: ``scheme://user:***@host`` for a password, ``***@``
    for a user alone (it may be a token), secret query values (``?token=``) and key shapes masked."""
    from .secrets import MASK, mask_text

    m = _USERINFO.match(uri)
    if m:
        user, colon, _ = m["userinfo"].partition(":")
        shown = f"{user}:{MASK}" if colon else MASK
        uri = f"{m['scheme']}{shown}@{uri[m.end():]}"
    return mask_text(uri)


def uri_without_credentials(uri: str) -> str:
    """``uri`` with no user or password at all and secret query values masked: a stable key
    for the same store whatever credentials reach it (the journal files records under it)."""
    m = _USERINFO.match(uri)
    return display_uri(f"{m['scheme']}{uri[m.end():]}" if m else uri)


def private_dir(path: str | os.PathLike) -> Path:
    """``path`` as a folder only its owner can enter (0700), created if missing and tightened
    if it existed already. Best effort on a folder someone else owns."""
    folder = Path(path)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for p in reversed(missing):  # each folder made here is 0700, not only the last
        p.mkdir(mode=0o700, exist_ok=True)
    _chmod(folder, 0o700)
    return folder


def private_tree(path: str | os.PathLike) -> Path:
    """Every folder under ``path`` (and itself) 0700, every file 0600: for what a library
    wrote with its own modes (a saved model, a job's output folder)."""
    root = Path(path)
    if root.is_file():
        _chmod(root, 0o600)
        return root
    for folder, dirs, files in os.walk(root):
        _chmod(Path(folder), 0o700)
        for name in files:
            _chmod(Path(folder, name), 0o600)
    return root


def private_file(path: str | os.PathLike) -> Path:
    """``path`` as a file only its owner can read (0600), in a :func:`private_dir`; created empty
    if missing. An SQLite database's ``-wal``/``-shm``/``-journal`` companions are tightened too.

    An existing file is never opened: closing a descriptor of an SQLite database would drop
    this process's locks on it.
    """
    file = Path(path)
    private_dir(file.parent)
    if not file.exists():
        try:
            os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
    for p in (file, *(file.with_name(file.name + s) for s in ("-wal", "-shm", "-journal"))):
        _chmod(p, 0o600)
    return file


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.exists() and (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except OSError:  # not ours, or gone meanwhile: nothing to tighten
        pass


def journal_path() -> Path:
    """The journal file: ``<home>/journal.db``."""
    return home() / "journal.db"


def job_run() -> str | None:
    """In a notebook job's kernel: the client key of the job's run, else None."""
    return os.environ.get(JOB_RUN_ENV, "").strip() or None
