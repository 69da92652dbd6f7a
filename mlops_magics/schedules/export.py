"""``schedule export``: a crontab line, or a systemd .service and .timer pair, calling ``run-due``.

The OS timer only wakes ``run-due NAME`` up; run-due decides (in the schedule's own
time zone) whether a slot is due, claims it once, catches up or skips. So when the
OS cannot say exactly when (cron has no time zones, nor ``L``/``W``/``#``), the timer
fires every minute and run-due runs only what is due.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import locations
from . import cron
from .store import Schedule

_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EVERY_MINUTE = "* * * * *"


@dataclass
class Unit:
    filename: str
    text: str


def run_due_argv(name: str) -> list[str]:
    """The command that runs one schedule's due slot, with absolute paths (cron's PATH is bare)."""
    exe = Path(sys.executable).with_name("mlops-magics")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlops_magics.cli"]
    return [*head, "schedule", "run-due", name]


def crontab(s: Schedule) -> str:
    """A commented crontab entry for ``s`` (append it with ``crontab -e``)."""
    home = locations.home().resolve()
    log = home / "logs" / f"schedule-{s.name}.log"
    env = f"MLOPS_MAGICS_HOME={shlex.quote(str(home))}"
    command = (f"cd {shlex.quote(s.workdir)} && umask 077 && mkdir -p {shlex.quote(str(log.parent))} && {env} "
               f"{shlex.join(run_due_argv(s.name))} >> {shlex.quote(str(log))} 2>&1")
    lines = [f"# mlops-magics schedule {s.name}: {s.notebook} at '{s.cron}' ({s.timezone})", *_shared_store_note()]
    expr = s.cron
    if s.timezone != cron.local_zone_name():
        lines.append(f"# cron reads times in this machine's zone ({cron.local_zone_name()}), not {s.timezone}: "
                     "it wakes run-due every minute and run-due runs the slot when it is due")
        expr = _EVERY_MINUTE
    elif _special(s.cron):
        lines.append("# cron has no L, W or #: it wakes run-due every minute and run-due runs the slot when it is due")
        expr = _EVERY_MINUTE
    lines.append(f"{expr} {command.replace('%', chr(92) + '%')}")  # % ends a crontab command unless escaped
    return "\n".join(lines) + "\n"


def _shared_store_note() -> list[str]:
    """With a PostgreSQL schedule store, where its URI must be set (never written here: it holds a password)."""
    import os

    if not os.environ.get(locations.SCHEDULES_URI_ENV):
        return []
    return [f"# the schedules live in ${locations.SCHEDULES_URI_ENV}: set it in this crontab's environment "
            "(or the unit's EnvironmentFile=) yourself; it is not written here because it holds a password"]


def systemd(s: Schedule) -> list[Unit]:
    """``mlops-magics-NAME.service`` (one run-due call) and ``mlops-magics-NAME.timer``."""
    home = locations.home().resolve()
    unit = f"mlops-magics-{s.name}"
    service = "\n".join([
        *_shared_store_note(),
        "[Unit]",
        f"Description=mlops-magics schedule {s.name}: {s.notebook}",
        "",
        "[Service]",
        "Type=oneshot",
        "UMask=0077",
        f"WorkingDirectory={s.workdir}",
        f"Environment={_systemd_quote('MLOPS_MAGICS_HOME=' + str(home))}",
        f"ExecStart={' '.join(_systemd_quote(a) for a in run_due_argv(s.name))}",
        "",
    ])
    calendars = on_calendar(s.cron, s.timezone)
    timer = ["[Unit]", f"Description=mlops-magics schedule {s.name} at '{s.cron}' ({s.timezone})", "", "[Timer]"]
    if calendars is None:
        timer.append("# systemd cannot say this cron expression exactly: wake run-due every minute, it runs what is due")
        calendars = [f"*-*-* *:*:00 {s.timezone}"]
    timer += [f"OnCalendar={c}" for c in calendars]
    timer += ["AccuracySec=1s",
              "# after downtime, wake run-due at boot: it catches up (--catch-up one) or records the miss",
              "Persistent=true", f"Unit={unit}.service", "", "[Install]", "WantedBy=timers.target", ""]
    return [Unit(f"{unit}.service", service), Unit(f"{unit}.timer", "\n".join(timer))]


def on_calendar(expr: str, tz: str) -> list[str] | None:
    """systemd ``OnCalendar=`` values equal to the cron expression, or None when there are none."""
    if _special(expr):
        return None
    fields, _ = cron.expand(expr)
    minute, hour, dom, month, dow = fields
    time = f"{_values(hour)}:{_values(minute)}:00"
    month_text = _values(month)
    days = None if dow == ["*"] else ",".join(dict.fromkeys(_DAYS[int(d)] for d in dow))
    if dom != ["*"] and days:  # cron: either matches; systemd: both must. Two timers' union is cron's OR.
        return [f"*-{month_text}-{_values(dom)} {time} {tz}", f"{days} *-{month_text}-* {time} {tz}"]
    head = f"{days} " if days else ""
    return [f"{head}*-{month_text}-{_values(dom)} {time} {tz}"]


def _values(values: list) -> str:
    return "*" if values == ["*"] else ",".join(f"{int(v):02d}" for v in values)


def _special(expr: str) -> bool:
    """True for what cron and systemd lack: last day (``L``), nth weekday (``#``) and such."""
    fields, nth = cron.expand(expr)
    raw = expr.split()
    nearest_weekday = len(raw) == 5 and "W" in raw[2].upper()
    return bool(nth) or nearest_weekday or any(v != "*" and not isinstance(v, int) for f in fields for v in f)


def _systemd_quote(arg: str) -> str:
    if not any(c in arg for c in " \t\"'\\$%;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%") + '"'
