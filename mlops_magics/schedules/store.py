"""The schedules and every slot they claimed: ``schedules.db`` (SQLite, WAL) in the journal
folder, or a PostgreSQL database shared by several hosts (``$MLOPS_MAGICS_SCHEDULES_URI``).

A slot runs once even when several ``run-due`` or ``scheduler`` processes race for it:
the decision (due? missed? still running?) and the claim are made in one transaction
that only one claimer of a schedule is in at a time (``BEGIN IMMEDIATE`` in SQLite, an
advisory lock on the schedule in PostgreSQL), and ``UNIQUE (schedule, kind, slot)``
makes a second claim of the same slot impossible whatever happens. Unlike
jupyter-scheduler (one in-memory queue per server, so several servers run a job several
times) there is no state outside the store.

What differs between the two (connections, transactions, two column types, how an
INSERT gives its id) is in ``_sqlite`` and ``_postgres``; the SQL here is common to both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .. import locations
from ..errors import did_you_mean
from ..secrets import mask_text
from . import cron
from .cron import ScheduleError
from .decide import Decision, decide

# {serial} and {real} are each backend's own column types (``types``).
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
    timeout {real},
    retries INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
    id {serial},
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
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

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


def store_location() -> str | Path:
    """Where the schedules are: ``$MLOPS_MAGICS_SCHEDULES_URI`` (a ``postgresql://`` URI), else
    :func:`schedules_path`."""
    uri = os.environ.get(locations.SCHEDULES_URI_ENV, "").strip()
    if not uri:
        return schedules_path()
    if not uri.startswith(_POSTGRES_SCHEMES):
        raise ScheduleError(f"${locations.SCHEDULES_URI_ENV} is {locations.display_uri(uri)!r}: give a "
                            "postgresql://user:password@host:port/database URI, or unset it to keep schedules "
                            f"in {schedules_path()}")
    return uri


def _backend(where: str | os.PathLike | None):
    where = store_location() if where is None else where
    if isinstance(where, str) and where.startswith(_POSTGRES_SCHEMES):
        try:
            from ._postgres import PostgresBackend
        except ImportError as exc:
            if not (exc.name or "").startswith("psycopg"):
                raise
            raise ScheduleError(f"a PostgreSQL schedule store ({locations.display_uri(where)}) needs psycopg: "
                                "pip install 'mlops-magics[postgres]'") from None
        return PostgresBackend(where)
    from ._sqlite import SqliteBackend

    return SqliteBackend(where)


class ScheduleStore:
    """The schedules; safe to share between threads and processes (and, in PostgreSQL, hosts).

    ``path``: a SQLite file or a ``postgresql://`` URI (default: :func:`store_location`).
    ``self.path`` says where it is as it may be shown: the file, or the URI without its password.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self._db = _backend(path)
        self.path = self._db.where
        self._db.create(_SCHEMA.format(**self._db.types))

    def close(self) -> None:
        self._db.close()

    # -- schedules -----------------------------------------------------------------
    def add(self, s: Schedule) -> None:
        try:
            self._db.execute(
                "INSERT INTO schedules (name, notebook, cron, timezone, parameters, on_alert, catch_up, paused,"
                " since, experiment, tracking_uri, workdir, timeout, retries, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.name, s.notebook, s.cron, s.timezone, json.dumps(s.parameters), s.on_alert, s.catch_up,
                 int(s.paused), s.since, s.experiment, s.tracking_uri, s.workdir, s.timeout, s.retries,
                 s.created or cron.key(cron.now())))
        except self._db.integrity_error:
            raise ScheduleError(f"a schedule named {s.name!r} exists already: "
                                f"`mlops-magics schedule remove {s.name}` first, or pick another name") from None

    def all(self) -> list[Schedule]:
        rows = self._db.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_schedule(r) for r in rows]

    def get(self, name: str) -> Schedule:
        """The schedule ``name``, or a one-line error suggesting the closest name."""
        row = self._db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r["name"] for r in self._db.execute("SELECT name FROM schedules").fetchall()]
            listed = ", ".join(sorted(names)) or "none yet (`mlops-magics schedule add`)"
            raise ScheduleError(f"no schedule named {name!r}.{did_you_mean(name, names)} Schedules: {listed}")
        return _schedule(row)

    def remove(self, name: str) -> Schedule:
        s = self.get(name)
        with self._db.transaction(lock=name):
            self._db.execute("DELETE FROM slots WHERE schedule = ?", (name,))
            self._db.execute("DELETE FROM schedules WHERE name = ?", (name,))
        return s

    def set_paused(self, name: str, paused: bool, at: datetime) -> Schedule:
        """Pause, or resume: slots that fell while paused are not missed, so ``since`` moves on."""
        s = self.get(name)
        if paused:
            self._db.execute("UPDATE schedules SET paused = 1 WHERE name = ?", (name,))
        elif s.paused:
            self._db.execute("UPDATE schedules SET paused = 0, since = ? WHERE name = ?",
                             (max(s.since, cron.key(at)), name))
        return self.get(name)

    def referrers(self, name: str) -> list[str]:
        """Schedules whose ``--on-alert`` names ``name``."""
        rows = self._db.execute("SELECT name FROM schedules WHERE on_alert = ? ORDER BY name", (name,)).fetchall()
        return [r["name"] for r in rows]

    # -- slots ---------------------------------------------------------------------
    def claim(self, name: str, at: datetime, owner: str) -> tuple[Decision, Slot | None]:
        """Decide what ``name`` does at ``at`` and record it, atomically. Returns the decision and
        the recorded row (None when nothing is due or the schedule is paused)."""
        with self._db.transaction(lock=name):  # one claimer at a time: the decision and the claim are one step
            row = self._db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
            if row is None:
                return Decision("gone"), None
            s = _schedule(row)
            last = self.last_cron_slot(name)
            running = self._running(name, at)
            d = decide(s, at, last, running)
            slot = self._record(s, CRON, d, at, owner) if d.state in (RUNNING, SKIPPED, MISSED) else None
            return d, slot

    def claim_trigger(self, name: str, at: datetime, triggered_by: str, owner: str) -> tuple[Decision, Slot | None]:
        """Claim a run of ``name`` started by the alert of run ``triggered_by``: at most one per alert."""
        with self._db.transaction(lock=name):
            row = self._db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
            done = self._db.execute("SELECT 1 AS done FROM slots WHERE schedule = ? AND triggered_by = ?",
                                    (name, triggered_by)).fetchone()
            if row is None or done:
                return Decision("gone" if row is None else "claimed"), None
            s = _schedule(row)
            running = self._running(name, at)
            if s.paused:
                d = Decision(SKIPPED, at, detail=f"{name} is paused")
            elif running is not None:
                d = Decision(SKIPPED, at, detail=f"its run for {cron.local_iso(running.time, s.timezone)} is still going")
            else:
                d = Decision(RUNNING, at)
            return d, self._record(s, TRIGGER, d, at, owner, triggered_by=triggered_by)

    def _running(self, name: str, at: datetime) -> Slot | None:
        """The schedule's run still going, if any; a run whose process died is marked failed."""
        from ..journal.store import owner_alive

        rows = self._db.execute("SELECT * FROM slots WHERE schedule = ? AND state = ? ORDER BY slot",
                                (name, RUNNING)).fetchall()
        for row in rows:
            slot = Slot(**dict(row))
            if slot.owner and owner_alive(slot.owner):
                return slot
            self._db.execute("UPDATE slots SET state = ?, detail = ?, ended_at = ? WHERE id = ?",
                             (FAILED, f"the process running it ({slot.owner}) ended before the run did",
                              cron.key(at), slot.id))
        return None

    def _record(self, s: Schedule, kind: str, d: Decision, at: datetime, owner: str,
                triggered_by: str | None = None) -> Slot:
        slot_id = self._db.insert(
            "INSERT INTO slots (schedule, kind, slot, state, detail, caught_up, owner, triggered_by, claimed_at, ended_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.name, kind, cron.key(d.slot), d.state, d.detail, d.caught_up, owner, triggered_by, cron.key(cron.now()),
             None if d.state == RUNNING else cron.key(at)))
        return self.slot(slot_id)

    def slot(self, slot_id: int) -> Slot:
        row = self._db.execute("SELECT * FROM slots WHERE id = ?", (slot_id,)).fetchone()
        return Slot(**dict(row))

    def finish(self, slot_id: int, state: str, *, run_id: str | None = None, run_key: str | None = None,
               detail: str | None = None) -> None:
        self._db.execute("UPDATE slots SET state = ?, run_id = ?, run_key = ?, detail = ?, ended_at = ?"
                         " WHERE id = ?", (state, run_id, run_key, mask_text(detail), cron.key(cron.now()), slot_id))

    def history(self, name: str | None = None, limit: int = 1000) -> list[Slot]:
        """Slots, newest first (all schedules, or ``name``'s)."""
        sql, args = "SELECT * FROM slots", ()
        if name is not None:
            sql, args = sql + " WHERE schedule = ?", (name,)
        rows = self._db.execute(sql + " ORDER BY slot DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Slot(**dict(r)) for r in rows]

    def last(self, name: str) -> Slot | None:
        """The newest slot that ran (or is running), else the newest of any state."""
        row = self._db.execute("SELECT * FROM slots WHERE schedule = ? AND state IN (?, ?, ?) ORDER BY claimed_at DESC,"
                               " id DESC LIMIT 1", (name, RUNNING, FINISHED, FAILED)).fetchone()
        row = row or self._db.execute("SELECT * FROM slots WHERE schedule = ? ORDER BY id DESC LIMIT 1",
                                      (name,)).fetchone()
        return Slot(**dict(row)) if row else None

    def last_cron_slot(self, name: str) -> datetime | None:
        row = self._db.execute("SELECT MAX(slot) AS last FROM slots WHERE schedule = ? AND kind = ?",
                               (name, CRON)).fetchone()
        return cron.from_key(row["last"]) if row and row["last"] else None


def _schedule(row) -> Schedule:
    d = dict(row)
    d["parameters"] = json.loads(d["parameters"] or "[]")
    d["paused"] = bool(d["paused"])
    return Schedule(**d)
