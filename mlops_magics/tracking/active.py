"""The run being recorded right now (a tracked cell or a job): what code inside it may add.

``mm.log_metric``, ``mm.check_metric``, ``DriftReport.log()`` and friends find it through
``mlops_magics._current.active_run()``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .. import naming
from ..errors import MlopsError
from .values import real_scalar

SPILL_POINTS, SPILL_SECONDS = 10_000, 2.0


@dataclass
class ActiveRun:
    """Buffers step metrics, tags, text artifacts and metric checks for one run.

    Step metrics are committed to the journal every 10,000 points or 2 s (``spill``),
    so a long training loop loses at most that much if the kernel dies.
    """

    key: str
    name: str
    spill: object = None  # callable(list of points) committing them to the journal
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    count: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    checks: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    # What was not recorded and why, for the cell's summary (the tracked cell shares its list).
    warnings: list[str] = field(default_factory=list)
    notices: object = None  # callable() -> str | None: a journal storage fault, told once
    _steps: dict[str, int] = field(default_factory=dict)
    _keys: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _last_spill: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.take_notices()  # opening the run may have met a full or corrupt journal

    def log_metric(self, key: str, value: object, step: int | None = None) -> None:
        number = real_scalar(value)
        if number is None:
            raise MlopsError(f"metric {key!r} must be a real number, got {type(value).__name__}")
        known = self._keys.get(key)
        if known is None:
            clean = naming.sanitize_key(key)
            known = self._keys[key] = (clean, naming.key_problem(clean))
        clean, problem = known
        if problem is not None:  # MLflow would refuse it: say so under the cell, keep the rest
            self.warn(f"metric {key!r} not recorded: {problem}")
            return
        last = self._steps.get(key, -1)
        if step is None:
            step = last + 1
        if not -naming.MAX_STEP <= int(step) <= naming.MAX_STEP:
            self.warn(f"metric {key!r} at step {step} not recorded: steps are 64-bit integers")
            return
        if step > last:
            self._steps[key] = step
        self.metrics.append((clean, number, int(time.time() * 1000), int(step)))
        self.latest[clean] = number
        self.count += 1
        if self.spill is not None and (len(self.metrics) >= SPILL_POINTS
                                       or time.monotonic() - self._last_spill > SPILL_SECONDS):
            self.take_spill()

    def warn(self, text: str) -> None:
        """Add ``text`` to what the cell's summary shows, once."""
        if text not in self.warnings:
            self.warnings.append(text)

    def take_notices(self) -> None:
        notice = self.notices() if self.notices is not None else None
        if notice:
            self.warn(notice)

    def take_spill(self) -> None:
        points, self.metrics = self.metrics, []
        self._last_spill = time.monotonic()
        if points and self.spill is not None:
            self.spill(points)  # never raises on a storage fault: the journal holds the points
            self.take_notices()

    def set_tag(self, key: str, value: object) -> None:
        clean = naming.sanitize_key(key)
        problem = naming.key_problem(clean)
        if problem is not None:
            self.warn(f"tag {key!r} not recorded: {problem}")
            return
        self.tags[clean] = naming.clip(str(value), naming.MAX_TAG_VAL_LENGTH)

    def alert(self, kind: str, reason: str) -> None:
        """Tag the run alerted: ``mlops.alert=<kind>`` (drift, validation) and why."""
        self.set_tag(naming.ALERT, kind)
        self.set_tag(naming.ALERT_REASON, reason)

    def log_text(self, path: str, text: str) -> None:
        """A text artifact at ``path`` in the run (written when the run's records are)."""
        self.artifacts[path] = text

    def check_metric(self, name: str, min: float | None = None, max: float | None = None) -> None:
        if min is None and max is None:
            raise MlopsError("check_metric needs a bound: min=..., max=... or both")
        self.checks.append((name, min, max))

    def alerts(self, metrics: dict[str, float], missing: bool = True) -> list[str]:
        """Reasons the run's metrics cross the bounds given to ``check_metric``.

        ``missing``: whether a metric not recorded (yet) is itself a reason; in a job a
        later cell may still record it.
        """
        values = {**self.latest, **metrics}
        reasons = []
        for name, low, high in self.checks:
            value = values.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                if missing:
                    reasons.append(f"{name} was not recorded")
            elif low is not None and value < low:
                reasons.append(f"{name}={value:.6g} below min {low:g}")
            elif high is not None and value > high:
                reasons.append(f"{name}={value:.6g} above max {high:g}")
        return reasons


def add_alerts(tags: dict[str, str], reasons: list[str]) -> None:
    """Mark a run's ``tags`` alerted by ``reasons``: a drift alert stays a drift alert, and
    the reasons follow any already there (a drift report's)."""
    if not reasons:
        return
    tags.setdefault(naming.ALERT, naming.ALERT_METRIC)
    kept = [r for r in (tags.get(naming.ALERT_REASON), "; ".join(reasons)) if r]
    tags[naming.ALERT_REASON] = naming.clip("; ".join(kept), naming.MAX_TAG_VAL_LENGTH)
