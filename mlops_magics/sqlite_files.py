"""SQLite files: how ours are opened, and which file a ``sqlite:///`` URI names.

Our own databases (the journal, the schedule store) are files only their owner can read
(0600, in a 0700 folder), created with that mode before SQLite creates them, in WAL mode
with ``synchronous=NORMAL`` (durable across a process crash), in autocommit: a transaction
is :func:`write_transaction`, which takes the file's write lock at once. Each thread has its
own connection (:class:`PerThread`). A database someone else writes (an MLflow store) is
only ever opened read-only (:func:`connect_read_only`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from .locations import private_dir, private_file

URI_PREFIX = "sqlite:///"
IN_MEMORY = ":memory:"


# -- sqlite:/// URIs ----------------------------------------------------------------------
def uri_path(uri: str) -> Path | None:
    """The path of a ``sqlite:///`` URI, its query dropped, else None. Taken as written:
    ``sqlite:///:memory:`` gives ``Path(":memory:")`` (use :func:`uri_file` to leave it out)."""
    if not uri.startswith(URI_PREFIX):
        return None
    return Path(_path_text(uri))


def uri_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None: None too for an in-memory
    database (``sqlite:///:memory:``, ``sqlite:///``)."""
    if not uri.startswith(URI_PREFIX):
        return None
    text = _path_text(uri)
    return Path(text) if text and text != IN_MEMORY else None


def _path_text(uri: str) -> str:
    return uri[len(URI_PREFIX):].split("?", 1)[0]


# -- our own files ------------------------------------------------------------------------
def make_private(path: str | os.PathLike) -> Path:
    """``path`` made 0600 (its folder 0700) before SQLite opens it, its ``-wal``/``-shm`` too.

    Created only when new, and exclusively: closing any descriptor of a database file drops
    every POSIX lock this process holds on it, including those of open SQLite connections
    ("disk I/O error" follows), so an existing file is never opened here.
    """
    file = Path(path)
    private_dir(file.parent)  # 0700 even when it existed
    if not file.exists():
        try:
            os.close(os.open(file, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        except FileExistsError:
            pass
    return private_file(file)


def connect(path: str | os.PathLike, *, busy_ms: int, schema: str | None = None) -> sqlite3.Connection:
    """A connection to our database ``path`` (made private first with :func:`make_private`):
    WAL, ``synchronous=NORMAL``, autocommit, waiting up to ``busy_ms`` for another's lock;
    ``schema`` (``CREATE ... IF NOT EXISTS`` statements) run on it when given."""
    db = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA busy_timeout={busy_ms}")
        if schema is not None:
            db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: one writer at a time for the whole file, the lock
    taken before anything is read. Rolled back on any exception, unless SQLite rolled back by
    itself (a full disk does): then its error is what the caller sees."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class PerThread(threading.local):
    """This thread's connection, ``conn`` (None until the owner makes one); any DB-API
    connection (the PostgreSQL schedule store keeps its own here too). Other attributes set
    on it are per thread as well."""

    conn = None

    def close(self) -> None:
        """Close this thread's connection, if it has one; the next use makes a new one."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


# -- a database someone else writes -------------------------------------------------------
def connect_read_only(path: str | os.PathLike, *, timeout: float, **kwargs) -> sqlite3.Connection:
    """A read-only connection to ``path`` (never creates it); ``kwargs`` go to ``sqlite3.connect``."""
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=timeout, **kwargs)
