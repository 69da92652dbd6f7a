"""Small facts about local processes."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one we may not signal counts as alive).

    A zombie (exited, not yet reaped by its parent) is dead: what it recorded will never end.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """True for a zombie or dead entry in ``/proc``; False where there is no ``/proc`` (macOS)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # The name in parentheses may hold spaces or ")": the state follows the last ")".
    state = stat[stat.rfind(b")") + 2:][:1]
    return state in (b"Z", b"X")
