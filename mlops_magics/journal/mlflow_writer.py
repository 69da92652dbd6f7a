"""Applies run records to MLflow. The only module that imports mlflow for writing.

Every call goes through ``MlflowClient`` with an explicit tracking URI: the user's
own ``mlflow`` global state (active run, tracking URI) is never touched. Besides the
journal's records, :class:`Registry` holds the registry actions ``promote`` takes at once.
"""

from __future__ import annotations

import json
import logging

from .. import naming
from ..errors import one_line
from ..locations import display_uri
from . import records
from .records import Op

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

    def apply(self, op: Op, replay: bool = False) -> list[tuple[Op, str]]:
        """Apply one op. ``replay``: an earlier attempt may have applied part of it already.

        Returns the parts MLflow refused as invalid, each as its own op with MLflow's reason
        (a bad metric key is set aside alone; the rest of the op arrives). An op refused as
        a whole raises ``PermanentError`` or MLflow's own error; an outage raises too.
        """
        kind = op["op"]
        if kind == records.START:
            return self._start(op, replay)
        if kind == records.LOG:
            return self._log(op)
        handlers = {records.INPUTS: self._inputs, records.ARTIFACT: self._artifact,
                    records.MODEL: self._model, records.END: self._end}
        if kind not in handlers:
            raise PermanentError(f"unknown record kind {kind!r}")
        handlers[kind](op)
        return []

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
                    self._experiments[name] = self._create_experiment(name)
                    return self._experiments[name]
                except MlflowException:  # created meanwhile by another process
                    exp = self.client.get_experiment_by_name(name)
                    if exp is None:
                        raise
            if exp.lifecycle_stage == "deleted":
                raise PermanentError(f"experiment {name!r} is deleted; restore it or pick another name")
            self._experiments[name] = exp.experiment_id
        return self._experiments[name]

    def _create_experiment(self, name: str) -> str:
        """A new experiment, tagged for the MLflow UI's model-training view (not its GenAI view);
        in a project's store with its artifacts beside the store (:func:`project_store`)."""
        tags = {naming.MLFLOW_EXPERIMENT_KIND: naming.EXPERIMENT_KIND_MODEL_TRAINING}
        store = project_store(self.uri)
        if store is None:
            return self.client.create_experiment(name, tags=tags)
        from mlflow.entities import ExperimentTag

        return store.create_experiment(name, tags=[ExperimentTag(k, v) for k, v in tags.items()])

    def _start(self, op: Op, replay: bool) -> list[tuple[Op, str]]:
        key = op["key"]
        if self.journal.run_id(self.uri, key) is not None:
            return []
        experiment_id = self.experiment_id(op["experiment"])
        if replay:  # the run may exist already: created just before a crash or a timeout
            found = self.client.search_runs([experiment_id], f"tags.`{naming.RUN_KEY}` = '{key}'", max_results=1)
            if found:
                self.journal.map_run(self.uri, key, found[0].info.run_id)
                return []
        tags = dict(op["tags"])
        tags[naming.RUN_KEY] = key
        if op.get("parent_key"):
            tags[naming.MLFLOW_PARENT_RUN_ID] = self.run_id(op["parent_key"])
        aside: list[tuple[Op, str]] = []
        try:
            run = self._create_run(experiment_id, op, tags)
        except Exception as exc:
            bad = {k: v for k, v in op["tags"].items() if naming.key_problem(k)}
            if is_transient(exc) or not bad:
                raise
            # A tag MLflow cannot take must not cost the whole run: create it without them.
            run = self._create_run(experiment_id, op, {k: v for k, v in tags.items() if k not in bad})
            aside.append((records.log(key, tags=bad), one_line(exc)))
        self.journal.map_run(self.uri, key, run.info.run_id)
        return aside

    def _create_run(self, experiment_id: str, op: Op, tags: dict):
        return self.client.create_run(experiment_id, start_time=op["start_ms"], tags=tags,
                                      run_name=op.get("name") or None)

    def _log(self, op: Op) -> list[tuple[Op, str]]:
        from mlflow.entities import Metric, Param, RunTag

        run_id = self.run_id(op["key"])
        params = [Param(k, v) for k, v in op["params"].items()]
        tags = [RunTag(k, naming.clip(str(v), naming.MAX_TAG_VAL_LENGTH)) for k, v in op["tags"].items()]
        metrics = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in op["metrics"]]
        refused: list[tuple[object, str]] = []
        for p, m, t in _chunks(params, metrics, tags):
            refused += self._log_items(run_id, [*p, *m, *t])
        return _as_ops(op["key"], refused)

    def _log_items(self, run_id: str, items: list) -> list[tuple[object, str]]:
        """``log_batch`` the items; when MLflow refuses them as invalid, find the bad ones by
        halving (by key first: a bad key is usually all of one metric's points) and deliver
        the rest. Returns the refused items with MLflow's reason."""
        from mlflow.entities import Metric, Param

        try:
            self.client.log_batch(run_id, metrics=[x for x in items if isinstance(x, Metric)],
                                  params=[x for x in items if isinstance(x, Param)],
                                  tags=[x for x in items if not isinstance(x, (Metric, Param))], synchronous=True)
            return []
        except Exception as exc:
            if is_transient(exc):
                raise
            reason = one_line(exc)
        groups: dict[tuple[str, str], list] = {}
        for x in items:
            groups.setdefault((type(x).__name__, x.key), []).append(x)
        if len(items) == 1:
            return [(items[0], reason)]
        if len(groups) == 1:  # one key: look for the bad values among its points
            parts = [items[: len(items) // 2], items[len(items) // 2:]]
        else:
            keys = list(groups)
            parts = [[x for k in half for x in groups[k]] for half in (keys[: len(keys) // 2], keys[len(keys) // 2:])]
        return [bad for part in parts for bad in self._log_items(run_id, part)]

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
        """An MLflow 3 logged model linked to the run (logged_models.py); idempotent on replay."""
        import os

        from .logged_models import deliver

        if not os.path.isdir(op["local_dir"]):
            raise PermanentError(f"the saved model folder {op['local_dir']} is gone")
        deliver(self.client, self.run_id(op["key"]), op["local_dir"], op["path"])

    def _end(self, op: Op) -> None:
        self.client.set_terminated(self.run_id(op["key"]), status=op["status"], end_time=op["end_ms"])


class Registry:
    """The model registry actions of ``promote``, taken at once (they answer the user now, not
    through the journal's delivery): a registered model, a version, an alias, the run's tags."""

    def __init__(self, uri: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def ensure_model(self, name: str) -> None:
        """The registered model ``name``, created if new; :class:`PermanentError` if MLflow refuses."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise PermanentError(str(exc)) from None

    def create_version(self, name: str, source: str, run_id: str, tags: dict[str, str], model_id: str | None) -> str:
        """A new version of ``name`` from ``source`` (a run's or a logged model's files); its number."""
        # MLflow's SQL registry resolves a models:/ source through the process-wide tracking URI.
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        with _use_tracking_uri(self.client.tracking_uri):
            mv = self.client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
        return str(mv.version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def tag_run(self, run_id: str, tags: dict[str, str]) -> None:
        """``tags`` on the run, written now (the one write to a run that bypasses the journal)."""
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)


def project_store(uri: str):
    """A project's default store (``locations.project_artifacts``) opened with its artifact root
    beside it, ``<root>/mlruns``, else None. MLflow's own default, ``./mlruns``, is taken from
    the working folder of whichever process creates the store (its Default experiment) or an
    experiment; through this store they are ``<root>/mlruns/<experiment id>`` from any folder.
    Creates and migrates the store if needed. Cheap once open: MLflow shares one engine per URI."""
    from ..locations import project_artifacts

    root = project_artifacts(uri)
    if root is None:
        return None
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(uri, str(root))


def open_store(uri: str) -> None:
    """Open the store at ``uri`` once: a new SQLite store is created and migrated, an old one
    verified; a project's store with its artifacts beside it (:func:`project_store`)."""
    store = project_store(uri)
    if store is None:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        return
    store.search_experiments(max_results=1)


# MLflow's codes for "the request itself is invalid": a retry cannot fix it. Only believed
# from a genuine MLflow answer (see mlflow_error_code); everything else (a refused connection,
# a locked database, a 5xx, a proxy's HTML page, a wrong password) is an outage: wait and retry.
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


def _as_ops(key: str, refused: list[tuple[object, str]]) -> list[tuple[Op, str]]:
    """Refused MLflow entities back as log ops, one per item, whole (to retry or inspect)."""
    from mlflow.entities import Metric, Param

    out = []
    for item, reason in refused:
        if isinstance(item, Metric):
            op = records.log(key, metrics=[(item.key, item.value, item.timestamp, item.step)])
        elif isinstance(item, Param):
            op = records.log(key, params={item.key: item.value})
        else:
            op = records.log(key, tags={item.key: item.value})
        out.append((op, reason))
    return out


def mlflow_error_code(exc: BaseException) -> str | None:
    """MLflow's error code when ``exc`` is a genuine MLflow API answer, else None.

    Genuine: a REST error with MLflow's JSON body (``RestException``), or an error raised
    by a store or by MLflow's own client-side checks. Not genuine: whatever answered an
    HTTP request with a body that is not MLflow's JSON (an HTML page, a proxy error, plain
    HTTP to an HTTPS port): MLflow's ``rest_utils`` turns those into an ``MlflowException``
    with a code guessed from the HTTP status (``BAD_REQUEST`` for any 400).
    """
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, RestException):
        body = getattr(exc, "json", None)
        return exc.error_code if isinstance(body, dict) and body.get("error_code") else None
    if not isinstance(exc, MlflowException):
        return None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "verify_rest_response":
            return None
        tb = tb.tb_next
    return exc.error_code


def is_transient(exc: BaseException) -> bool:
    """True unless MLflow itself answered that the request is invalid (or the record cannot
    be sent at all: ``PermanentError``). An HTML page, a proxy error, a 5xx, a timeout, a
    refused connection, a locked database, anything unknown: wait and retry."""
    if isinstance(exc, PermanentError):
        return False
    return mlflow_error_code(exc) not in _PERMANENT_CODES



def probe(uri: str, timeout: float = 3.0) -> None:
    """For an HTTP tracking server, fail fast when it does not answer.

    MLflow's own client retries a refused connection for minutes; a quick health
    check lets the flusher back off and try again instead. Credentials in the URI
    (``user:pass@``) or in ``MLFLOW_TRACKING_USERNAME/PASSWORD`` go in a header, never
    in the address asked for. Any answer below 500 counts as up: whether MLflow takes
    a record is for MLflow's own answer to say.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import base64
    import os
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    user = urllib.parse.unquote(parts.username or os.environ.get("MLFLOW_TRACKING_USERNAME", ""))
    password = urllib.parse.unquote(parts.password or os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    netloc = parts.netloc.rpartition("@")[2]
    url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            return  # it answers (an auth app may guard /health): let MLflow's call decide
        raise ConnectionError(f"tracking server {display_uri(uri)} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"tracking server {display_uri(uri)} not reachable ({reason})") from None
