"""The REST handlers of ``<base_url>mlops/api/``: thin, behind Jupyter's own authentication.

Each handler parses the request, runs the work in the extension's worker threads (SQLite,
notebook files and MLflow never block the server's event loop) and answers JSON. A problem
the user can fix is ``{"message": "<one line>"}``: the CLI's text, did-you-mean included.
"""

from __future__ import annotations

import functools
import json

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..errors import MlopsError, first_line
from .places import BadRequest, NotFound

STATE_KEY = "mlops_magics"


class _Base(APIHandler):
    @property
    def state(self):
        return self.settings[STATE_KEY]

    async def work(self, fn, *args, **kwargs):
        """``fn(*args)`` in a worker thread; a user's mistake becomes a 4xx with its one line."""
        return await self.state.run(fn, *args, **kwargs)

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise BadRequest("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("send a JSON object")
        return data

    def answer(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def refuse(self, exc: Exception) -> None:
        from ..schedules.cron import ScheduleError

        status = 404 if isinstance(exc, NotFound) else 400
        if isinstance(exc, ScheduleError) and str(exc).startswith("no schedule named") and self._names_schedule():
            status = 404
        self.answer({"message": first_line(exc) or type(exc).__name__}, status)

    def _names_schedule(self) -> bool:
        return self.request.method in ("PATCH", "DELETE")


def endpoint(method):
    """A handler method behind Jupyter's authentication whose user mistakes (``MlopsError``)
    answer ``{"message": ...}`` with 400/404 instead of a traceback page."""

    @tornado.web.authenticated
    @functools.wraps(method)
    async def handle(self, *args):
        try:
            await method(self, *args)
        except MlopsError as exc:
            self.refuse(exc)

    return handle


class StatusHandler(_Base):
    @endpoint
    async def get(self):
        self.answer(await self.work(self.state.delivery.status))


class SchedulesHandler(_Base):
    @endpoint
    async def get(self):
        path = self.get_query_argument("notebook", None)
        self.answer({"schedules": await self.work(self.state.schedules, path)})

    @endpoint
    async def post(self):
        self.answer(await self.work(self.state.add_schedule, self.body()), 201)


class ScheduleHandler(_Base):
    @endpoint
    async def patch(self, name: str):
        paused = self.body().get("paused")
        if not isinstance(paused, bool):
            raise BadRequest('send {"paused": true} to pause or {"paused": false} to resume')
        self.answer(await self.work(self.state.set_paused, name, paused))

    @endpoint
    async def delete(self, name: str):
        await self.work(self.state.remove_schedule, name)
        self.set_status(204)
        self.finish()


class JobsHandler(_Base):
    @endpoint
    async def get(self):
        path = self.get_query_argument("notebook", None)
        self.answer({"jobs": await self.work(self.state.jobs_of, path)})

    @endpoint
    async def post(self):
        self.answer(await self.work(self.state.submit_job, self.body()), 202)


class JobHandler(_Base):
    @endpoint
    async def get(self, job_id: str):
        self.answer(await self.work(self.state.jobs.get, job_id))


class RunsHandler(_Base):
    @endpoint
    async def get(self):
        self.answer(await self.state.runs(self.get_query_argument("notebook", None)))


class NotebookHandler(_Base):
    @endpoint
    async def get(self):
        from .views import notebook_view

        path = self.get_query_argument("path", None)
        self.answer(await self.work(notebook_view, self.state.places, path))


def routes(base_url: str) -> list[tuple]:
    api = url_path_join(base_url, "mlops", "api")
    return [
        (url_path_join(api, "status"), StatusHandler),
        (url_path_join(api, "schedules"), SchedulesHandler),
        (url_path_join(api, "schedules", r"([^/]+)"), ScheduleHandler),
        (url_path_join(api, "jobs"), JobsHandler),
        (url_path_join(api, "jobs", r"([^/]+)"), JobHandler),
        (url_path_join(api, "runs"), RunsHandler),
        (url_path_join(api, "notebook"), NotebookHandler),
    ]
