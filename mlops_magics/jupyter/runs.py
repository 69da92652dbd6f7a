"""``GET /runs``: a notebook's runs, newest first, through one cached read of MLflow.

Reads go through ``store_read`` (the project's one read path: runs cached in the journal folder
and refreshed incrementally, SQLite read with SQL, a server through its REST API; no mlflow
import). One read per (store, notebook) at a time, kept ``TTL_S`` seconds: a panel polling
every few seconds, or several panels on the same notebook, cost one refresh.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from .. import naming

TTL_S = 3.0
LIMIT = 200
_KEEP = 64  # notebooks whose reads are kept

_cache: OrderedDict = OrderedDict()  # (uri, paths, limit) -> (monotonic time, result)
_locks: dict = {}
_guard = threading.Lock()


def read_runs(uri: str, paths: tuple[str, ...], limit: int = LIMIT) -> list[dict]:
    """RUNs (API shape) whose ``mlops.notebook`` is one of ``paths``, newest first; cached."""
    key = (uri, paths, limit)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one read at a time per notebook: the others wait for it and share it
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < TTL_S:
            return hit[1]
        result = _search(uri, paths, limit)
        with _guard:
            _cache[key] = (time.monotonic(), result)
            _cache.move_to_end(key)
            while len(_cache) > _KEEP:
                old, _ = _cache.popitem(last=False)
                _locks.pop(old, None)
        return result


def forget(uri: str | None = None) -> None:
    """Drop cached reads (a job just ended: its run should show at once)."""
    with _guard:
        for key in [k for k in _cache if uri is None or k[0] == uri]:
            del _cache[key]


def _search(uri: str, paths: tuple[str, ...], limit: int) -> list[dict]:
    from ..store_read import ReadError, Store

    try:
        store = Store(uri)
    except ReadError:
        return []  # nothing recorded yet
    wanted = set(paths)
    runs = [r for e in store.experiments() if e.lifecycle_stage == "active"
            for r in store.runs(e) if r.tags.get(naming.NOTEBOOK) in wanted]
    runs.sort(key=lambda r: r.start_time or 0, reverse=True)
    return _views(runs[:limit])


def _group(run) -> tuple:
    """Runs compared with each other for ``changed_params``: the same cell, else the same kind and name."""
    tags = run.data.tags
    kind = tags.get(naming.KIND, "run")
    if tags.get(naming.CELL_ID):
        return ("cell", tags[naming.CELL_ID])
    return (kind, "" if kind in (naming.KIND_JOB, naming.KIND_SWEEP) else run.info.run_name)


def _views(runs: list) -> list[dict]:
    previous: dict[tuple, dict] = {}
    out = []
    for run in reversed(runs):  # oldest first: each run is compared with the one before it
        group = _group(run)
        params = dict(run.data.params)
        before = previous.get(group)
        changed = {} if before is None else {
            k: [before.get(k), params.get(k)] for k in sorted(set(before) | set(params)) if before.get(k) != params.get(k)}
        previous[group] = params
        out.append(_view(run, params, changed))
    out.reverse()
    return out


def primary_metric(metrics: dict[str, float]) -> str | None:
    """The metric a run is judged by: f1, else a well-known one, else the first by name."""
    from ..runner.sweep import pick_metric

    return pick_metric([metrics]) if metrics else None


def _view(run, params: dict, changed: dict) -> dict:
    tags, metrics = run.data.tags, dict(run.data.metrics)
    primary = primary_metric(metrics)
    return {"run_id": run.info.run_id, "name": run.info.run_name, "kind": tags.get(naming.KIND, "run"),
            "status": run.info.status, "start_time": run.info.start_time, "params": params,
            "changed_params": changed, "metrics": metrics,
            "primary_metric": {"name": primary, "value": metrics[primary]} if primary else None,
            "failure": tags.get(naming.FAILURE), "alert": tags.get(naming.ALERT),
            "cell_id": tags.get(naming.CELL_ID), "cell_sha256": tags.get(naming.CELL_SHA256),
            "experiment_id": run.info.experiment_id}


def ui_url(uri: str) -> str | None:
    """The MLflow UI: the tracking server itself when the store is one (never with credentials)."""
    from ..locations import uri_without_credentials

    if uri.startswith(("http://", "https://")):
        return uri_without_credentials(uri).rstrip("/")
    return None


def with_urls(runs: list[dict], base: str | None) -> list[dict]:
    return [{**r, "url": f"{base}/#/experiments/{r['experiment_id']}/runs/{r['run_id']}" if base else None}
            for r in runs]
