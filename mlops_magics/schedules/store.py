"""``schedules.db``: the schedules and every slot they claimed, in SQLite (WAL) in the journal folder.

A slot runs once even when several ``run-due`` or ``scheduler`` processes race for it:
the decision (due? missed? still running?) and the claim are made in one
``BEGIN IMMEDIATE`` transaction, and ``UNIQUE (schedule, kind, slot)`` makes a second
claim of the same slot impossible whatever happens. Unlike jupyter-scheduler (one
in-memory queue per server, so several servers run a job several times) there is no
state outside this file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .. import locations
from ..errors import did_you_mean
from ..secrets import mask_text
from . import cron
from .cron import ScheduleError
from .decide import Decision, decide

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    parameters TEXT NOT NULL DEFAULT '[]',
    on_alert TEXT,
    catch_up TEXT NOT NULL DEFAULT 'one',
    paused INTEGER NOT NULL DEFAULT 0,
    since TEXT NOT NULL,
    experiment TEXT,
    tracking_uri TEXT,
    workdir TEXT NOT NULL,
    timeout REAL,
    retries INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule TEXT NOT NULL,
    kind TEXT NOT NULL,
    slot TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    caught_up INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,
    run_key TEXT,
    owner TEXT,
    triggered_by TEXT,
    claimed_at TEXT NOT NULL,
    ended_at TEXT,
    UNIQUE (schedule, kind, slot)
);
CREATE UNIQUE INDEX IF NOT EXISTS one_trigger_per_run ON slots (schedule, triggered_by)
    WHERE triggered_by IS NOT NULL;
CREATE INDEX IF NOT EXISTS slots_by_state ON slots (schedule, state);
"""

CRON, TRIGGER = "cron", "trigger"
RUNNING, FINISHED, FAILED, SKIPPED, MISSED = "running", "finished", "failed", "skipped", "missed"


@dataclass
class Schedule:
    name: str
    notebook: str
    cron: str
    timezone: str
    since: str  # no slot before this moment (UTC key) runs: when added or last resumed
    workdir: str
    parameters: list[list[str]] = field(default_factory=list)  # [name, text] as given to -p
    on_alert: str | None = None
    catch_up: str = "one"
    paused: bool = False
    experiment: str | None = None
    tracking_uri: str | None = None
    timeout: float | None = None
    retries: int = 0
    created: str = ""


@dataclass
class Slot:
    id: int
    schedule: str
    kind: str
    slot: str  # UTC key
    state: str
    detail: str | None = None
    caught_up: int = 0
    run_id: str | None = None
    run_key: str | None = None
    owner: str | None = None
    triggered_by: str | None = None
    claimed_at: str = ""
    ended_at: str | None = None

    @property
    def time(self) -> datetime:
        return cron.from_key(self.slot)


def schedules_path() -> Path:
    """``<journal folder>/schedules.db``."""
    return locations.home() / "schedules.db"


class ScheduleStore:
    """The schedules file; safe to share between threads and processes."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else schedules_path()
        self._local = threading.local()
        locations.private_file(self.path)  # 0600 before SQLite creates it (its -wal/-shm follow), 0700 folder
        self._conn().executescript(_SCHEMA)

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

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- schedules -----------------------------------------------------------------
    def add(self, s: Schedule) -> None:
        try:
            self._conn().execute(
                "INSERT INTO schedules (name, notebook, cron, timezone, parameters, on_alert, catch_up, paused,"
                " since, experiment, tracking_uri, workdir, timeout, retries, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.name, s.notebook, s.cron, s.timezone, json.dumps(s.parameters), s.on_alert, s.catch_up,
                 int(s.paused), s.since, s.experiment, s.tracking_uri, s.workdir, s.timeout, s.retries,
                 s.created or cron.key(cron.now())))
        except sqlite3.IntegrityError:
            raise ScheduleError(f"a schedule named {s.name!r} exists already: "
                                f"`mlops-magics schedule remove {s.name}` first, or pick another name") from None

    def all(self) -> list[Schedule]:
        rows = self._conn().execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_schedule(r) for r in rows]

    def get(self, name: str) -> Schedule:
        """The schedule ``name``, or a one-line error suggesting the closest name."""
        row = self._conn().execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r[0] for r in self._conn().execute("SELECT name FROM schedules")]
            listed = ", ".join(sorted(names)) or "none yet (`mlops-magics schedule add`)"
            raise ScheduleError(f"no schedule named {name!r}.{did_you_mean(name, names)} Schedules: {listed}")
        return _schedule(row)

    def remove(self, name: str) -> Schedule:
        s = self.get(name)
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM slots WHERE schedule = ?", (name,))
            db.execute("DELETE FROM schedules WHERE name = ?", (name,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return s

    def set_paused(self, name: str, paused: bool, at: datetime) -> Schedule:
        """Pause, or resume: slots that fell while paused are not missed, so ``since`` moves on."""
        s = self.get(name)
        if paused:
            self._conn().execute("UPDATE schedules SET paused = 1 WHERE name = ?", (name,))
        elif s.paused:
            self._conn().execute("UPDATE schedules SET paused = 0, since = ? WHERE name = ?",
                                 (max(s.since, cron.key(at)), name))
        return self.get(name)

    def referrers(self, name: str) -> list[str]:
        """Schedules whose ``--on-alert`` names ``name``."""
        rows = self._conn().execute("SELECT name FROM schedules WHERE on_alert = ? ORDER BY name", (name,))
        return [r[0] for r in rows]

    # -- slots ---------------------------------------------------------------------
    def claim(self, name: str, at: datetime, owner: str) -> tuple[Decision, Slot | None]:
        """Decide what ``name`` does at ``at`` and record it, atomically. Returns the decision and
        the recorded row (None when nothing is due or the schedule is paused)."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")  # one claimer at a time: the decision and the claim are one step
        try:
            row = db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return Decision("gone"), None
            s = _schedule(row)
            last = db.execute("SELECT MAX(slot) FROM slots WHERE schedule = ? AND kind = ?", (name, CRON)).fetchone()[0]
            running = self._running(db, name, at)
            d = decide(s, at, cron.from_key(last) if last else None, running)
            slot = self._record(db, s, CRON, d, at, owner) if d.state in (RUNNING, SKIPPED, MISSED) else None
            db.execute("COMMIT")
            return d, slot
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def claim_trigger(self, name: str, at: datetime, triggered_by: str, owner: str) -> tuple[Decision, Slot | None]:
        """Claim a run of ``name`` started by the alert of run ``triggered_by``: at most one per alert."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
            done = db.execute("SELECT 1 FROM slots WHERE schedule = ? AND triggered_by = ?",
                              (name, triggered_by)).fetchone()
            if row is None or done:
                db.execute("ROLLBACK")
                return Decision("gone" if row is None else "claimed"), None
            s = _schedule(row)
            running = self._running(db, name, at)
            if s.paused:
                d = Decision(SKIPPED, at, detail=f"{name} is paused")
            elif running is not None:
                d = Decision(SKIPPED, at, detail=f"its run for {cron.local_iso(running.time, s.timezone)} is still going")
            else:
                d = Decision(RUNNING, at)
            slot = self._record(db, s, TRIGGER, d, at, owner, triggered_by=triggered_by)
            db.execute("COMMIT")
            return d, slot
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _running(self, db, name: str, at: datetime) -> Slot | None:
        """The schedule's run still going, if any; a run whose process died is marked failed."""
        from ..journal.store import owner_alive

        for row in db.execute("SELECT * FROM slots WHERE schedule = ? AND state = ? ORDER BY slot", (name, RUNNING)):
            slot = Slot(**dict(row))
            if slot.owner and owner_alive(slot.owner):
                return slot
            db.execute("UPDATE slots SET state = ?, detail = ?, ended_at = ? WHERE id = ?",
                       (FAILED, f"the process running it ({slot.owner}) ended before the run did", cron.key(at), slot.id))
        return None

    def _record(self, db, s: Schedule, kind: str, d: Decision, at: datetime, owner: str,
                triggered_by: str | None = None) -> Slot:
        cur = db.execute(
            "INSERT INTO slots (schedule, kind, slot, state, detail, caught_up, owner, triggered_by, claimed_at, ended_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.name, kind, cron.key(d.slot), d.state, d.detail, d.caught_up, owner, triggered_by, cron.key(cron.now()),
             None if d.state == RUNNING else cron.key(at)))
        return self.slot(cur.lastrowid, db)

    def slot(self, slot_id: int, db=None) -> Slot:
        row = (db or self._conn()).execute("SELECT * FROM slots WHERE id = ?", (slot_id,)).fetchone()
        return Slot(**dict(row))

    def finish(self, slot_id: int, state: str, *, run_id: str | None = None, run_key: str | None = None,
               detail: str | None = None) -> None:
        self._conn().execute("UPDATE slots SET state = ?, run_id = ?, run_key = ?, detail = ?, ended_at = ?"
                             " WHERE id = ?", (state, run_id, run_key, mask_text(detail), cron.key(cron.now()), slot_id))

    def history(self, name: str | None = None, limit: int = 1000) -> list[Slot]:
        """Slots, newest first (all schedules, or ``name``'s)."""
        sql, args = "SELECT * FROM slots", ()
        if name is not None:
            sql, args = sql + " WHERE schedule = ?", (name,)
        rows = self._conn().execute(sql + " ORDER BY slot DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Slot(**dict(r)) for r in rows]

    def last(self, name: str) -> Slot | None:
        """The newest slot that ran (or is running), else the newest of any state."""
        db = self._conn()
        row = db.execute("SELECT * FROM slots WHERE schedule = ? AND state IN (?, ?, ?) ORDER BY claimed_at DESC,"
                         " id DESC LIMIT 1", (name, RUNNING, FINISHED, FAILED)).fetchone()
        row = row or db.execute("SELECT * FROM slots WHERE schedule = ? ORDER BY id DESC LIMIT 1", (name,)).fetchone()
        return Slot(**dict(row)) if row else None

    def last_cron_slot(self, name: str) -> datetime | None:
        row = self._conn().execute("SELECT MAX(slot) FROM slots WHERE schedule = ? AND kind = ?", (name, CRON)).fetchone()
        return cron.from_key(row[0]) if row and row[0] else None


def _schedule(row: sqlite3.Row) -> Schedule:
    d = dict(row)
    d["parameters"] = json.loads(d["parameters"] or "[]")
    d["paused"] = bool(d["paused"])
    return Schedule(**d)
