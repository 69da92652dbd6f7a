"""An SQLite file that never breaks its caller on a storage fault: the journal's foundation.

A full disk, a read-only or locked file: writes are kept in memory, in order, and
written as soon as the file takes them again; reads answer what was last known. A
corrupt file is moved aside (``journal.db.corrupt-<time>``) and what can be read is
salvaged into a new one. Each fault gives one message (``take_notice``) naming the
file and the real cause; the kernel shows it once under the cell.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from .. import sqlite_files
from . import faults

log = logging.getLogger("mlops_magics")

BUSY_MS = 5000  # waiting longer on another process's lock would stall the user's cell
_RETRY_S = 2.0  # while the file refuses writes, how often to try again
_FAULT_BUSY_MS = 100  # ... and how long each try may wait for a lock


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class ResilientFile:
    """Per-thread connections to one SQLite file in WAL mode, file mode 0600."""

    def __init__(self, path: str | os.PathLike, schema: str) -> None:
        self.path, self._schema = Path(path), schema
        self._local = sqlite_files.PerThread()  # conn, and the inode it opened (ino)
        self._guard = threading.RLock()
        self._held: list[tuple] = []  # arguments of writes the file refused, oldest first
        self._fault: str | None = None  # why writes are held, while they are
        self._notice: str | None = None  # a message the user has not seen yet
        self._retry_at = 0.0
        self._known: dict = {}  # last answers of reads, for while the file cannot be read
        try:
            self._attempt(self._conn)
        except Exception as exc:
            if not faults.is_storage_error(exc):
                raise
            self._set_fault(exc)

    # -- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection; a new one when the file was replaced (moved aside)."""
        ino = _inode(self.path)
        db = self._local.conn
        if db is not None and ino is not None and self._local.ino == ino:
            return db
        self._drop_conn()
        return self._open()

    def _open(self) -> sqlite3.Connection:
        sqlite_files.make_private(self.path)  # 0600 before SQLite creates it, its folder 0700
        self._local.tried = _inode(self.path)
        db = sqlite_files.connect(self.path, busy_ms=BUSY_MS, schema=self._schema)
        self._local.conn, self._local.ino = db, self._local.tried
        return db

    def _drop_conn(self) -> None:
        try:
            self._local.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        self._drop_conn()

    # -- faults --------------------------------------------------------------------
    def _attempt(self, fn, *args):
        """``fn(*args)``; when the file turns out corrupt, set it aside and try once more."""
        try:
            return fn(*args)
        except Exception as exc:
            if not (faults.is_storage_error(exc) and faults.is_corrupt(exc)):
                raise
            self._recover()
            return fn(*args)

    def _read(self, fn, default, *args):
        """A read the caller can do without: on a storage fault, ``default``."""
        try:
            return self._attempt(fn, *args)
        except Exception as exc:
            if not faults.is_storage_error(exc):
                raise
            log.debug("could not read %s: %s", self.path, exc)
            return default

    def _recover(self) -> None:
        """Move the corrupt file aside, open a new one and salvage what can be read into it."""
        with self._guard:
            failed = getattr(self._local, "ino", None) or getattr(self._local, "tried", None)
            self._drop_conn()
            now = _inode(self.path)
            if now is not None and failed is not None and now != failed:
                return  # another thread or process set it aside already: use the new file
            aside = faults.move_aside(self.path)
            with sqlite_files.write_transaction(self._conn()) as db:
                saved = faults.salvage(aside, db)
            self._notice = (f"mlops-magics: the journal {self.path} was corrupt: moved it to {aside.name} "
                            f"and saved the {saved} readable records waiting for MLflow in a new {self.path.name}")
            log.info(self._notice)

    def _set_fault(self, exc: BaseException) -> None:
        cause = faults.cause(exc, self.path)
        message = (f"mlops-magics cannot write its journal {self.path}: {cause}; records are kept "
                   "in memory and written when it can")
        with self._guard:
            if message != self._fault:
                self._fault = self._notice = message
                log.info(message)

    def take_notice(self) -> str | None:
        """The latest storage message not yet shown to the user (once each), or None."""
        with self._guard:
            notice, self._notice = self._notice, None
            return notice

    @property
    def fault(self) -> str | None:
        """Why records are held in memory now, or None when the file takes them."""
        return self._fault

    # -- writes that must not fail ----------------------------------------------------
    def _commit(self, *args) -> int:
        """Write one held item (``args`` as given to ``_keep``); subclasses define it."""
        raise NotImplementedError

    def _keep(self, *args) -> int:
        """Write ``args`` after any held writes, in order; hold it when the file refuses.
        Returns what ``_commit`` returned, or 0 while held."""
        with self._guard:
            self._held.append(args)
            if len(self._held) > 1 and time.monotonic() < self._retry_at:
                return 0
            return self._write_held()

    def _write_held(self) -> int:
        result = 0
        while self._held:
            try:
                if self._fault:  # known trouble: a lock is not waited for long
                    self._conn().execute(f"PRAGMA busy_timeout={_FAULT_BUSY_MS}")
                result = self._attempt(self._commit, *self._held[0])
            except Exception as exc:
                if not faults.is_storage_error(exc):
                    self._held.pop(0)  # a bug of ours, not the disk: never retry it forever
                    raise
                self._set_fault(exc)
                self._retry_at = time.monotonic() + _RETRY_S
                return 0
            self._held.pop(0)
        if self._fault:
            self._fault = None
            log.info("mlops-magics: the journal %s takes records again", self.path)
            self._reset_busy()
        return result

    def _reset_busy(self) -> None:
        try:
            self._conn().execute(f"PRAGMA busy_timeout={BUSY_MS}")
        except Exception:
            pass

    def retry_held(self) -> int:
        """Write what is held now (a flush asks); returns how many writes are still held."""
        with self._guard:
            if self._held:
                self._write_held()
            return len(self._held)

    def held(self) -> list[tuple]:
        with self._guard:
            return list(self._held)
