"""Wall time, CPU time and peak memory growth of one cell, at near-zero cost.

On Linux the kernel keeps the process's high-water mark (VmHWM); writing ``5`` to
``/proc/self/clear_refs`` resets it, so peak growth during a cell is exact
without a sampling thread. Elsewhere ``ru_maxrss`` gives a lower bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(field: str) -> int | None:
    try:
        with open(_STATUS, "rb") as f:
            for line in f:
                if line.startswith(field.encode()):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclass
class Usage:
    wall_s: float
    cpu_s: float
    peak_mem_mb: float


class ResourceMeter:
    """Start before the cell, ``stop()`` after it."""

    def __init__(self) -> None:
        self._exact = _reset_peak()
        rss = _status_kb("VmRSS:") if self._exact else None
        self._base_kb = rss if rss is not None else _maxrss_kb()
        self._exact = self._exact and rss is not None
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def stop(self) -> Usage:
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        peak = _status_kb("VmHWM:") if self._exact else None
        if peak is None:
            peak = _maxrss_kb()
        growth_mb = max(0.0, (peak - self._base_kb) / 1024.0)
        return Usage(wall_s=round(wall, 6), cpu_s=round(cpu, 6), peak_mem_mb=round(growth_mb, 3))
