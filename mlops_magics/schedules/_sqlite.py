"""The schedule store in ``schedules.db`` (SQLite, WAL): one connection per thread.

``BEGIN IMMEDIATE`` takes the file's write lock at once, so one claimer at a time
makes its decision and its claim.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import sqlite_files

_BUSY_MS = 30000


class SqliteBackend:
    """Connections, transactions and dialect of the SQLite store."""

    types = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"}
    integrity_error = sqlite3.IntegrityError

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.where = self.path  # what to show: the file itself
        self._local = sqlite_files.PerThread()
        sqlite_files.make_private(self.path)  # 0600 before SQLite creates it (its -wal/-shm follow), 0700 folder

    def _conn(self) -> sqlite3.Connection:
        db = self._local.conn
        if db is None:
            db = sqlite_files.connect(self.path, busy_ms=_BUSY_MS)
            db.row_factory = sqlite3.Row
            self._local.conn = db
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
        with sqlite_files.write_transaction(self._conn()):
            yield

    def close(self) -> None:
        self._local.close()
