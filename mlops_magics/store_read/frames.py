"""Runs as pandas frames: the one ``mlflow.search_runs`` returns, and the flat one the history shows."""

from __future__ import annotations

from .. import naming
from .model import Run

PARENT_KINDS = (naming.KIND_SESSION, naming.KIND_SWEEP)  # containers, not trained models
PARAMS_SHOWN = 12
HISTORY_COLUMNS = ["run_id", "run_name", "start_time", "status", "kind", "params", "data", "inputs"]
_INFO = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


def newest_first(runs: list[Run]) -> list[Run]:
    """``runs`` in ``mlflow.search_runs``' default order: newest start first, then by run id."""
    return sorted(sorted(runs, key=lambda r: r.run_id), key=lambda r: -(r.start_time or 0))


def search_runs_frame(runs: list[Run]):
    """The frame ``mlflow.search_runs`` returns for these runs: ``run_id, experiment_id, status,
    artifact_uri, start_time, end_time`` (UTC datetimes), then ``metrics.*``, ``params.*``, ``tags.*``."""
    import pandas as pd

    runs = newest_first(runs)
    columns: dict[str, list] = {
        "run_id": [r.run_id for r in runs], "experiment_id": [r.experiment_id for r in runs],
        "status": [r.status for r in runs], "artifact_uri": [r.artifact_uri for r in runs],
        "start_time": _times(pd, [r.start_time for r in runs]), "end_time": _times(pd, [r.end_time for r in runs])}
    for prefix, attr, missing in (("metrics.", "metrics", float("nan")), ("params.", "params", None),
                                  ("tags.", "tags", None)):
        keys = sorted({k for r in runs for k in getattr(r, attr)})
        for key in keys:
            columns[prefix + key] = [getattr(r, attr).get(key, missing) for r in runs]
    if not runs:
        return pd.DataFrame(columns=_INFO)
    return pd.DataFrame(columns)


def _times(pd, values: list[int | None]):
    return pd.to_datetime(pd.Series(values, dtype="Int64"), unit="ms", utc=True).astype("datetime64[us, UTC]")


def history_frame(runs: list[Run], max_runs: int | None = None):
    """Every run but session and sweep containers, newest ``max_runs`` at most, oldest first:
    ``run_id, run_name, start_time`` (ms), ``status, kind, params`` (text), ``data`` (input
    fingerprints), ``inputs`` (names), ``metrics.<name>``."""
    import pandas as pd

    kept = [r for r in newest_first(runs) if r.tags.get(naming.KIND) not in PARENT_KINDS][:max_runs][::-1]
    if not kept:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    inputs = [[d for d in r.inputs if d.context in (naming.CONTEXT_INPUT, None)] for r in kept]
    columns = {"run_id": [r.run_id for r in kept], "run_name": [r.run_name or "" for r in kept],
               "start_time": [r.start_time for r in kept], "status": [r.status for r in kept],
               "kind": [r.tags.get(naming.KIND, "run") for r in kept],
               "params": [" ".join(f"{k}={v}" for k, v in sorted(r.params.items())[:PARAMS_SHOWN]) for r in kept],
               "data": [" ".join(f"{d.name} {short_digest(d.digest)}" for d in found) for found in inputs],
               "inputs": [tuple(d.name for d in found) for found in inputs]}
    nan = float("nan")
    for key in dict.fromkeys(k for r in kept for k in r.metrics):  # columns (not rows): 3x faster
        columns[f"metrics.{key}"] = [r.metrics.get(key, nan) for r in kept]
    return pd.DataFrame(columns)


def history_row(run: Run) -> dict:
    """One run as a row of :func:`history_frame`."""
    params = " ".join(f"{k}={v}" for k, v in sorted(run.params.items())[:PARAMS_SHOWN])
    inputs = [d for d in run.inputs if d.context in (naming.CONTEXT_INPUT, None)]
    row = {"run_id": run.run_id, "run_name": run.run_name or "", "start_time": run.start_time,
           "status": run.status, "kind": run.tags.get(naming.KIND, "run"), "params": params,
           "data": " ".join(f"{d.name} {short_digest(d.digest)}" for d in inputs),
           "inputs": tuple(d.name for d in inputs),
           # what the history colours by: a sweep's point, a scheduled run, a retrain on an alert
           "sweep": run.tags.get(naming.PARENT_SWEEP), "schedule": run.tags.get(naming.SCHEDULE),
           "triggered_by": run.tags.get(naming.TRIGGERED_BY)}
    row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
    return row


def short_digest(digest: str) -> str:
    """12 characters of the hash, without a scheme prefix such as ``xx3v1:``."""
    return digest.rsplit(":", 1)[-1][:12]
