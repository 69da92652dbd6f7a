"""Functions for notebook code: ``mm.log_metric``, ``mm.log_metrics``, ``mm.flush``."""

from __future__ import annotations

from collections.abc import Mapping

from . import _current


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log one metric point into the run of the tracked cell (or job) now running.

    ``step`` defaults to one past the last step logged for ``key`` in this run.
    """
    run = _current.require_run("mm.log_metric")
    run.log_metric(key, value, step)


def log_metrics(mapping: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at once, all at ``step``."""
    run = _current.require_run("mm.log_metrics")
    for key, value in mapping.items():
        run.log_metric(key, value, step)


def check_metric(name: str, min: float | None = None, max: float | None = None) -> None:
    """Alert when the run's metric ``name`` ends outside ``[min, max]``.

    Checked when the tracked cell (or job) ends, against the value it recorded; a run
    that crosses a bound is tagged ``mlops.alert=metric`` with the reason.
    """
    run = _current.require_run("mm.check_metric")
    run.check_metric(name, min=min, max=max)


def flush(timeout: float = 30.0) -> int:
    """Deliver pending records to MLflow now; return how many are not in MLflow (0: all in).

    That counts records still waiting and records MLflow refused as invalid, set aside
    (``mlops-magics journal`` lists them, ``mlops-magics sync --retry-rejected`` resends them).
    """
    session = _current.session()
    if session is None:
        return 0
    left = session.flush(timeout)
    return left + session.journal().rejected_count()
