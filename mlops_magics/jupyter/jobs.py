"""The jobs started from JupyterLab: one worker process each, one status file each.

``<journal folder>/server-jobs/<id>.json`` is the job: the request as checked, then what its
worker (``job_worker``) says. The folder is the registry, so a restarted server still lists
the jobs it ran; a job whose worker is gone without saying how it ended is FAILED
(``interrupted``). Parameters are checked before any process starts.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

from ..processes import alive
from .job_worker import now_iso, read_status, write_status
from .places import NotFound, Places

FOLDER = "server-jobs"
OUTPUT_FOLDER = "jobs"  # executed notebooks, under root_dir so that JupyterLab opens them
_DONE = ("FINISHED", "FAILED")


class JobRegistry:
    def __init__(self, places: Places) -> None:
        self.places = places
        self.folder = places.home / FOLDER
        self._procs: dict[str, subprocess.Popen] = {}
        self._guard = threading.Lock()

    def submit(self, notebook: Path, parameters: dict, *, experiment: str | None = None,
               timeout: float | None = None) -> dict:
        """Start a job for ``notebook`` with checked, typed ``parameters``; its JOB."""
        from ..locations import private_dir

        job_id = uuid.uuid4().hex[:12]
        private_dir(self.folder)
        out_dir = self.places.root / OUTPUT_FOLDER
        out_dir.mkdir(parents=True, exist_ok=True)
        status = {"id": job_id, "notebook": self.places.relative(notebook), "notebook_path": str(notebook),
                  "state": "queued", "parameters": parameters, "experiment": experiment, "timeout": timeout,
                  "output_file": str(out_dir / f"{notebook.stem}-{job_id}.ipynb"), "created": now_iso(),
                  "started": None, "current_cell": None, "cell_count": None, "failure": None, "error": None,
                  "run_id": None, "run_key": None}
        path = self.folder / f"{job_id}.json"
        write_status(path, status)
        log = open(self.folder / f"{job_id}.log", "ab")
        try:
            proc = subprocess.Popen([sys.executable, "-m", "mlops_magics.jupyter.job_worker", str(path)],
                                    env=self.places.child_env(), cwd=str(notebook.parent), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True, close_fds=True)
        finally:
            log.close()
        with self._guard:
            self._procs[job_id] = proc
        return self.view(status)

    def get(self, job_id: str) -> dict:
        path = self.folder / f"{job_id}.json"
        if not job_id.isalnum() or not path.is_file():
            known = [p.stem for p in self.folder.glob("*.json")] if self.folder.is_dir() else []
            from ..errors import did_you_mean

            raise NotFound(f"no job {job_id!r}.{did_you_mean(job_id, known)}")
        return self.view(self._read(path))

    def all(self, notebook: Path | None = None) -> list[dict]:
        """Every job (of ``notebook``), newest first."""
        if not self.folder.is_dir():
            return []
        jobs = []
        for path in self.folder.glob("*.json"):
            try:
                status = self._read(path)
            except (OSError, ValueError):
                continue  # being replaced this very moment, or not ours
            if notebook is None or status.get("notebook_path") == str(notebook):
                jobs.append(status)
        jobs.sort(key=lambda s: s.get("created") or "", reverse=True)
        return [self.view(s) for s in jobs]

    def _read(self, path: Path) -> dict:
        status = read_status(path)
        if status.get("state") in _DONE:
            if status.get("run_id") is None and status.get("run_key"):
                status["run_id"] = self._run_id(status["run_key"])
            return status
        proc = self._procs.get(status["id"])
        if proc is not None:
            if proc.poll() is None:
                return status
            status = read_status(path)  # it may have said how it ended just before going
            if status.get("state") in _DONE:
                return status
        elif status.get("pid") and alive(int(status["pid"])):
            return status  # a worker of a previous server, still going
        status.update(state="FAILED", failure="interrupted",
                      error="the job's process ended before the job did (the server stopped?)")
        write_status(path, status)
        return status

    def _run_id(self, key: str) -> str | None:
        """The run id of a job whose run was still in the journal when its worker ended."""
        from ..journal.store import Journal

        if not self.places.journal.exists():
            return None
        journal = Journal(self.places.journal)
        try:
            return journal.run_id(self.places.uri, key)
        finally:
            journal.close()

    def view(self, status: dict) -> dict:
        """The JOB of the API."""
        done = status.get("state") in _DONE
        return {"id": status["id"], "notebook": status.get("notebook"), "state": status.get("state"),
                "current_cell": status.get("current_cell"), "cell_count": status.get("cell_count"),
                "failure": status.get("failure"), "error": status.get("error"), "run_id": status.get("run_id"),
                "output_path": self.places.relative(status.get("output_file")) if done else None,
                "parameters": status.get("parameters") or {}, "started": status.get("started")}

    def reap(self) -> None:
        with self._guard:
            for job_id, proc in list(self._procs.items()):
                if proc.poll() is not None:
                    del self._procs[job_id]

    def stop_all(self) -> None:
        """The server stops: running jobs end their runs ``interrupted`` (SIGTERM, as Ctrl-C)."""
        with self._guard:
            procs = [p for p in self._procs.values() if p.poll() is None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
