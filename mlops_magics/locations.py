"""Where records go: the MLflow tracking URI and the local mlops-magics folder.

The one place that resolves them. Without ``MLFLOW_TRACKING_URI`` / ``MLOPS_MAGICS_HOME``
both live at the project root: ``sqlite:///<root>/mlflow.db`` (so ``mlflow ui`` run there
just works) and ``<root>/.mlops_magics/``, so every notebook, job, sweep and schedule of a
project shares one store and one journal whatever folder it runs from. The root is the
nearest folder upwards holding ``.mlops_magics/`` or ``mlflow.db``, else the git work
tree's root, else the working folder (see :func:`project`). Never the deprecated
``./mlruns`` file store; the default store's artifacts go to ``<root>/mlruns/<experiment id>``
whatever folder creates an experiment (:func:`project_artifacts`). A relative
``sqlite:///`` URI given by the user is made absolute where it is given (:func:`absolute_uri`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "MLOPS_MAGICS_HOME"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "Default"
JOB_RUN_ENV = "MLOPS_MAGICS_JOB_RUN"  # set by the job runner in a job's kernel: the job run's key
SCHEDULES_URI_ENV = "MLOPS_MAGICS_SCHEDULES_URI"  # postgresql://...: schedules shared by hosts, else schedules.db


STORE_FILE = "mlflow.db"  # the default store, at the project root
ARTIFACTS_DIR = "mlruns"  # the default store's artifacts, beside it (MLflow's own default name)
HOME_DIR = ".mlops_magics"  # the default journal folder, at the project root
_GIT = ".git"  # a folder, or a file in a linked work tree or a submodule


@dataclass(frozen=True)
class Project:
    """The project a working folder belongs to, and why that folder is its root."""

    root: Path
    reason: str


@dataclass(frozen=True)
class Choice:
    """A place records go (a tracking URI, a journal folder) and why it was chosen."""

    value: str
    reason: str


# Working folder -> (folders walked, their mtimes, its project). A marker made or removed in
# one of those folders changes that folder's mtime, so a cached answer is never stale.
_projects: dict[str, tuple[tuple[str, ...], tuple[int, ...], Project]] = {}


def project(cwd: str | os.PathLike | None = None) -> Project:
    """The project root of ``cwd`` (default: the working folder).

    Walking up from ``cwd``: the nearest folder holding ``.mlops_magics/`` or ``mlflow.db``;
    else the git work tree's root (the nearest folder holding ``.git``: the walk never leaves
    a work tree, so a store above it belongs to something else); else ``cwd`` itself. Only
    ``stat`` calls, no git process; cached per folder.
    """
    start = os.path.abspath(cwd if cwd is not None else os.getcwd())
    cached = _projects.get(start)
    if cached is not None and cached[1] == _mtimes(cached[0]):
        return cached[2]
    walked, found = _walk(start)
    _projects[start] = (walked, _mtimes(walked), found)
    return found


def _walk(start: str) -> tuple[tuple[str, ...], Project]:
    walked, folder = [], start
    while True:
        walked.append(folder)
        for marker, is_it in ((HOME_DIR, os.path.isdir), (STORE_FILE, os.path.isfile)):
            if is_it(os.path.join(folder, marker)):
                what = f"{marker}/" if marker == HOME_DIR else marker
                where = "it holds" if folder == start else "the nearest folder upwards holding"
                also = ", the root of the git work tree too" if os.path.lexists(os.path.join(folder, _GIT)) else ""
                return tuple(walked), Project(Path(folder), f"{where} {what}{also}")
        if os.path.lexists(os.path.join(folder, _GIT)):
            return tuple(walked), Project(Path(folder), "the root of the git work tree")
        parent = os.path.dirname(folder)
        if parent == folder:
            return tuple(walked), Project(Path(start), f"the working folder: no {HOME_DIR}/, {STORE_FILE} "
                                                       "or git work tree in it or above it")
        folder = parent


def _mtimes(folders: tuple[str, ...]) -> tuple[int, ...]:
    out = []
    for folder in folders:
        try:
            out.append(os.stat(folder).st_mtime_ns)
        except OSError:
            out.append(-1)
    return tuple(out)


def store_choice(explicit: str | None = None, given_by: str = "--tracking-uri") -> Choice:
    """The tracking URI and why: ``explicit`` (``given_by`` names where it came from), else
    ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<project root>/mlflow.db``; a relative
    ``sqlite:///`` path made absolute from the working folder."""
    if explicit:
        return Choice(absolute_uri(explicit), f"set by {given_by}")
    env = os.environ.get(TRACKING_URI_ENV, "").strip()
    if env:
        return Choice(absolute_uri(env), f"${TRACKING_URI_ENV} is set")
    p = project()  # from os.getcwd(): a path without symlinks already
    return Choice("sqlite:///" + str(p.root / STORE_FILE), f"project root {p.root}: {p.reason}")


def absolute_uri(uri: str) -> str:
    """``uri`` with a relative ``sqlite:///`` path made absolute from the working folder: what it
    means where it was given, also to a delivery process or job kernel working elsewhere.
    Any other URI (absolute, in-memory, a server) as it is."""
    if not uri.startswith("sqlite:///"):
        return uri
    path, sep, query = uri[len("sqlite:///"):].partition("?")
    if not path or path == ":memory:" or os.path.isabs(path):
        return uri
    return "sqlite:///" + os.path.abspath(path) + sep + query


def project_artifacts(uri: str) -> Path | None:
    """Where the store at ``uri`` keeps its artifacts when it is a project's store: ``<F>/mlruns``
    for ``sqlite:///<F>/mlflow.db`` (absolute), the default store or the same file named
    explicitly; ``mlflow.db`` marks ``<F>`` as a project root (:func:`project`). Else None:
    other stores keep MLflow's own default (``./mlruns`` of the process creating an experiment)."""
    from .sqlite_files import uri_file

    path = uri_file(uri)
    if path is None or not path.is_absolute() or path.name != STORE_FILE:
        return None
    return Path(os.path.abspath(path.parent)) / ARTIFACTS_DIR


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///<project root>/mlflow.db`` (:func:`project`)."""
    return store_choice(explicit).value


def reading_client(uri: str, error: type[Exception], hint: str = "set MLFLOW_TRACKING_URI or run inside the project that holds mlflow.db",
                   *, registry: bool = False):
    """An ``MlflowClient`` for reading what is there: a SQLite store that does not exist is
    ``error("no MLflow store at ...: hint")``, not a new empty database where the user stands."""
    from .sqlite_files import uri_file

    store = uri_file(uri)
    if store is not None and not store.is_file():
        raise error(f"no MLflow store at {store}: {hint}")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri if registry else None)


def experiment_name(explicit: str | None = None) -> str:
    """The experiment: ``explicit``, else ``$MLFLOW_EXPERIMENT_NAME``, else MLflow's ``Default``."""
    return explicit or os.environ.get(EXPERIMENT_ENV, "").strip() or DEFAULT_EXPERIMENT


def home_choice() -> Choice:
    """The local folder (journal, schedules, job copies) and why: ``$MLOPS_MAGICS_HOME``, else
    ``.mlops_magics`` at the project root (:func:`project`)."""
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return Choice(str(Path(env).expanduser()), f"${HOME_ENV} is set")
    p = project()
    return Choice(str(p.root / HOME_DIR), f"project root {p.root}: {p.reason}")


def home() -> Path:
    """The local folder: ``$MLOPS_MAGICS_HOME``, else ``.mlops_magics`` at the project root."""
    return Path(home_choice().value)


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


JOURNAL_FILE = "journal.db"


def journal_path() -> Path:
    """The journal file: ``<home>/journal.db``."""
    return home() / JOURNAL_FILE


def runs_cache_path(uri: str, experiment_id: str) -> Path:
    """The cached runs of one experiment of one store: ``<home>/runs-cache/<store key>/<id>.json``.

    The store key is a hash of the URI without credentials, so no secret is in a path."""
    import hashlib

    key = hashlib.sha256(uri_without_credentials(uri).encode()).hexdigest()[:16]
    return home() / "runs-cache" / key / f"{experiment_id}.json"


def job_run() -> str | None:
    """In a notebook job's kernel: the client key of the job's run, else None."""
    return os.environ.get(JOB_RUN_ENV, "").strip() or None
