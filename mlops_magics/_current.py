"""The process's current tracking session and active run: the one place that holds them.

``mm.log_metric`` and ``mm.flush`` need to find the run a tracked cell (or a job) is
recording into without a reference being passed around. The IPython extension sets
the session on load and clears it on unload; tests call ``reset()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import NoActiveRunError

if TYPE_CHECKING:
    from .tracking.session import ActiveRun, TrackingSession

_session: TrackingSession | None = None
_active: list[ActiveRun] = []


def session() -> TrackingSession | None:
    return _session


def set_session(value: TrackingSession | None) -> None:
    global _session
    _session = value


def active_run() -> ActiveRun | None:
    return _active[-1] if _active else None


def require_run(call: str, *, to: str = "log into") -> ActiveRun:
    """The active run, or ``NoActiveRunError`` saying to make ``call`` inside a tracked cell or job."""
    run = active_run()
    if run is None:
        raise NoActiveRunError(f"no run to {to}: call {call} inside a %%track cell "
                               "(or a notebook run by `mlops-magics run`)")
    return run


def push(run: ActiveRun) -> None:
    _active.append(run)


def pop(run: ActiveRun) -> None:
    if run in _active:
        _active.remove(run)


def reset() -> None:
    set_session(None)
    _active.clear()
