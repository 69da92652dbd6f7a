"""Cron math and time zones: the only module that knows croniter.

A schedule is a five-field cron expression (minute hour day month weekday, or a
macro such as ``@daily``) read in an IANA time zone. Keep croniter behind these
few functions so that it can be swapped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import MlopsError, did_you_mean

UTC = timezone.utc
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(MlopsError):
    """A schedule that cannot be (an invalid cron expression, an unknown name or time zone...)."""


def check_cron(expr: str) -> str:
    """``expr`` tidied (single spaces), or a one-line :class:`ScheduleError` saying what is wrong."""
    from croniter import croniter

    text = " ".join(str(expr).split())
    if text.lower() in _MACROS:
        return text.lower()
    fields = text.split(" ")
    if len(fields) != 5:
        hint = " (seconds and years are not supported)" if len(fields) in (6, 7) else ""
        raise ScheduleError(f"invalid cron expression {expr!r}: it has {len(fields)} fields, cron wants 5"
                            f"{hint}: minute hour day-of-month month day-of-week, e.g. '0 6 * * mon-fri'")
    for i, field in enumerate(fields):  # name the field that is wrong
        probe = ["*"] * 5
        probe[i] = field
        if not croniter.is_valid(" ".join(probe)):
            raise ScheduleError(f"invalid cron expression {expr!r}: {field!r} is not a valid {_FIELDS[i]}")
    if not croniter.is_valid(text):
        raise ScheduleError(f"invalid cron expression {expr!r}")
    try:
        next_slot(text, "UTC", now())
    except ValueError:  # croniter's "failed to find next date": February 31st and such
        raise ScheduleError(f"cron expression {expr!r} never matches a date") from None
    return text


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or a one-line error with the closest known name."""
    try:
        if not name or name != name.strip() or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        from zoneinfo import available_timezones

        known = available_timezones()
        hint = did_you_mean(name, known) or did_you_mean(name.replace(" ", "_").title(), known)
        raise ScheduleError(f"unknown time zone {name!r}.{hint} Use an IANA name such as "
                            "'Europe/Paris', 'America/New_York' or 'UTC'") from None


def local_zone_name() -> str:
    """This machine's IANA time zone (what cron uses), else ``UTC``."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                zone(name)
                return "UTC" if name in ("Etc/UTC", "Etc/Universal", "Universal", "Zulu") else name
            except ScheduleError:
                continue
    return "UTC"


def parse_time(text: str) -> datetime:
    """An ISO 8601 moment (``2030-01-01T06:00Z``, ``...+02:00``); without an offset it is local time."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"{text!r} is not an ISO 8601 time such as 2030-01-01T06:00:00+00:00") from None
    return when.astimezone(UTC) if when.tzinfo else when.astimezone().astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def latest_slot(expr: str, tz: str, at: datetime) -> datetime:
    """The last moment at or before ``at`` that ``expr`` names in zone ``tz`` (in UTC)."""
    from croniter import croniter

    start = (at + timedelta(seconds=1)).astimezone(zone(tz)).replace(microsecond=0)
    return croniter(expr, start).get_prev(datetime).astimezone(UTC)


def next_slot(expr: str, tz: str, after: datetime) -> datetime:
    """The first moment strictly after ``after`` that ``expr`` names in zone ``tz`` (in UTC)."""
    from croniter import croniter

    return croniter(expr, after.astimezone(zone(tz))).get_next(datetime).astimezone(UTC)


def slots(expr: str, tz: str, after: datetime, before: datetime, limit: int = 10_000) -> Iterator[datetime]:
    """Slots strictly between ``after`` and ``before``, oldest first, at most ``limit`` of them."""
    from croniter import croniter

    it = croniter(expr, after.astimezone(zone(tz)))
    for _ in range(limit):
        slot = it.get_next(datetime).astimezone(UTC)
        if slot >= before:
            return
        yield slot


def local_iso(slot: datetime, tz: str) -> str:
    """``slot`` as ISO 8601 in the schedule's zone, with its offset: an exact instant users can read."""
    return slot.astimezone(zone(tz)).isoformat()


def key(slot: datetime) -> str:
    """The slot as stored: UTC, second precision, so that text order is time order."""
    return slot.astimezone(UTC).replace(microsecond=0).isoformat()


def from_key(text: str) -> datetime:
    return datetime.fromisoformat(text)


def expand(expr: str) -> tuple[list[list], dict]:
    """Each field's values (``'*'`` for all), and croniter's ``#`` (nth weekday) table."""
    from croniter import croniter

    return croniter.expand(expr)
