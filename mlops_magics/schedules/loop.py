"""``mlops-magics scheduler``: wake at each due time (at least every ``interval`` seconds) and
start ``run-due --at <now> NAME`` for each schedule with a slot due.

Each due schedule gets its own ``run-due`` process: a long job never delays another
schedule, a crashing job never takes the loop down, and when the next slot of a
schedule comes while its run is still going, that process records the slot as
skipped. Slots are claimed in ``schedules.db``, so the loop, OS cron and another
scheduler can all run at once and a slot still runs once. SIGTERM or SIGINT stop the
loop: no new runs start; running ones get ``grace`` seconds to end, then SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta

from .. import locations
from . import cron
from .decide import decide
from .export import run_due_argv
from .store import ScheduleStore

log = logging.getLogger("mlops_magics.schedules")
_TICK = 0.25  # seconds between checks of the stop flag while waiting


class Scheduler:
    """The loop. ``run()`` returns 0 once stopped by a signal (or ``stop()``)."""

    def __init__(self, *, interval: float = 30.0, grace: float = 60.0, store: ScheduleStore | None = None) -> None:
        self.interval, self.grace = interval, grace
        self.store = store or ScheduleStore()
        self.children: list[tuple[str, str, subprocess.Popen]] = []  # (schedule, slot key, process)
        self._started: dict[str, str] = {}  # schedule -> the slot a run-due was started for
        self._stopping = False

    def stop(self, signum=None, frame=None) -> None:
        if not self._stopping and signum is not None:
            log.info("scheduler: %s received, stopping", signal.Signals(signum).name)
        self._stopping = True

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        log.info("scheduler started (pid %d): %d schedules in %s", os.getpid(), len(self.store.all()),
                 self.store.path)
        while not self._stopping:
            now = cron.now()
            try:
                self._tick(now)
                wake = self._next_wake(now)
            except Exception:  # a locked or damaged file must not end the loop: try again shortly
                log.exception("scheduler: this round failed; trying again in %.0fs", self.interval)
                wake = now + timedelta(seconds=self.interval)
            while not self._stopping and cron.now() < wake:
                self._reap()
                time.sleep(min(_TICK, max(0.0, (wake - cron.now()).total_seconds())))
        self._shutdown()
        log.info("scheduler stopped")
        return 0

    def _tick(self, now: datetime) -> None:
        self._reap()
        for s in self.store.all():
            if s.paused:
                continue
            d = decide(s, now, self.store.last_cron_slot(s.name), None)
            if d.state in ("running", "missed") and self._started.get(s.name) != cron.key(d.slot):
                self._start(s.name, cron.key(d.slot), now)

    def _start(self, name: str, slot: str, now: datetime) -> None:
        argv = [*run_due_argv(name), "--at", now.isoformat()]
        env = {**os.environ, locations.HOME_ENV: str(locations.home().resolve())}
        # Its own session: a Ctrl-C meant for the loop does not kill the job; stop() decides.
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self._started[name] = slot
        self.children.append((name, slot, proc))
        log.info("scheduler: %s slot %s due: run-due started (pid %d)", name, slot, proc.pid)

    def _reap(self) -> None:
        for child in list(self.children):
            name, slot, proc = child
            if proc.poll() is not None:
                self.children.remove(child)
                log.info("scheduler: run-due for %s slot %s ended (exit %d)", name, slot, proc.returncode)

    def _reap_for(self, seconds: float) -> None:
        """Reap children as they end, for up to ``seconds`` or until none is left."""
        deadline = time.monotonic() + seconds
        while self.children and time.monotonic() < deadline:
            time.sleep(_TICK)
            self._reap()

    def _next_wake(self, now: datetime) -> datetime:
        wake = now + timedelta(seconds=self.interval)
        for s in self.store.all():
            if not s.paused:
                wake = min(wake, cron.next_slot(s.cron, s.timezone, now))
        return wake

    def _shutdown(self) -> None:
        self._reap()
        if not self.children:
            return
        log.info("scheduler: waiting up to %.0fs for %d running job(s)", self.grace, len(self.children))
        self._reap_for(self.grace)
        for _, _, proc in self.children:
            proc.terminate()  # run-due records the slot as interrupted and stops its kernel
        self._reap_for(10.0)
        for name, slot, proc in self.children:
            proc.kill()
            log.warning("scheduler: run-due for %s slot %s killed", name, slot)
