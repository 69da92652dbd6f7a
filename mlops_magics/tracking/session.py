"""A tracking session: one per kernel. Owns the session runs, delivery and cell history.

Every ``%%track`` execution is its own run (``mlops.kind=cell``), a child of one
session run per kernel and experiment (``mlops.kind=session``) created lazily with
the first tracked cell. Re-running a cell therefore never changes a logged param.
"""

from __future__ import annotations

import getpass
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import naming
from ..journal import records
from .active import ActiveRun  # noqa: F401  (re-exported for the tracker)
from .datasets import ProfileCache
from .identity import NotebookCells

if TYPE_CHECKING:
    from .in_job import JobInKernel

log = logging.getLogger("mlops_magics")

MAX_HISTORY = 200


@dataclass
class CellRun:
    """What one tracked execution recorded, as shown under the cell and by ``%track runs``."""

    key: str
    name: str
    experiment: str
    uri: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    data: list[dict]  # name, digest, short, context, kind, shape
    unhashed: dict[str, str]
    warnings: list[str]
    error: str | None
    usage: dict[str, float]
    cell_id: str | None
    source: str
    execution_count: int | None
    step_points: int = 0
    alerts: list[str] = field(default_factory=list)
    previous: CellRun | None = None
    identity: str | None = None  # the notebook cell it ran, when the saved notebook tells (identity.py)


class TrackingSession:
    """Per-kernel state: deliveries per tracking URI, session runs, tracked-cell history."""

    def __init__(self, notebook: str | None = None, journal_path: str | None = None) -> None:
        self.key = records.new_key()
        self.journal_path = journal_path
        self._journal = None
        self.notebook = notebook
        self.history: list[CellRun] = []
        self.cells = NotebookCells()  # the saved notebook's cells, for "what changed"
        self.profiles = ProfileCache()  # profile JSON by content digest, used by the background thread only
        self._deliveries: dict = {}
        self._session_runs: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._executor = None
        self.job: JobInKernel | None = None  # inside a notebook job only (in_job.py)

    def attach_job(self, key: str, uri: str) -> None:
        """Inside a notebook job: tracked cells and ``mm.log_metric`` record into the job's run."""
        from .. import _current
        from .in_job import JobInKernel

        self.job = JobInKernel(key, uri, self.delivery(uri))
        _current.push(self.job.run)

    def after_cell(self) -> None:
        """In a job: commit what plain cells added (step metrics, tags, artifacts, metric checks)."""
        if self.job is not None:
            self.job.after_cell(self)

    def defer(self, fn, *args):
        """Run ``fn(*args)`` in the session's one background thread, in submission order."""
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-magics-track")
        return self._executor.submit(_logged, fn, *args)

    def _drain(self, timeout: float) -> None:
        if self._executor is not None:
            try:
                self.defer(lambda: None).result(timeout=timeout)
            except Exception:
                pass

    def journal(self):
        """The journal, opened on first use (never on the load path)."""
        with self._lock:
            if self._journal is None:
                from ..journal.store import Journal
                from ..locations import journal_path

                self._journal = Journal(self.journal_path or journal_path())
            return self._journal

    def delivery(self, uri: str):
        journal = self.journal()
        with self._lock:
            if uri not in self._deliveries:
                from ..journal.delivery import ProcessDelivery

                d = ProcessDelivery(uri, journal)  # never import mlflow inside the user's kernel
                self._deliveries[uri] = d
            return self._deliveries[uri]

    def session_run(self, uri: str, experiment: str, notebook: str | None) -> tuple[str, list[records.Op]]:
        """The session run's key for ``(uri, experiment)``, and the ops creating it if new."""
        with self._lock:
            key = self._session_runs.get((uri, experiment))
            if key is not None:
                return key, []
            key = self._session_runs[(uri, experiment)] = records.new_key()
        tags = {naming.KIND: naming.KIND_SESSION, naming.SESSION_KEY: self.key,
                naming.MLFLOW_USER: _user()}
        if notebook:
            from .lineage import source_tags

            tags.update(source_tags(notebook))
        name = f"session {notebook.rsplit('/', 1)[-1]}" if notebook else "session"
        op = records.start(key, experiment=experiment, name=name, start_ms=records.now_ms(), tags=tags)
        return key, [op]

    def record(self, run: CellRun) -> None:
        self.history.append(run)
        del self.history[:-MAX_HISTORY]

    def previous(self, run: CellRun, name: str | None = None, notebook: str | None = None) -> CellRun | None:
        """The last tracked execution of the same cell as ``run``, or None when that is not clear.

        The same cell is: the same frontend cell id; else the same ``--name``; else, when the
        notebook file can be read, the same saved cell (the one whose code best matches, see
        ``identity.py``; sets ``run.identity``); else an earlier run of identical code. Never
        a cell that merely looks alike.
        """
        if run.cell_id or name:
            for old in reversed(self.history):
                if (run.cell_id and old.cell_id == run.cell_id) or (name and old.name == name):
                    return old
            return None
        run.identity = self.cells.locate(notebook, run.source) if notebook else None
        for old in reversed(self.history):
            if old.cell_id:
                continue
            if run.identity is None or old.identity is None:
                if old.source == run.source:  # identical code: the same cell, or one just like it
                    return old
            elif old.identity == run.identity and self.cells.locate(notebook, old.source) == run.identity:
                return old  # checked again against the file as saved now: cells may have moved
        return None

    def statuses(self):
        return [d.status() for d in list(self._deliveries.values())]

    def flush(self, timeout: float = 30.0, outage_grace: float | None = None) -> int:
        """Deliver everything now; wait at most ``timeout`` seconds in all (or until MLflow has
        failed every attempt for ``outage_grace`` seconds); return records left."""
        import time

        deadline = time.monotonic() + timeout
        self._drain(timeout)
        left = 0
        for d in list(self._deliveries.values()):
            left += d.flush(max(0.0, deadline - time.monotonic()), outage_grace=outage_grace)
        return left

    def close(self, timeout: float = 10.0) -> int:
        """End the session runs (FINISHED) and deliver what is pending."""
        if self.job is not None:
            from .. import _current

            self.job.run.take_spill()
            _current.pop(self.job.run)
        self._drain(timeout)
        with self._lock:
            runs = dict(self._session_runs)
            self._session_runs.clear()
        for (uri, _), key in runs.items():
            try:
                self.delivery(uri).submit([records.end(key, status="FINISHED", end_ms=records.now_ms())])
            except Exception:
                log.exception("mlops-magics: could not record the end of the session run")
        left = 0
        for d in list(self._deliveries.values()):
            left += d.close(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        if self._journal is not None:
            self._journal.close()
        return left



def _logged(fn, *args):
    try:
        return fn(*args)
    except Exception:
        log.exception("mlops-magics: recording a run failed")
        raise


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"

