"""Applies run records to MLflow. The only module that imports mlflow for writing.

Every call goes through ``MlflowClient`` with an explicit tracking URI: the user's
own ``mlflow`` global state (active run, tracking URI) is never touched.
"""

from __future__ import annotations

import json
import logging

from .. import naming
from ..locations import display_uri
from ..tracking.records import Op

log = logging.getLogger("mlops_magics")


class PermanentError(Exception):
    """MLflow rejected a record; retrying it cannot help."""


def _chunks(params: list, metrics: list, tags: list):
    """Split into batches within MLflow's limits (100 params+tags, 1000 entities, ~1 MB)."""
    pending = [("p", x) for x in params] + [("t", x) for x in tags]
    metrics = list(metrics)
    while pending or metrics:
        batch, size = [], 0
        while pending and len(batch) < naming.MAX_PARAMS_TAGS_PER_BATCH and size < naming.MAX_BATCH_BYTES // 2:
            kind, item = pending.pop(0)
            batch.append((kind, item))
            size += len(item.key) + len(str(item.value))
        room = naming.MAX_METRICS_PER_BATCH - len(batch)
        chunk, metrics = metrics[:room], metrics[room:]
        yield [x for k, x in batch if k == "p"], chunk, [x for k, x in batch if k == "t"]


class MlflowWriter:
    """Applies ops in order; the journal remembers which MLflow run id each client key became."""

    def __init__(self, tracking_uri: str, journal) -> None:
        import warnings

        # tqdm, imported by mlflow, warns about ipywidgets; from this thread the warning
        # would land under whatever cell runs now.
        warnings.filterwarnings("ignore", message="IProgress not found")
        from mlflow import MlflowClient

        _quiet_mlflow_in_our_threads()
        self.uri, self.journal = tracking_uri, journal
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._experiments: dict[str, str] = {}

    def apply(self, op: Op, replay: bool = False) -> None:
        """Apply one op. ``replay``: an earlier attempt may have applied part of it already."""
        if op["op"] == "start":
            self._start(op, replay)
        else:
            getattr(self, "_" + op["op"])(op)

    def run_id(self, key: str) -> str:
        run_id = self.journal.run_id(self.uri, key)
        if run_id is None:
            raise PermanentError(f"run key {key} was never started")
        return run_id

    def experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            from mlflow.exceptions import MlflowException

            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                try:
                    self._experiments[name] = self.client.create_experiment(name)
                    return self._experiments[name]
                except MlflowException:  # created meanwhile by another process
                    exp = self.client.get_experiment_by_name(name)
                    if exp is None:
                        raise
            if exp.lifecycle_stage == "deleted":
                raise PermanentError(f"experiment {name!r} is deleted; restore it or pick another name")
            self._experiments[name] = exp.experiment_id
        return self._experiments[name]

    def _start(self, op: Op, replay: bool) -> None:
        key = op["key"]
        if self.journal.run_id(self.uri, key) is not None:
            return
        experiment_id = self.experiment_id(op["experiment"])
        if replay:  # the run may exist already: created just before a crash or a timeout
            found = self.client.search_runs([experiment_id], f"tags.`{naming.RUN_KEY}` = '{key}'", max_results=1)
            if found:
                self.journal.map_run(self.uri, key, found[0].info.run_id)
                return
        tags = dict(op["tags"])
        tags[naming.RUN_KEY] = key
        if op.get("parent_key"):
            tags[naming.MLFLOW_PARENT_RUN_ID] = self.run_id(op["parent_key"])
        run = self.client.create_run(experiment_id, start_time=op["start_ms"], tags=tags,
                                     run_name=op.get("name") or None)
        self.journal.map_run(self.uri, key, run.info.run_id)

    def _log(self, op: Op) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run_id = self.run_id(op["key"])
        params = [Param(k, v) for k, v in op["params"].items()]
        tags = [RunTag(k, naming.clip(str(v), naming.MAX_TAG_VAL_LENGTH)) for k, v in op["tags"].items()]
        metrics = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in op["metrics"]]
        for p, m, t in _chunks(params, metrics, tags):
            self.client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)

    def _inputs(self, op: Op) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        run_id = self.run_id(op["key"])
        found = []
        for d in op["datasets"]:
            ds = Dataset(
                name=d["name"], digest=d["digest"][: naming.MAX_DIGEST_LENGTH],
                source_type=naming.DATASET_SOURCE_TYPE, source=json.dumps(d.get("source") or {}),
                schema=json.dumps(d["schema"]) if d.get("schema") else None,
                profile=json.dumps(d["profile"]) if d.get("profile") else None,
            )
            found.append(DatasetInput(ds, [InputTag(naming.DATASET_CONTEXT_TAG, d["context"])]))
        if found:
            self.client.log_inputs(run_id, found)

    def _artifact(self, op: Op) -> None:
        self.client.log_text(self.run_id(op["key"]), op["text"], op["path"])

    def _model(self, op: Op) -> None:
        """Idempotent on replay: uploading the same folder again writes the same files."""
        import os

        if not os.path.isdir(op["local_dir"]):
            raise PermanentError(f"the saved model folder {op['local_dir']} is gone")
        self.client.log_artifacts(self.run_id(op["key"]), op["local_dir"], op["path"])

    def _end(self, op: Op) -> None:
        self.client.set_terminated(self.run_id(op["key"]), status=op["status"], end_time=op["end_ms"])


# Errors a retry cannot fix: the record itself is invalid. Everything else (a refused
# connection, a locked database, a 5xx, a wrong password) is an outage: wait and retry.
_PERMANENT_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "MALFORMED_REQUEST", "INVALID_STATE",
                    "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS"}


class _NotFromFlusher(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.threadName.startswith("mlops-magics")


def _quiet_mlflow_in_our_threads() -> None:
    """MLflow logs store errors with tracebacks to stderr; from our background thread they
    would land in whatever cell runs now. The journal and ``%track status`` report them instead."""
    for handler in logging.getLogger("mlflow").handlers:
        if not any(isinstance(f, _NotFromFlusher) for f in handler.filters):
            handler.addFilter(_NotFromFlusher())


def is_transient(exc: BaseException) -> bool:
    """True for outages a retry can fix, False for records MLflow will never take."""
    if isinstance(exc, PermanentError):
        return False
    code = getattr(exc, "error_code", None)
    if code is not None:
        return code not in _PERMANENT_CODES
    return not isinstance(exc, (TypeError, ValueError, KeyError))





def probe(uri: str, timeout: float = 3.0) -> None:
    """For an HTTP tracking server, fail fast when it does not answer.

    MLflow's own client retries a refused connection for minutes; a quick health
    check lets the flusher back off and try again instead.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            return  # it answers (an auth app may guard /health): let MLflow's call decide
        raise ConnectionError(f"tracking server {display_uri(uri)} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"tracking server not reachable ({reason})") from None
