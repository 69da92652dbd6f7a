"""The runs of an experiment kept in the journal folder, refreshed incrementally.

A first read takes every active run; later reads ask the store only for what changed since
the last one (minus a slack for clocks that disagree): runs started, ended, deleted or given a
metric since, runs that were still running, runs the cache has not seen. The file is private
(0600 in a 0700 folder) and names the store without credentials.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from .. import locations
from .model import Run

FORMAT = 1
SLACK_MS = 5 * 60 * 1000  # writers' clocks may lag ours, and a metric's time is the writer's
REWRITE_MS = 10 * 60 * 1000  # an unchanged cache is rewritten this often, to keep the window short


def now_ms() -> int:
    return int(time.time() * 1000)


def _load(path: Path) -> tuple[int, dict[str, Run]] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("format") != FORMAT:
            return None
        return int(state["read_at"]), {row[0]: Run.from_json(row) for row in state["runs"]}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # missing, torn or of another version: read everything again


def _save(path: Path, uri: str, experiment_id: str, read_at: int, runs: dict[str, Run]) -> None:
    folder = locations.private_dir(path.parent)
    state = {"format": FORMAT, "store": locations.uri_without_credentials(uri), "experiment_id": experiment_id,
             "read_at": read_at, "runs": [r.to_json() for r in runs.values()]}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".runs-", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(state, separators=(",", ":")))  # one C-encoded string: dump() is 10x slower
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_runs(source, uri: str, experiment_id: str, *, full: bool = False) -> list[Run]:
    """Every active run of the experiment, from the cache brought up to date through ``source``.

    ``full``: read everything again (a finished run's later tags show only then)."""
    path = locations.runs_cache_path(uri, experiment_id)
    started = now_ms()
    cached = None if full else _load(path)
    if cached is None:
        runs = {r.run_id: r for r in source.read_runs(experiment_id)}
        changed = True
    else:
        read_at, runs = cached
        found, gone = source.read_changes(experiment_id, read_at - SLACK_MS, runs)
        changed = (any(runs.get(r.run_id) != r for r in found) or bool(gone & runs.keys())
                   or started - read_at > REWRITE_MS)
        for run_id in gone:
            runs.pop(run_id, None)
        for run in found:
            if run.lifecycle_stage == "active":
                runs[run.run_id] = run
            else:
                runs.pop(run.run_id, None)
    if changed:
        try:
            _save(path, uri, experiment_id, started, runs)
        except OSError:
            pass  # a read-only home: the answer is right, only the next read is slower
    return list(runs.values())
