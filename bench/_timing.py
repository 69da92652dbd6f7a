"""Timing helpers shared by the benches: best of N in this process, one script in a fresh one.

Benches run as scripts (``python bench/<name>.py``), so this folder is on ``sys.path`` and they
``from _timing import ...``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The shortest of ``repeat`` calls of ``fn``, in seconds, and what the last call returned."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def fresh_python(code: str, *args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> str:
    """Run ``code`` in a fresh Python of this environment; the last line it printed. A script that
    fails ends the bench with the end of its stderr."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd,
                         check=False)
    if out.returncode != 0:
        sys.exit(f"bench failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]
