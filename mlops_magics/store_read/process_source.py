"""The asking side of :mod:`client_process`: one short-lived helper process per batch of reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .. import locations
from ..secrets import mask_text
from .model import Experiment, LoggedModel, ModelVersion, ReadError, Run
from .search_source import SearchSource

TIMEOUT_S = 300.0
# A read should fail in seconds, not after MLflow's default retries with backoff (the user's own
# settings win). Set in the helper's environment only: this process's stays as it is.
_QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
_DECODE = {"experiments": lambda rows: [Experiment(*e) for e in rows],
           "search": lambda rows: [Run.from_json(r) for r in rows],
           "get_run": lambda row: Run.from_json(row) if row else None,
           "alias_holders": lambda rows: [ModelVersion(*m) for m in rows],
           "model_versions": lambda rows: [ModelVersion(*m) for m in rows],
           "logged_models": lambda rows: [LoggedModel(*m) for m in rows]}


class ProcessSource(SearchSource):
    def __init__(self, uri: str) -> None:
        self.uri, self.shown = uri, locations.display_uri(uri)

    def batch(self, calls: list[tuple[str, dict]]) -> list:
        env = {**_QUICK_HTTP, **os.environ}
        request = json.dumps({"uri": self.uri, "calls": [[op, kw] for op, kw in calls]})
        try:
            done = subprocess.run([sys.executable, "-m", "mlops_magics.store_read.client_process"], input=request,
                                  capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise ReadError(f"reading MLflow at {self.shown} took over {TIMEOUT_S:.0f} s") from None
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            tail = (done.stderr.strip().splitlines() or ["no answer"])[-1][:300]
            raise ReadError(f"could not read MLflow at {self.shown}: {tail}") from None
        if "error" in answer:
            raise ReadError(_explain(mask_text(answer["error"].replace(self.uri, self.shown)), self.shown))
        return [_DECODE.get(op, lambda x: x)(result) for (op, _), result in zip(calls, answer["results"])]


def _explain(error: str, shown: str) -> str:
    if any(s in error for s in ("Max retries exceeded", "Connection refused", "Read timed out",
                                "Name or service not known")):
        return f"cannot reach MLflow at {shown}: is the server running?"
    return f"MLflow could not read {shown}: {error}"
