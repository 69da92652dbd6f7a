"""The delivery side of ``mm.log_model`` / ``--log-model``: a saved model folder becomes an
MLflow 3 logged model, linked the way ``mlflow.<flavor>.log_model(name=...)`` links it.

Called by the journal's MLflow writer (in the delivery process, never in a kernel) with
the writer's own ``MlflowClient``: the user's global mlflow state is never touched. The
logged model is named after the artifact path (``model``), carries the run's params,
is an output of the run (the run page's "Logged models"), holds the run's latest metrics
(the ``eval=`` scores linked to the evaluation dataset) and the saved folder as its
artifacts, and ends ``READY``. Replaying the record finds the same logged model again
(tag ``mlops.model.save_id``) instead of making a second one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import naming

_MAX_LINKED_METRICS = 200


META_SUFFIX = ".mlops.json"


def meta_path(local_dir: str | Path) -> Path:
    """The sidecar of a saved model folder: ``<folder>.mlops.json`` beside it."""
    folder = Path(local_dir)
    return folder.with_name(folder.name + META_SUFFIX)


def read_meta(local_dir: str | Path) -> dict:
    """The sidecar of a saved model (``{}`` for a model saved before sidecars existed)."""
    side = meta_path(local_dir)
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return {}


def deliver(client, run_id: str, local_dir: str, path: str) -> str:
    """Create (or find again) the logged model for saved folder ``local_dir``; returns its id."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    meta = read_meta(local_dir)
    run = client.get_run(run_id)
    model = _existing(client, run, path, meta.get("save_id"))
    if model is None:
        tags = {naming.MODEL_SAVE_ID: meta["save_id"]} if meta.get("save_id") else {}
        model = client.create_logged_model(run.info.experiment_id, name=path, source_run_id=run_id, tags=tags,
                                           params=_params(run), model_type=meta.get("model_type"))
    _stamp(local_dir, model.model_id, run_id, path)
    client.log_model_artifacts(model.model_id, local_dir)
    outputs = run.outputs.model_outputs if run.outputs is not None else []
    if not any(o.model_id == model.model_id for o in outputs):
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    dataset = _eval_dataset(client, run, meta)
    _link_metrics(client, run, model.model_id, meta, dataset)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def find(client, run, path: str):
    """The newest logged model named ``path`` that ``run`` produced, or None."""
    found = [m for m in _models_of(client, run) if m.name == path]
    return max(found, key=lambda m: m.creation_timestamp or 0) if found else None


def _models_of(client, run) -> list:
    run_id = run.info.run_id
    out, token = [], None
    while True:
        page = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                           filter_string=f"source_run_id = '{run_id}'", page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


def _existing(client, run, path: str, save_id: str | None):
    if not save_id:
        return None
    for m in _models_of(client, run):
        if m.name == path and m.tags.get(naming.MODEL_SAVE_ID) == save_id:
            return m
    return None


def _params(run) -> dict[str, str]:
    return {k: str(v) for k, v in run.data.params.items()}


def _stamp(local_dir: str, model_id: str, run_id: str, path: str) -> None:
    """Write the logged model's identity into the saved MLmodel, as MLflow's own log_model does
    (the model page's "make predictions" snippet and loaders read it)."""
    from mlflow.models import Model

    mlmodel = os.path.join(local_dir, "MLmodel")
    m = Model.load(mlmodel)
    m.model_id, m.model_uuid, m.run_id, m.artifact_path = model_id, model_id, run_id, path
    m.save(mlmodel)


def _eval_dataset(client, run, meta: dict) -> tuple[str, str] | None:
    """``(name, digest)`` of the evaluation data, logged as an input of the run (context
    ``eval``) unless the run already holds data with that digest (then its name is used)."""
    evaluation = meta.get("eval") or {}
    d = evaluation.get("dataset")
    if not d:
        return None
    digest = d["digest"][: naming.MAX_DIGEST_LENGTH]
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    for di in inputs:
        if di.dataset.digest == digest:
            return di.dataset.name, digest
    from mlflow.entities import Dataset, DatasetInput, InputTag

    ds = Dataset(name=d["name"], digest=digest, source_type=naming.DATASET_SOURCE_TYPE,
                 source=json.dumps(d.get("source") or {}),
                 schema=json.dumps(d["schema"]) if d.get("schema") else None,
                 profile=json.dumps(d["profile"]) if d.get("profile") else None)
    client.log_inputs(run.info.run_id, [DatasetInput(ds, [InputTag(naming.DATASET_CONTEXT_TAG, naming.CONTEXT_EVAL)])])
    return d["name"], digest


def _link_metrics(client, run, model_id: str, meta: dict, dataset: tuple[str, str] | None) -> None:
    """The run's latest metrics, again with ``model_id`` (MLflow dedups the run's own copy);
    the ``eval=`` scores also name the evaluation dataset."""
    from mlflow.entities import Metric

    run_id = run.info.run_id
    scores = ((meta.get("eval") or {}).get("metrics")) or {}
    metrics: list = []
    now = _now_ms()
    for key, value in scores.items():
        name, digest = dataset if dataset else (None, None)
        # The cell logged the same point already (it arrives first): same timestamp, one point.
        same = [m.timestamp for m in client.get_metric_history(run_id, key) if m.step == 0 and m.value == value]
        metrics.append(Metric(key, float(value), same[-1] if same else now, 0, model_id=model_id,
                              dataset_name=name, dataset_digest=digest, run_id=run_id))
    others = [k for k in run.data.metrics if k not in scores and not k.startswith(naming.SYSTEM_PREFIX)]
    for key in others[:_MAX_LINKED_METRICS]:
        history = client.get_metric_history(run_id, key)
        if history:
            last = max(history, key=lambda m: (m.step, m.timestamp))
            metrics.append(Metric(key, last.value, last.timestamp, last.step, model_id=model_id, run_id=run_id))
    for start in range(0, len(metrics), naming.MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + naming.MAX_METRICS_PER_BATCH], synchronous=True)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
