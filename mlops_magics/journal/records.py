"""Run records: plain, JSON-serialisable operations on runs named by client keys.

The tracker produces them; the delivery module hands them to MLflow. A run is named
by a client-generated key (never MLflow's id, which only exists once delivered),
so records can be made, stored and replayed without a server.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

Op = dict[str, Any]


# The kinds of operation; ``mlflow_writer.MlflowWriter.apply`` has one handler for each.
START, LOG, INPUTS, ARTIFACT, MODEL, END = "start", "log", "inputs", "artifact", "model", "end"


def new_key() -> str:
    """A fresh client run key."""
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)


def start(key: str, *, experiment: str, name: str | None, start_ms: int,
          tags: dict[str, str], parent_key: str | None = None) -> Op:
    return {"op": START, "key": key, "experiment": experiment, "name": name,
            "start_ms": start_ms, "tags": tags, "parent_key": parent_key}


def log(key: str, *, params: dict[str, str] | None = None,
        metrics: list[tuple[str, float, int, int]] | None = None,
        tags: dict[str, str] | None = None) -> Op:
    """``metrics`` holds ``(key, value, timestamp_ms, step)`` tuples."""
    return {"op": LOG, "key": key, "params": params or {},
            "metrics": [list(m) for m in metrics or ()], "tags": tags or {}}


def inputs(key: str, datasets: list[dict[str, Any]]) -> Op:
    """``datasets``: dicts with name, digest, source, schema, profile, context."""
    return {"op": INPUTS, "key": key, "datasets": datasets}


def artifact(key: str, path: str, text: str) -> Op:
    return {"op": ARTIFACT, "key": key, "path": path, "text": text}


def model(key: str, local_dir: str, path: str) -> Op:
    """Upload the saved model folder ``local_dir`` as the run's artifacts under ``path``."""
    return {"op": MODEL, "key": key, "local_dir": local_dir, "path": path}


def end(key: str, *, status: str, end_ms: int) -> Op:
    return {"op": END, "key": key, "status": status, "end_ms": end_ms}
