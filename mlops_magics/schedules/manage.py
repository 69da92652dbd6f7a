"""Adding, listing, pausing schedules: every check made up front, each failure one line."""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

from .. import locations
from ..secrets import is_secret, mask_text
from . import cron
from .cron import ScheduleError
from .decide import decide
from .store import RUNNING, Schedule, ScheduleStore

log = logging.getLogger("mlops_magics.schedules")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CATCH_UP = ("one", "none")
ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_schedule(name: str, notebook: str | os.PathLike, cron_expr: str, *,
                 parameters: list[tuple[str, str]] | None = None, timezone: str | None = None,
                 on_alert: str | None = None, catch_up: str = "one", experiment: str | None = None,
                 tracking_uri: str | None = None, timeout: float | None = None, retries: int = 0,
                 start: datetime | None = None, store: ScheduleStore | None = None,
                 workdir: str | os.PathLike | None = None) -> Schedule:
    """Check everything (name, notebook and its parameters, cron, time zone, ``on_alert``) and save.

    ``parameters`` are ``(name, text)`` pairs as given to ``-p``: converted to the types of the
    notebook's defaults now, to catch mistakes, and again at each run (the notebook may change).
    Runs go to the tracking URI and experiment in force now, from ``workdir`` (default: the
    current directory).
    """
    from ..runner.parameters import read_notebook_parameters, resolve

    store = store or ScheduleStore()
    if not _NAME.match(name or ""):
        raise ScheduleError(f"invalid schedule name {name!r}: use letters, digits, '-', '_' or '.' "
                            "(it names log files and systemd units)")
    path = Path(notebook).expanduser().resolve()
    _, declared = read_notebook_parameters(path)
    texts = [(str(k), str(v)) for k, v in parameters or []]
    refuse_secrets(texts)
    resolve(declared, texts=[(k, v) for k, v in texts if not env_reference(v)], notebook=path.name)
    expr = cron.check_cron(cron_expr)
    tz = timezone or cron.local_zone_name()
    cron.zone(tz)
    if catch_up not in CATCH_UP:
        raise ScheduleError(f"--catch-up is 'one' or 'none', not {catch_up!r}")
    if on_alert is not None:
        if on_alert == name:
            raise ScheduleError(f"--on-alert names {name!r} itself: a schedule cannot retrain itself on its own alert")
        store.get(on_alert)  # add the schedule to trigger first: a typo would otherwise go unnoticed
    s = Schedule(name=name, notebook=str(path), cron=expr, timezone=tz,
                 since=cron.key(start or cron.now()), workdir=str(Path(workdir).resolve() if workdir else Path.cwd()),
                 parameters=[list(p) for p in texts],
                 on_alert=on_alert, catch_up=catch_up, experiment=locations.experiment_name(experiment),
                 tracking_uri=_storable_uri(tracking_uri), timeout=timeout, retries=retries)
    store.add(s)
    return store.get(name)


def env_reference(text: str) -> str | None:
    """``NAME`` of a parameter given as ``env:NAME``: read from the environment at each run."""
    if text.startswith(ENV_PREFIX) and _ENV_NAME.match(text[len(ENV_PREFIX):]):
        return text[len(ENV_PREFIX):]
    return None


def refuse_secrets(texts: list[tuple[str, str]]) -> None:
    """A secret is never written to schedules.db: a parameter named like one (``token``,
    ``db_password``) or holding one (a URL with a password, a key) must be ``env:NAME``."""
    for name, text in texts:
        if env_reference(text) is None and (is_secret(name) or mask_text(text) != text):
            var = re.sub(r"\W", "_", name).upper()
            raise ScheduleError(f"-p {name}: secrets are not stored in schedules; export {var}=... where "
                                f"run-due runs and give -p {name} {ENV_PREFIX}{var}")


def resolved_parameters(s: Schedule) -> list[tuple[str, str]]:
    """The schedule's ``-p`` pairs with each ``env:NAME`` read from this environment."""
    out = []
    for name, text in s.parameters:
        var = env_reference(text)
        if var is not None:
            if var not in os.environ:
                raise ScheduleError(f"-p {name} {text}: ${var} is not set in the environment of run-due")
            text = os.environ[var]
        out.append((name, text))
    return out


def _storable_uri(explicit: str | None) -> str | None:
    """The URI runs go to, fixed now (cron starts elsewhere, with another environment).
    Never one with credentials: those stay in the environment that runs run-due."""
    uri = locations.tracking_uri(explicit)
    if locations.display_uri(uri) != uri:
        log.warning("the tracking URI holds credentials, which are not stored: set MLFLOW_TRACKING_URI "
                    "in the environment that runs `mlops-magics schedule run-due`")
        return None
    return uri


def next_time(store: ScheduleStore, s: Schedule, now: datetime) -> datetime | None:
    """When ``s`` runs next (a slot due now: that slot), in UTC; None while paused."""
    if s.paused:
        return None
    last = store.last_cron_slot(s.name)
    pending = decide(s, now, last, None)
    if pending.state == RUNNING:
        return pending.slot
    return cron.next_slot(s.cron, s.timezone, max(now, cron.from_key(s.since) - timedelta(seconds=1), last or now))


def next_due(store: ScheduleStore, s: Schedule, now: datetime) -> str:
    """When ``s`` runs next, as the user reads it."""
    if s.paused:
        return "paused"
    last = store.last_cron_slot(s.name)
    pending = decide(s, now, last, None)
    floor = max(now, cron.from_key(s.since) - timedelta(seconds=1), last or now)
    upcoming = cron.next_slot(s.cron, s.timezone, floor)
    if pending.state == RUNNING:
        return f"due now: {_shown(pending.slot, s.timezone)} (on the next run-due)"
    if pending.state == "missed":
        return f"{_shown(upcoming, s.timezone)} ({_shown(pending.slot, s.timezone)} was missed)"
    return _shown(upcoming, s.timezone)


def listing(store: ScheduleStore, now: datetime | None = None) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of ``schedule list``."""
    now = now or cron.now()
    rows = []
    for s in store.all():
        last = store.last(s.name)
        state = "paused" if s.paused else ("running" if last is not None and last.state == RUNNING else "active")
        last_text = f"{last.state} {_shown(last.time, s.timezone)}" if last else "never ran"
        extra = f" -> {s.on_alert} on alert" if s.on_alert else ""
        rows.append([s.name, _short(s.notebook, s.workdir), s.cron, s.timezone, state + extra,
                     next_due(store, s, now), last_text, (last.run_id if last and last.run_id else "")])
    return ["name", "notebook", "cron", "tz", "state", "next due", "last", "last run id"], rows


def _shown(when: datetime, tz: str) -> str:
    return when.astimezone(cron.zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _short(notebook: str, workdir: str) -> str:
    try:
        return os.path.relpath(notebook, workdir) if notebook.startswith(workdir.rstrip("/") + "/") else notebook
    except ValueError:
        return notebook
