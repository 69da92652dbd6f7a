"""Storage faults of the journal: what went wrong, in words, and a corrupt file set aside.

The journal must never break a user's cell. A full disk, a read-only or locked journal
makes the journal keep records in memory (``store.Journal``); this module names the
real cause for the one warning line the user sees, and moves a corrupt journal aside
(``journal.db.corrupt-<time>``), salvaging what can still be read into a new one.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

from ..errors import first_line
from ..sqlite_files import connect_read_only

log = logging.getLogger("mlops_magics")

_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_CAUSES = {  # SQLite's error name (prefix) -> what a user understands
    "SQLITE_FULL": "disk is full",
    "SQLITE_READONLY": "read-only: cannot write there",
    "SQLITE_BUSY": "locked by another process",
    "SQLITE_LOCKED": "locked by another process",
    "SQLITE_CORRUPT": "corrupt",
    "SQLITE_NOTADB": "corrupt (not a database)",
    "SQLITE_CANTOPEN": "cannot be opened",
    "SQLITE_PERM": "permission denied",
}
_ERRNO = {errno.ENOSPC: "disk is full", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system",
          errno.EACCES: "permission denied", errno.EPERM: "permission denied"}
# Tables worth salvaging, with their columns: what waits for MLflow, and which run keys
# are already MLflow runs (without it a replay would create duplicates).
_SALVAGE = {
    "batches": "uri, ops, n_ops, done, attempts, owner, created, last_error",
    "runs": "uri, key, run_id",
    "open_runs": "uri, key, owner, kind",
    "rejected": "uri, op, error, at",
}


def is_storage_error(exc: BaseException) -> bool:
    """A fault of the disk or the file (not a bug of ours): keep the records, report it."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return False
    return isinstance(exc, sqlite3.DatabaseError)


def is_corrupt(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return any(name.startswith(c) for c in _CORRUPT) or "file is not a database" in str(exc) \
        or "malformed" in str(exc)


def is_locked(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


def cause(exc: BaseException, path: str | os.PathLike) -> str:
    """The real cause of ``exc`` in a few words ("disk is full"), not SQLite's follow-up error."""
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, words in _CAUSES.items():
        if name.startswith(prefix):
            break
    else:
        words = first_line(exc) or type(exc).__name__
    if words in ("disk I/O error", "cannot be opened") or name.startswith("SQLITE_IOERR"):
        words = _disk_state(Path(path)) or words
    return words


def _disk_state(path: Path) -> str | None:
    """SQLite reports some full or read-only disks as plain I/O errors: look at the disk."""
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), None)
    if folder is None:
        return None
    try:
        if shutil.disk_usage(folder).free < 64 * 1024:
            return "disk is full"
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        return None
    return None


def move_aside(path: Path) -> Path:
    """Rename a corrupt journal (and its WAL, which belongs to it) to ``<name>.corrupt-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.rename(path, aside)
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        if side.exists():
            try:
                if suffix == "-wal":
                    os.rename(side, Path(str(aside) + suffix))
                else:
                    side.unlink()  # rebuilt from the WAL by whoever opens it
            except OSError:
                log.debug("could not move %s aside", side, exc_info=True)
    return aside


def salvage(aside: Path, db: sqlite3.Connection) -> int:
    """Copy what can be read from the corrupt file ``aside`` into the open new journal ``db``;
    returns how many records (ops waiting for MLflow) were saved."""
    try:
        old = connect_read_only(aside, timeout=1.0)
    except sqlite3.Error:
        return 0
    saved = 0
    try:
        for table, columns in _SALVAGE.items():
            rows = _readable_rows(old, table, columns)
            marks = ", ".join("?" * len(columns.split(",")))
            verb = "INSERT" if table in ("batches", "rejected") else "INSERT OR REPLACE"
            for row in rows:
                try:
                    db.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", row)
                except sqlite3.Error:
                    continue
                if table == "batches":
                    saved += int(row[2]) - int(row[3])
    finally:
        old.close()
    return saved


def _readable_rows(old: sqlite3.Connection, table: str, columns: str) -> list[tuple]:
    """Every row of ``table`` still readable: all at once, else one by one around bad pages."""
    try:
        return old.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall()
    except sqlite3.Error:
        pass
    try:
        ids = [r[0] for r in old.execute(f"SELECT rowid FROM {table}")]
    except sqlite3.Error:
        return []
    rows = []
    for rowid in sorted(ids):
        try:
            row = old.execute(f"SELECT {columns} FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.Error:
            continue
        if row is not None:
            rows.append(row)
    return rows
