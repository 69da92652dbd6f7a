"""``journal.db``: batches of run records waiting for MLflow, and where each run key went.

SQLite in WAL mode, file mode 0600, under ``.mlops_magics/`` (``MLOPS_MAGICS_HOME``).
Several processes may share one journal (the kernels of a project, a sweep's workers):
they only append; the journal's one delivery process (``deliverer``, ``deliverd``)
delivers every pending batch of each URI, in order.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass

from .. import naming
from ..locations import uri_without_credentials
from ..processes import alive
from ..secrets import mask_text
from ..sqlite_files import write_transaction
from . import records
from .records import Op
from .resilient import ResilientFile
from .setaside import SetAside, describe

LATEST_METRICS_DAYS = 7  # how long each run's latest metric values stay readable here

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uri TEXT NOT NULL,
    ops TEXT NOT NULL,
    n_ops INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_uri ON batches (uri, id);
CREATE TABLE IF NOT EXISTS runs (
    uri TEXT NOT NULL, key TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (uri, key)
);
CREATE TABLE IF NOT EXISTS open_runs (
    uri TEXT NOT NULL, key TEXT NOT NULL, owner TEXT NOT NULL, kind TEXT, PRIMARY KEY (uri, key)
);
CREATE TABLE IF NOT EXISTS leases (  -- unused since one delivery process holds a file lock
    uri TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS wakeups (
    uri TEXT PRIMARY KEY, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS latest_metrics (
    uri TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, value REAL, ts INTEGER NOT NULL,
    step INTEGER NOT NULL, PRIMARY KEY (uri, key, name)
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT, uri TEXT, op TEXT, error TEXT, at REAL
);
"""


@dataclass
class Batch:
    id: int
    uri: str
    ops: list[Op]
    done: int
    attempts: int
    owner: str


def journal_uri(uri: str) -> str:
    """The URI as stored: credentials never land in the journal."""
    return uri_without_credentials(uri)


def new_owner() -> str:
    """An owner id naming this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its process is gone."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return alive(int(pid))


def _keep_latest(db: sqlite3.Connection, uri: str, key: str, metrics: list) -> None:
    """Keep each metric's latest point as MLflow picks it: the largest (step, timestamp, value)."""
    best: dict[str, tuple] = {}
    for name, value, ts, step in metrics:  # values here are floats (NaN included): tuples compare as _later does
        point = (int(step), int(ts), value)
        known = best.get(name)
        if known is None or point > known:
            best[name] = point
    for name, (step, ts, value) in best.items():
        row = db.execute("SELECT step, ts, value FROM latest_metrics WHERE uri = ? AND key = ? AND name = ?",
                         (uri, key, name)).fetchone()
        if row is None or _later((step, ts, value), (row[0], row[1], row[2])):
            db.execute("INSERT OR REPLACE INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?)",
                       (uri, key, name, value, ts, step))


def _later(a: tuple, b: tuple) -> bool:
    nan = float("nan")  # SQLite keeps NaN as NULL
    return (a[0], a[1], nan if a[2] is None else a[2]) > (b[0], b[1], nan if b[2] is None else b[2])


class Journal(ResilientFile, SetAside):
    """One journal file; safe to use from several threads and processes.

    A storage fault never reaches the caller of ``append`` or of the reads a cell makes
    (``pending``, ``last_error``, ...): see ``ResilientFile``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path, _SCHEMA)

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._conn().execute(sql, args)

    # -- producer side -----------------------------------------------------------
    def append(self, uri: str, ops: list[Op], owner: str) -> int:
        """Commit ``ops`` as one batch; returns its id. Tracks which runs are open.

        When the journal cannot be written (full disk, read-only, locked), the batch is
        kept in memory, behind any held before it, and written when it can be; then 0.
        """
        return self._keep(journal_uri(uri), ops, owner)

    def _commit(self, uri: str, ops: list[Op], owner: str) -> int:
        with write_transaction(self._conn()) as db:  # a full disk's own rollback keeps its error
            cur = db.execute(
                "INSERT INTO batches (uri, ops, n_ops, owner, created) VALUES (?, ?, ?, ?, ?)",
                (uri, json.dumps(ops, separators=(",", ":")), len(ops), owner, time.time()))
            for op in ops:
                if op["op"] == records.START:
                    kind = op["tags"].get(naming.KIND)
                    db.execute("INSERT OR REPLACE INTO open_runs VALUES (?, ?, ?, ?)", (uri, op["key"], owner, kind))
                elif op["op"] == records.END:
                    db.execute("DELETE FROM open_runs WHERE uri = ? AND key = ?", (uri, op["key"]))
                elif op["op"] == records.LOG and op.get("metrics"):
                    _keep_latest(db, uri, op["key"], op["metrics"])
        return int(cur.lastrowid)

    def prune_latest_metrics(self) -> None:
        """Forget the latest metric values of runs older than ``LATEST_METRICS_DAYS``."""
        self._write("DELETE FROM latest_metrics WHERE ts < ?", ((time.time() - LATEST_METRICS_DAYS * 86400) * 1000,))

    def latest_metrics(self, uri: str, keys: list[str]) -> dict[str, dict[str, float]]:
        """``{key: {metric: value}}``: each run's latest values as MLflow will show them, from
        what was recorded (delivered or not), for runs recorded in the last week."""
        out: dict[str, dict[str, float]] = {}
        db, uri = self._conn(), journal_uri(uri)
        for key in keys:
            rows = db.execute("SELECT name, value FROM latest_metrics WHERE uri = ? AND key = ?", (uri, key))
            out[key] = {name: (float("nan") if value is None else value) for name, value in rows}
        return out

    def pending(self, uri: str | None = None, owner: str | None = None) -> int:
        """Records (ops) not yet delivered, for one URI and/or one owner: in the file, and
        held in memory while the file cannot be written."""
        sql, args = "SELECT COALESCE(SUM(n_ops - done), 0) FROM batches WHERE 1=1", []
        if uri is not None:
            sql, args = sql + " AND uri = ?", [*args, journal_uri(uri)]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        known = self._known.get((uri, owner), 0)  # the file unreadable (locked): the last answer
        stored = self._read(lambda: int(self._conn().execute(sql, args).fetchone()[0]), known)
        self._known[(uri, owner)] = stored
        held = sum(len(ops) for u, ops, o in self.held()
                   if (uri is None or u == journal_uri(uri)) and (owner is None or o == owner))
        return stored + held

    def uris(self) -> list[str]:
        rows = self._conn().execute("SELECT DISTINCT uri FROM batches UNION SELECT DISTINCT uri FROM open_runs")
        return [r[0] for r in rows]

    def last_error(self, uri: str) -> str | None:
        def read():
            return self._conn().execute(
                "SELECT last_error FROM batches WHERE uri = ? AND last_error IS NOT NULL ORDER BY id LIMIT 1",
                (journal_uri(uri),)).fetchone()

        row = self._read(read, None)
        return row[0] if row else None

    def rejected(self, uri: str) -> list[str]:
        """The latest records set aside for ``uri`` (at most 5), each as ``what: why``."""
        def read():
            return self._conn().execute("SELECT op, error FROM rejected WHERE uri = ? ORDER BY id DESC LIMIT 5",
                                        (journal_uri(uri),)).fetchall()

        return [f"{describe(op)}: {err}" for op, err in self._read(read, [])]

    # -- flusher side ------------------------------------------------------------
    def next_batch(self, uri: str) -> Batch | None:
        row = self._conn().execute(
            "SELECT id, uri, ops, done, attempts, owner FROM batches WHERE uri = ? ORDER BY id LIMIT 1",
            (journal_uri(uri),)).fetchone()
        if row is None:
            return None
        self._write("UPDATE batches SET attempts = attempts + 1 WHERE id = ?", (row[0],))
        return Batch(id=row[0], uri=row[1], ops=json.loads(row[2]), done=row[3], attempts=row[4] + 1, owner=row[5])

    def progress(self, batch: Batch, done: int) -> None:
        self._write("UPDATE batches SET done = ? WHERE id = ?", (done, batch.id))

    def failed(self, batch: Batch, error: str) -> None:
        self._write("UPDATE batches SET last_error = ? WHERE id = ?", (mask_text(error), batch.id))

    def delivered(self, batch: Batch) -> None:
        self._write("DELETE FROM batches WHERE id = ?", (batch.id,))

    def reject(self, uri: str, op: Op, error: str) -> None:
        """Set ``op`` aside, whole, with MLflow's reason: ``sync --retry-rejected`` sends it again."""
        self._write("INSERT INTO rejected (uri, op, error, at) VALUES (?, ?, ?, ?)",
                    (journal_uri(uri), json.dumps(op, separators=(",", ":")), mask_text(error), time.time()))

    def wake(self, uri: str) -> None:
        """Ask whoever delivers ``uri`` (maybe another process) to retry now, skipping backoff."""
        self.retry_held()  # a flush asks for delivery: records held in memory go to the file first
        self._read(self._write, None, "INSERT OR REPLACE INTO wakeups VALUES (?, ?)", (journal_uri(uri), time.time()))

    def woken_at(self, uri: str) -> float:
        row = self._conn().execute("SELECT at FROM wakeups WHERE uri = ?", (journal_uri(uri),)).fetchone()
        return row[0] if row else 0.0

    def run_id(self, uri: str, key: str) -> str | None:
        row = self._conn().execute("SELECT run_id FROM runs WHERE uri = ? AND key = ?",
                                   (journal_uri(uri), key)).fetchone()
        return row[0] if row else None

    def map_run(self, uri: str, key: str, run_id: str) -> None:
        self._write("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (journal_uri(uri), key, run_id))

    def orphaned_runs(self, uri: str) -> list[tuple[str, str | None]]:
        """Open runs whose owning process is gone: (key, kind)."""
        rows = self._conn().execute("SELECT key, owner, kind FROM open_runs WHERE uri = ?", (journal_uri(uri),))
        return [(key, kind) for key, owner, kind in rows.fetchall() if not owner_alive(owner)]
