"""The delivery process a kernel starts: ``python -m mlops_magics.journal.deliverd JOURNAL PARENT_PID``.

It delivers the journal's records for ``$MLOPS_MAGICS_DELIVER_URI`` while the kernel
(or the sweep) lives, then until the journal holds nothing more for that URI, giving up (records
stay in the journal, for the next session or ``mlops-magics sync``) when MLflow
stays unreachable for two minutes after the kernel is gone.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from ..processes import alive

URI_ENV = "MLOPS_MAGICS_DELIVER_URI"  # the URI: in the environment, not on the command line
HOLD_ENV = "MLOPS_MAGICS_DELIVER_HOLD"
GIVE_UP_AFTER_PARENT_S = 120.0
IDLE_EXIT_S = 600.0
_NICE = 5


def main(argv: list[str]) -> int:
    from .flusher import Delivery
    from .store import Journal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.nice(_NICE)  # background work: the kernel (or the sweep) it delivers for comes first
    path, parent = argv[0], int(argv[1])
    uri = os.environ.get(URI_ENV, "")
    if not uri:
        return 2
    journal = Journal(path)
    # Held: the lease stays with this process while its parent lives, even when idle, so the
    # parent's helpers (a sweep's kernels) leave delivery to it instead of starting their own.
    delivery = Delivery(uri, journal, hold=os.environ.get(HOLD_ENV) == "1")
    delivery.warm()
    gone_since, idle_since = None, time.monotonic()
    while True:
        time.sleep(0.5)
        pending = delivery.pending(everyone=True)
        idle_since = time.monotonic() if pending else idle_since
        if alive(parent):
            if time.monotonic() - idle_since > IDLE_EXIT_S:
                break
            continue
        gone_since = gone_since or time.monotonic()
        if pending == 0 or time.monotonic() - gone_since > GIVE_UP_AFTER_PARENT_S:
            break
    delivery.close(timeout=0)
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
