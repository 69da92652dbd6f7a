"""One notebook job started from JupyterLab: ``python -m mlops_magics.jupyter.job_worker STATUS``.

The server writes the job's request into ``STATUS`` (a JSON file under the journal folder)
and starts this process; it runs the notebook with ``run_notebook`` (one fresh kernel, one
MLflow run, the journal's delivery process) and keeps ``STATUS`` saying how far it is: the
cell it is on, then how it ended and the run id. A process of its own, so nothing a job does
(signals, its kernel, papermill) touches the server; SIGTERM stops the job as Ctrl-C does
(its run ends ``interrupted``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_status(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_status(path: str | os.PathLike, status: dict) -> None:
    """Replace ``path`` at once (readers never see half a file); 0600, it names notebooks and parameters."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(status, f)
    os.replace(tmp, path)


class _Progress:
    """Says in the status file which cell the job is on (throttled: a quick cell costs nothing)."""

    def __init__(self, path: str, status: dict) -> None:
        self.path, self.status, self._last = path, status, 0.0

    def on_cell(self, index: int, total: int) -> None:
        self.status.update(current_cell=index + 1, cell_count=total)
        now = time.monotonic()
        if now - self._last >= 0.2 or index + 1 == total:
            self._last = now
            write_status(self.path, self.status)


def _watch_cells(progress: _Progress) -> None:
    """Hook the job recorder's per-cell call (told by papermill as each cell starts)."""
    from ..runner import recorder

    base = recorder.JobRecorder

    class Recorder(base):
        def on_cell(self, index, total, cell):
            super().on_cell(index, total, cell)
            progress.on_cell(index, total)

    recorder.JobRecorder = Recorder  # this process runs one job and nothing else


def _stop(signum, frame):
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def main(argv: list[str]) -> int:
    path = argv[0]
    status = read_status(path)
    status.update(state="running", pid=os.getpid(), started=now_iso())
    write_status(path, status)
    signal.signal(signal.SIGTERM, _stop)
    try:
        from ..runner.run import JobSpec, run_job

        _watch_cells(_Progress(path, status))
        spec = JobSpec(experiment=status.get("experiment"), output=status.get("output_file"),
                       timeout=status.get("timeout"), progress=False, cwd=str(Path(status["notebook_path"]).parent))
        result = run_job(status["notebook_path"], status.get("parameters") or {}, spec=spec)
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is None:
            status.update(state="FAILED", failure="interrupted", error=str(exc) or "interrupted", ended=now_iso())
            write_status(path, status)
            return 130
    except Exception as exc:
        from ..errors import one_line

        status.update(state="FAILED", failure="error", error=one_line(exc), ended=now_iso())
        write_status(path, status)
        return 1
    status.update(state=result.status, failure=result.failure, error=result.error, run_id=result.run_id,
                  run_key=result.key, output_file=result.output_path, failed_cell=result.failed_cell,
                  ended=now_iso())
    write_status(path, status)
    return 0 if result.failure is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
