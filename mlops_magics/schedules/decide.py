"""What a schedule does at a moment: run its slot, skip it, record it missed, or nothing.

Pure: the store calls :func:`decide` inside the transaction that records the outcome.

- The due slot is the latest cron moment at or before ``at`` that no earlier call
  handled and that is not before the schedule's ``since`` (when it was added or
  last resumed: slots that fell while it was paused are not "missed").
- Slots before the due one that nothing handled were missed (the scheduler was
  down, the machine asleep). ``--catch-up one`` (the default) runs the due slot and
  the run stands for them all; ``--catch-up none`` runs the due slot only when it
  is on time (at most ``ON_TIME`` late) and otherwise records the lot as missed.
- A run of the schedule still going when a new slot comes: the new slot is skipped
  and recorded so, never run alongside.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import cron

ON_TIME = timedelta(minutes=5)  # how late a slot may be started and still count as on time
_SHOWN = "%Y-%m-%d %H:%M"


@dataclass
class Decision:
    state: str  # "running" (claimed: run it), "skipped", "missed", "idle" (nothing due), "gone"
    slot: datetime | None = None
    detail: str | None = None
    caught_up: int = 0  # missed slots the run stands for (its own slot too, when late)


def decide(s, at: datetime, last: datetime | None, running) -> Decision:
    """``s``: the Schedule; ``last``: the newest cron slot recorded; ``running``: its live run or None."""
    if s.paused:
        return Decision("idle", detail="paused")
    since = cron.from_key(s.since)
    floor = max(since - timedelta(seconds=1), last) if last else since - timedelta(seconds=1)
    due = cron.latest_slot(s.cron, s.timezone, at)
    if due <= floor:
        return Decision("idle")
    missed = list(cron.slots(s.cron, s.timezone, floor, due))
    late = at - due > ON_TIME
    if running is not None:
        went = cron.local_iso(running.time, s.timezone)
        return Decision("skipped", due, f"the run for {went} was still going")
    if s.catch_up == "none" and late:
        gone = [*missed, due]
        return Decision("missed", due, f"{_count(gone)} missed ({_span(gone, s.timezone)}); "
                                       "not caught up (--catch-up none)", 0)
    if s.catch_up == "none":
        note = f"{_count(missed)} before it missed, not caught up" if missed else None
        return Decision("running", due, note, 0)
    stands_for = [*missed, due] if late else missed
    note = f"catch-up run for {_count(stands_for)} missed ({_span(stands_for, s.timezone)})" if stands_for else None
    return Decision("running", due, note, len(stands_for))


def _count(slots: list[datetime]) -> str:
    more = "+" if len(slots) >= 10_000 else ""
    return f"{len(slots)}{more} slot{'s' if len(slots) != 1 else ''}"


def _span(slots: list[datetime], tz: str) -> str:
    first, last = (s.astimezone(cron.zone(tz)).strftime(_SHOWN) for s in (slots[0], slots[-1]))
    return first if first == last else f"{first} to {last}"
