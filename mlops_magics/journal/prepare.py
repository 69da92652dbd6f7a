"""The MLflow store is prepared once, by one process, before any run is written to it.

MLflow creates and migrates a SQLite store on first open. Several processes opening a fresh
store at once race in the schema migration (``table _alembic_tmp_latest_metrics already
exists``) and leave it half-migrated, after which nothing is delivered. So the delivery
process opens a SQLite store first under ``flock`` on ``<store>.lock`` beside it: two journals
(two homes, two machines sharing a folder) may point at one store, so a journal's own lock
is not enough. A store found broken gets a one-line diagnosis naming the file and what to do.

``diagnose`` reads the file with ``sqlite3`` only: status can call it inside a kernel.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3

from ..sqlite_files import connect_read_only, uri_file


class StoreNotReady(Exception):
    """The store cannot take records as it is; the message says what to do (one line)."""


def diagnose(uri: str) -> str | None:
    """What is wrong with a SQLite store that a migration cannot fix by itself, or None."""
    path = uri_file(uri)
    if path is None or not path.is_file():
        return None
    try:
        db = connect_read_only(path, timeout=5.0)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"MLflow store {path} cannot be read ({exc}): check the file, or point MLFLOW_TRACKING_URI at another store"
    leftover = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if leftover:
        return (f"MLflow store {path} is half-migrated (table {leftover[0]} left by an interrupted upgrade): "
                f"back the file up, DROP TABLE {leftover[0]} in it, then run mlflow db upgrade on it")
    return None


def _explain(uri: str, exc: Exception) -> str:
    """MLflow's multi-line refusal of a store, as one line naming the file and the way out."""
    from ..errors import one_line

    path, text = uri_file(uri), str(exc)
    found = re.search(r"found version (\S+), but expected (\S+?)\)", text)
    if found:
        return (f"MLflow store {path} has schema {found.group(1)}, this MLflow needs {found.group(2)}: "
                "back the file up, then run mlflow db upgrade on it")
    unknown = re.search(r"Can't locate revision identified by '([^']+)'", text)
    if unknown:
        return (f"MLflow store {path} was written by a newer MLflow (schema {unknown.group(1)}): "
                "upgrade mlflow here, or set MLFLOW_TRACKING_URI to another store")
    return f"MLflow store {path} could not be opened: {one_line(exc)}"


def prepare(uri: str) -> None:
    """Create and migrate a SQLite store if needed, one process at a time; raises ``StoreNotReady``.

    Other stores (a server, PostgreSQL) are prepared by whoever runs them.
    """
    path = uri_file(uri)  # an in-memory store needs no preparing
    if path is None:
        return
    problem = diagnose(uri)
    if problem:
        raise StoreNotReady(problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process migrates: seconds at most
        from .mlflow_writer import open_store

        try:
            open_store(uri)  # creates (a project's store with its artifacts beside it), migrates, verifies
        except Exception as exc:
            raise StoreNotReady(diagnose(uri) or _explain(uri, exc)) from None
    finally:
        os.close(fd)
