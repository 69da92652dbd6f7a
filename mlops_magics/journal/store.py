"""``journal.db``: batches of run records waiting for MLflow, and where each run key went.

SQLite in WAL mode, file mode 0600, under ``.mlops_magics/`` (``MLOPS_MAGICS_HOME``).
Several processes may share one journal (a sweep's workers in one folder): each
URI has one lease, and whoever holds it delivers every pending batch for that URI,
in order. A lease whose holder died (same host, process gone) or went quiet is taken
over, so ``mlops-magics sync`` can deliver what a killed kernel left.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import naming
from ..locations import display_uri
from ..processes import alive
from ..tracking.records import Op

LEASE_SECONDS = 30.0
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
CREATE TABLE IF NOT EXISTS leases (
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
    return display_uri(uri).replace("***@", "")


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
    for name, value, ts, step in metrics:
        point = (int(step), int(ts), value)
        if name not in best or _later(point, best[name]):
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


class Journal:
    """One journal file; safe to use from several threads and processes."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            # Create it 0600 before SQLite does. Only when new: closing any descriptor of a
            # database file drops every POSIX lock this process holds on it, including
            # those of open SQLite connections ("disk I/O error" follows).
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(self.path, 0o600)
        with self._conn() as db:
            db.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._conn().execute(sql, args)

    # -- producer side -----------------------------------------------------------
    def append(self, uri: str, ops: list[Op], owner: str) -> int:
        """Commit ``ops`` as one batch; returns its id. Tracks which runs are open."""
        uri = journal_uri(uri)
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "INSERT INTO batches (uri, ops, n_ops, owner, created) VALUES (?, ?, ?, ?, ?)",
                (uri, json.dumps(ops, separators=(",", ":")), len(ops), owner, time.time()))
            for op in ops:
                if op["op"] == "start":
                    kind = op["tags"].get(naming.KIND)
                    db.execute("INSERT OR REPLACE INTO open_runs VALUES (?, ?, ?, ?)", (uri, op["key"], owner, kind))
                elif op["op"] == "end":
                    db.execute("DELETE FROM open_runs WHERE uri = ? AND key = ?", (uri, op["key"]))
                elif op["op"] == "log" and op.get("metrics"):
                    _keep_latest(db, uri, op["key"], op["metrics"])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
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
        """Records (ops) not yet delivered, for one URI and/or one owner."""
        sql, args = "SELECT COALESCE(SUM(n_ops - done), 0) FROM batches WHERE 1=1", []
        if uri is not None:
            sql, args = sql + " AND uri = ?", [*args, journal_uri(uri)]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        return int(self._conn().execute(sql, args).fetchone()[0])

    def uris(self) -> list[str]:
        rows = self._conn().execute("SELECT DISTINCT uri FROM batches UNION SELECT DISTINCT uri FROM open_runs")
        return [r[0] for r in rows]

    def last_error(self, uri: str) -> str | None:
        row = self._conn().execute(
            "SELECT last_error FROM batches WHERE uri = ? AND last_error IS NOT NULL ORDER BY id LIMIT 1",
            (journal_uri(uri),)).fetchone()
        return row[0] if row else None

    def rejected(self, uri: str) -> list[str]:
        rows = self._conn().execute("SELECT op, error FROM rejected WHERE uri = ? ORDER BY id DESC LIMIT 5",
                                    (journal_uri(uri),))
        return [f"{op}: {err}" for op, err in rows]

    # -- flusher side ------------------------------------------------------------
    def acquire(self, uri: str, owner: str) -> bool:
        """Take or renew the delivery lease for ``uri``."""
        uri, now = journal_uri(uri), time.time()
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT owner, until FROM leases WHERE uri = ?", (uri,)).fetchone()
            free = row is None or row[0] == owner or row[1] < now or not owner_alive(row[0])
            if free:
                db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (uri, owner, now + LEASE_SECONDS))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return free

    def lease_holder(self, uri: str) -> str | None:
        """The live owner of ``uri``'s delivery lease, if any."""
        row = self._conn().execute("SELECT owner, until FROM leases WHERE uri = ?", (journal_uri(uri),)).fetchone()
        if row is None or row[1] < time.time() or not owner_alive(row[0]):
            return None
        return row[0]

    def release(self, uri: str, owner: str) -> None:
        self._write("DELETE FROM leases WHERE uri = ? AND owner = ?", (journal_uri(uri), owner))

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
        self._write("UPDATE batches SET last_error = ? WHERE id = ?", (error, batch.id))

    def delivered(self, batch: Batch) -> None:
        self._write("DELETE FROM batches WHERE id = ?", (batch.id,))

    def reject(self, uri: str, op: Op, error: str) -> None:
        self._write("INSERT INTO rejected (uri, op, error, at) VALUES (?, ?, ?, ?)",
                    (journal_uri(uri), op["op"], error, time.time()))

    def wake(self, uri: str) -> None:
        """Ask whoever delivers ``uri`` (maybe another process) to retry now, skipping backoff."""
        self._write("INSERT OR REPLACE INTO wakeups VALUES (?, ?)", (journal_uri(uri), time.time()))

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

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
