"""The extension's life in a Jupyter server: loaded with it, stopped with it.

``load`` registers ``/mlops/api/`` and starts three things that last as long as the server:
the delivery keeper (a client mark on the journal, and a look every ``TICK_S`` seconds for
records that wait with nobody delivering), the schedule loop (a child process), and the
job registry (one worker process per job). Work a request needs (SQLite, notebook files,
MLflow) runs in ``WORKERS`` threads that touch no process-wide state; the event loop only
parses and answers.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from .places import BadRequest, Places

TICK_S = 5.0
WORKERS = 4
log = logging.getLogger("mlops_magics")


class ExtensionState:
    """Everything the handlers reach through ``self.settings["mlops_magics"]``."""

    def __init__(self, places: Places) -> None:
        from .delivery import DeliveryKeeper
        from .jobs import JobRegistry
        from .scheduler import SchedulerChild

        self.places = places
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="mlops-magics-api")
        self._store = None  # opened on first use: a schedule store that is down (PostgreSQL)
        # refuses schedule requests with its one line; delivery and the rest keep working
        self.delivery = DeliveryKeeper(places)
        self.scheduler = SchedulerChild(places)
        self.jobs = JobRegistry(places)
        self._ticking = False
        self._stopped = False

    @property
    def store(self):
        if self._store is None:
            from ..schedules.store import ScheduleStore

            self._store = ScheduleStore()
        return self._store

    async def run(self, fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self.delivery.start()
        self.scheduler.start()
        self.delivery.tick()

    async def tick(self) -> None:
        if self._ticking or self._stopped:
            return
        self._ticking = True
        try:
            await self.run(self._tick)
        except Exception:
            log.debug("mlops_magics: tick failed", exc_info=True)
        finally:
            self._ticking = False

    def _tick(self) -> None:
        self.delivery.tick()
        self.scheduler.keep()
        self.jobs.reap()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.scheduler.stop()
        self.jobs.stop_all()
        self.delivery.stop()
        self.pool.shutdown(wait=False)

    # -- schedules --------------------------------------------------------------------
    def schedules(self, path: str | None) -> list[dict]:
        from ..schedules import cron
        from .views import schedule_view

        notebook = str(self.places.notebook(path, must_exist=False)) if path else None
        now = cron.now()
        return [schedule_view(self.places, self.store, s, now) for s in self.store.all()
                if notebook is None or s.notebook == notebook]

    def add_schedule(self, body: dict) -> dict:
        from ..schedules import cron
        from .views import add_schedule, schedule_view

        s = add_schedule(self.places, self.store, body)
        return schedule_view(self.places, self.store, s, cron.now())

    def set_paused(self, name: str, paused: bool) -> dict:
        from ..schedules import cron
        from .views import schedule_view

        s = self.store.set_paused(name, paused, cron.now())
        return schedule_view(self.places, self.store, s, cron.now())

    def remove_schedule(self, name: str) -> None:
        self.store.remove(name)

    # -- jobs ---------------------------------------------------------------------------
    def jobs_of(self, path: str | None) -> list[dict]:
        return self.jobs.all(self.places.notebook(path, must_exist=False) if path else None)

    def submit_job(self, body: dict) -> dict:
        from .views import typed_parameters

        notebook = self.places.notebook(body.get("notebook"))
        parameters = typed_parameters(notebook, body.get("parameters"))
        timeout = body.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise BadRequest(f"timeout is a number of seconds above 0, not {timeout!r}")
        experiment = body.get("experiment") or None
        if experiment is not None and not isinstance(experiment, str):
            raise BadRequest("experiment is a name")
        return self.jobs.submit(notebook, parameters, experiment=experiment, timeout=timeout)

    # -- runs ---------------------------------------------------------------------------
    async def runs(self, path: str | None) -> dict:
        from . import runs

        notebook = self.places.notebook(path, must_exist=False)
        paths = tuple(dict.fromkeys([str(self.places.root / path.lstrip("/")), str(notebook)]))
        found = await self.run(runs.read_runs, self.places.uri, paths)
        base = runs.ui_url(self.places.uri)
        return {"runs": runs.with_urls(found, base), "ui_url": base}


def load(serverapp) -> None:
    from tornado.ioloop import PeriodicCallback

    from .handlers import STATE_KEY, routes

    places = Places.from_server(serverapp.root_dir)
    state = ExtensionState(places)
    web_app = serverapp.web_app
    web_app.settings[STATE_KEY] = state
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
    state.start()
    PeriodicCallback(state.tick, TICK_S * 1000).start()
    atexit.register(state.stop)
    serverapp.log.info("mlops_magics: /mlops/api/ serving; journal %s; schedules run here (scheduler pid %s); "
                       "`jupyter server extension disable mlops_magics` turns this off",
                       places.home, state.scheduler.pid)
