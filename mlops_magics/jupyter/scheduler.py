"""Due schedules run while the server runs: ``mlops-magics scheduler``'s loop in a child process.

A child, not a thread: the loop sets signal handlers and starts ``run-due`` processes,
and none of that may touch the server. Slots are claimed in the schedule store, so this
loop, ``mlops-magics scheduler`` and OS cron may all run at once and a slot still runs
once. The child stops with the server: SIGTERM at shutdown, and it watches its parent
(a server killed outright leaves no loop behind).

``python -m mlops_magics.jupyter.scheduler`` is the child's entry point.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

from .places import Places

INTERVAL_S = 15.0  # a schedule added from JupyterLab is noticed within this
GRACE_S = 20.0  # at shutdown, how long running jobs get before they are stopped
LOG = "jupyter-scheduler.log"


class SchedulerChild:
    def __init__(self, places: Places) -> None:
        self.places = places
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        from ..locations import private_dir

        logs = private_dir(self.places.home / "logs")
        fd = os.open(logs / LOG, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "mlops_magics.jupyter.scheduler", str(os.getpid())],
                                         env=self.places.child_env(), stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                         start_new_session=True, close_fds=True)
        finally:
            os.close(fd)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def keep(self) -> None:
        """Start the loop again if it died (it should not)."""
        if self.proc is not None and self.proc.poll() is not None:
            logging.getLogger("mlops_magics").warning("mlops_magics: the schedule loop ended (exit %s); restarting it",
                                                      self.proc.returncode)
            self.start()

    def stop(self, wait: float = 5.0) -> None:
        """SIGTERM: no new runs start; running ones get ``GRACE_S`` on their own."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass  # it ends its running jobs by itself, then exits


def _watch_parent(parent: int, loop) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    loop.stop()  # only sets the loop's flag


def main(argv: list[str]) -> int:
    from ..schedules.loop import Scheduler
    from ..secrets import MaskFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(MaskFilter())
    logger = logging.getLogger("mlops_magics.schedules")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    loop = Scheduler(interval=INTERVAL_S, grace=GRACE_S)
    if argv:
        threading.Thread(target=_watch_parent, args=(int(argv[0]), loop), name="mlops-magics-parent",
                         daemon=True).start()
    return loop.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
