"""``run_due``: run every schedule due at a moment, once. What OS cron, a systemd timer and
``mlops-magics scheduler`` call, and what tests call with ``at=`` to simulate time.

Each claimed slot runs as a notebook job (one MLflow run, ``mlops.kind=job``) tagged
``mlops.schedule`` and ``mlops.schedule.slot``. When it ends carrying ``mlops.alert``
and its schedule has ``on_alert``, that other schedule runs once right away, tagged
``mlops.triggered_by`` (one hop: a triggered run does not trigger further).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from .. import naming
from ..errors import one_line
from . import cron
from .store import (
    FAILED,
    FINISHED,
    MISSED,
    RUNNING,
    SKIPPED,
    Schedule,
    ScheduleStore,
    Slot,
)

log = logging.getLogger("mlops_magics.schedules")


@dataclass
class Outcome:
    """What one schedule did at the moment asked: finished, failed, skipped, missed or paused."""

    schedule: str
    state: str
    slot: str | None = None  # ISO 8601 in the schedule's time zone
    run_id: str | None = None
    detail: str | None = None
    triggered_by: str | None = None
    alert: str | None = None

    def line(self) -> str:
        text = f"{self.schedule}"
        if self.slot:
            text += f" @ {self.slot}"
        text += f": {self.state}"
        if self.triggered_by:
            text += f" (alert of run {self.triggered_by})"
        if self.run_id:
            text += f", run {self.run_id}"
        if self.alert:
            text += f", alert={self.alert}"
        if self.detail:
            text += f"; {self.detail}"
        return text


def run_due(at: datetime | None = None, names: list[str] | None = None, *,
            store: ScheduleStore | None = None) -> list[Outcome]:
    """Run every schedule (or those in ``names``) due at ``at`` (default now), each slot once.

    Safe to call from several processes at the same moment: each slot is claimed
    atomically, so it runs in exactly one of them.
    """
    from ..journal.store import new_owner

    simulated = at is not None
    at = (at or cron.now()).astimezone(cron.UTC)
    store = store or ScheduleStore()
    owner = new_owner()
    wanted = [store.get(n) for n in names] if names else store.all()
    claimed: list[tuple[Schedule, Slot]] = []
    outcomes: list[Outcome] = []
    for s in wanted:
        decision, slot = store.claim(s.name, at, owner)
        if decision.state == RUNNING:
            claimed.append((s, slot))
        elif decision.state in (SKIPPED, MISSED):
            outcomes.append(Outcome(s.name, decision.state, cron.local_iso(slot.time, s.timezone), detail=slot.detail))
            log.debug(outcomes[-1].line())
        elif s.paused:
            outcomes.append(Outcome(s.name, "paused"))
    try:
        while claimed:
            s, slot = claimed.pop(0)
            outcome = run_slot(store, s, slot)
            outcomes.append(outcome)
            triggered = _on_alert(store, s, outcome, at if simulated else None, owner)
            if triggered is not None:
                outcomes.append(triggered)
    finally:
        for s, slot in claimed:  # stopped before their turn: say so rather than leave them "running"
            store.finish(slot.id, FAILED, detail="not started: run-due was stopped first")
    return outcomes


def run_slot(store: ScheduleStore, s: Schedule, slot: Slot, trigger: str | None = None) -> Outcome:
    """Run the notebook of ``s`` for a claimed ``slot`` as a job; record how it ended."""
    from ..runner.run import JobSpec, run_job
    from .manage import resolved_parameters

    when = cron.local_iso(slot.time, s.timezone)
    tags = {naming.SCHEDULE: s.name, naming.SCHEDULE_SLOT: when}
    if slot.caught_up:
        tags[naming.SCHEDULE_CAUGHT_UP] = str(slot.caught_up)
    given = {}
    if trigger:
        tags[naming.TRIGGERED_BY] = trigger
        if _declares(s.notebook, naming.TRIGGER_PARAMETER):
            given[naming.TRIGGER_PARAMETER] = trigger
    log.info("%s @ %s: running %s%s", s.name, when, s.notebook, f" (alert of run {trigger})" if trigger else "")
    try:
        spec = JobSpec(experiment=s.experiment, timeout=s.timeout, retries=s.retries, progress=False,
                       tracking_uri=s.tracking_uri, tags=tags, cwd=s.workdir if _isdir(s.workdir) else None)
        result = run_job(s.notebook, given, texts=resolved_parameters(s), spec=spec)
    except Exception as exc:  # a bad parameter, a missing notebook: this slot failed, the others still run
        detail = _join(slot.detail, one_line(exc))
        store.finish(slot.id, FAILED, detail=detail)
        out = Outcome(s.name, FAILED, when, detail=detail, triggered_by=trigger)
        log.warning(out.line(), exc_info=True)
        return out
    except BaseException as exc:  # SIGTERM, Ctrl-C: record it, then stop
        store.finish(slot.id, FAILED, detail=_join(slot.detail, f"interrupted ({type(exc).__name__})"))
        raise
    state = FINISHED if result.failure is None else FAILED
    detail = slot.detail if result.failure is None else _join(slot.detail, f"{result.failure}: {result.error}")
    store.finish(slot.id, state, run_id=result.run_id, run_key=result.key, detail=detail)
    if result.run_id is None:
        detail = _join(detail, f"MLflow has not taken the run yet: it waits in the journal (key {result.key[:8]})")
    out = Outcome(s.name, state, when, run_id=result.run_id, detail=detail, triggered_by=trigger)
    log.debug(out.line())
    return out


def _on_alert(store: ScheduleStore, s: Schedule, outcome: Outcome, at: datetime | None, owner: str) -> Outcome | None:
    """When the run carries ``mlops.alert`` and ``s`` has ``on_alert``: run that schedule once, now."""
    if not s.on_alert or not outcome.run_id or outcome.triggered_by:
        return None
    alert = _alert_of(outcome.run_id, s.tracking_uri)
    if not alert:
        return None
    outcome.alert = alert
    from .cron import ScheduleError

    try:
        other = store.get(s.on_alert)
    except ScheduleError as exc:
        log.warning("%s: alert %s, but %s", s.name, alert, exc)
        return Outcome(s.on_alert, FAILED, detail=str(exc), triggered_by=outcome.run_id)
    decision, slot = store.claim_trigger(other.name, at or cron.now(), outcome.run_id, owner)
    if decision.state == RUNNING:
        return run_slot(store, other, slot, trigger=outcome.run_id)
    if decision.state == SKIPPED:
        out = Outcome(other.name, SKIPPED, cron.local_iso(slot.time, other.timezone), detail=decision.detail,
                      triggered_by=outcome.run_id)
        log.debug(out.line())
        return out
    return None


def _alert_of(run_id: str, uri: str | None) -> str | None:
    """The run's ``mlops.alert`` tag, read back from MLflow (None when absent or unreadable)."""
    from ..store_read import Store

    try:
        return Store(uri).get_run(run_id).tags.get(naming.ALERT)
    except Exception as exc:
        log.warning("could not read run %s back from MLflow to look for an alert: %s", run_id, exc)
        return None


def _declares(notebook: str, name: str) -> bool:
    from ..runner.parameters import read_notebook_parameters

    try:
        _, declared = read_notebook_parameters(notebook)
    except Exception:
        return False
    return bool(declared) and name in declared


def _isdir(path: str | None) -> bool:
    import os

    return bool(path) and os.path.isdir(path)


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None
