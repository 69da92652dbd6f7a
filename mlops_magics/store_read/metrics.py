"""Which of a run's metrics are its own: what it is judged on, not time, memory or drift."""

from __future__ import annotations

from collections.abc import Iterable

from .. import naming

_NOT_OWN = (naming.SYSTEM_PREFIX,)  # time and memory are not expected to repeat or to rank
_OURS = (naming.SYSTEM_PREFIX, naming.DRIFT_PREFIX)  # what mlops-magics itself logs


def is_own(name: str) -> bool:
    """True for a metric the run's code logged (``f1``), False for ``system.*``."""
    return not name.startswith(_NOT_OWN)


def own_metrics(names: Iterable[str]) -> list[str]:
    """The run's own metric names (no ``system.*``), sorted."""
    return sorted(n for n in names if is_own(n))


def own_values(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without ``system.*``."""
    return {k: v for k, v in metrics.items() if is_own(k)}


def ours_last(names: Iterable[str]) -> list[str]:
    """Metric names sorted, those mlops-magics logs itself (``system.*``, ``drift.*``) last."""
    names = list(names)
    return sorted(n for n in names if not n.startswith(_OURS)) + sorted(n for n in names if n.startswith(_OURS))
