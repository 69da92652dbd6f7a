"""The schedule store in ``schedules.db`` (SQLite, WAL): one connection per thread.

``BEGIN IMMEDIATE`` takes the file's write lock at once, so one claimer at a time
makes its decision and its claim.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import locations


class SqliteBackend:
    """Connections, transactions and dialect of the SQLite store."""

    types = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"}
    integrity_error = sqlite3.IntegrityError

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.where = self.path  # what to show: the file itself
        self._local = threading.local()
        locations.private_file(self.path)  # 0600 before SQLite creates it (its -wal/-shm follow), 0700 folder

    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def create(self, schema: str) -> None:
        self._conn().executescript(schema)

    def execute(self, sql: str, args: tuple = ()):
        return self._conn().execute(sql, args)

    def insert(self, sql: str, args: tuple) -> int:
        """Run an INSERT; the new row's ``id``."""
        return self._conn().execute(sql, args).lastrowid

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[None]:
        """One writer at a time for the whole file (``lock`` needs nothing more here)."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
