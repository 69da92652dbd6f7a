"""``mm.promote`` and ``mlops-magics promote``: champion/challenger on MLflow's model registry.

The run's model becomes a new version of the registered model; the alias (``champion``)
moves to it only when its metric beats the alias holder's, or nobody holds the alias.
The comparison is written on the run as ``mlops.promotion*`` tags. The registry needs a
database-backed store: the default ``sqlite:///mlflow.db`` is one.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from .. import locations, naming
from ..errors import did_you_mean, first_line
from .save import ModelError, model_paths


@dataclass
class Promotion:
    """How a promotion went: ``promoted`` says whether the alias moved to ``version``."""

    run_id: str
    model: str
    version: str
    alias: str
    metric: str
    value: float
    greater_is_better: bool
    promoted: bool
    holder_version: str | None = None
    holder_run_id: str | None = None
    holder_value: float | None = None
    reason: str = ""

    def __repr__(self) -> str:
        verdict = "promoted" if self.promoted else "kept"
        return f"{verdict}: {self.reason}"

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.promoted else "#ef6c00"
        return (f'<div style="font-family:var(--jp-code-font-family,monospace);font-size:12px;'
                f'border-left:3px solid {color};padding:4px 8px">{html.escape(repr(self))}</div>')


def promote(run_id: str, model: str, *, metric: str = "f1", alias: str = "champion",
            greater_is_better: bool = True, tracking_uri: str | None = None) -> Promotion:
    """Register ``run_id``'s model as a new version of ``model``; move ``alias`` to it only if
    its ``metric`` beats the alias holder's (``greater_is_better=False`` for losses).

    Returns a :class:`Promotion`; the comparison is also tagged on the run
    (``mlops.promotion=promoted|kept`` with both values). A run without a logged
    model, or without the metric, is a :class:`ModelError`.
    """
    uri = locations.tracking_uri(tracking_uri)
    client = locations.reading_client(uri, ModelError, registry=True)
    run = _get_run(client, run_id, uri)
    value = _metric(run, metric)
    path = _model_path(client, run)
    version = _register(client, model, run_id, path, metric, value)
    holder = _holder(client, model, alias)
    holder_value = _metric_or_none(client, holder.run_id, metric) if holder is not None else None
    promoted, why = _verdict(value, holder, holder_value, version, greater_is_better)
    if promoted:
        client.set_registered_model_alias(model, alias, version)
    sign = ">" if greater_is_better else "<"
    reason = _reason(model, version, alias, metric, value, holder, holder_value, promoted, why, sign)
    result = Promotion(run_id, model, version, alias, metric, value, greater_is_better, promoted,
                       str(holder.version) if holder is not None else None, holder.run_id if holder is not None else None,
                       holder_value, reason)
    _record(client, result)
    return result


def _get_run(client, run_id: str, uri: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ModelError(f"no run {run_id!r} at {locations.display_uri(uri)}") from None
        raise ModelError(f"MLflow could not read run {run_id}: {first_line(exc)}") from None


def _metric(run, metric: str) -> float:
    value = run.data.metrics.get(metric)
    if value is None or not math.isfinite(value):
        own = sorted(k for k in run.data.metrics if not k.startswith("system."))
        raise ModelError(f"run {run.info.run_id} has no metric {metric!r}.{did_you_mean(metric, own)}"
                         f" Its metrics: {', '.join(own) or 'none'}; choose one with --metric")
    return float(value)


def _metric_or_none(client, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.metrics.get(metric)
    except Exception:
        return None
    return float(value) if value is not None and math.isfinite(value) else None


def _model_path(client, run) -> str:
    """The logged model's artifact path (``mlops.model``, else ``model``), checked to hold an MLmodel."""
    candidates = model_paths(run.data.tags) or [naming.ARTIFACT_MODEL]
    for path in reversed(candidates):
        try:
            names = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run.info.run_id, path)}
        except Exception:
            names = set()
        if "MLmodel" in names:
            return path
    raise ModelError(f"run {run.info.run_id} has no logged model: log one with %%track --log-model VAR "
                     "or mm.log_model(model) (and let MLflow take it: mm.flush())")


def _register(client, model: str, run_id: str, path: str, metric: str, value: float) -> str:
    """The model version for this run (registered now, or the one an earlier promote made)."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise ModelError(f"MLflow could not create registered model {model!r}: {first_line(exc)}") from None
    source = f"runs:/{run_id}/{path}"
    for mv in client.search_model_versions(f"name = '{_quote(model)}' and run_id = '{run_id}'"):
        if mv.source == source:
            return str(mv.version)
    mv = client.create_model_version(model, source, run_id=run_id, tags={metric: repr(value)})
    return str(mv.version)


def _holder(client, model: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return None


def _verdict(value, holder, holder_value, version, greater_is_better) -> tuple[bool, str]:
    if holder is None:
        return True, "nobody held the alias"
    if str(holder.version) == version:
        return False, "it holds the alias already"
    if holder_value is None:
        return True, "the holder has no value to compare"
    beats = value > holder_value if greater_is_better else value < holder_value
    return beats, "better" if beats else "not better"


def _reason(model, version, alias, metric, value, holder, holder_value, promoted, why, sign) -> str:
    mine = f"{metric}={value:.6g}"
    if holder is None:
        return f"{mine}; nobody held '{alias}': version {version} of '{model}' is now '{alias}'"
    theirs = "no value" if holder_value is None else f"{holder_value:.6g}"
    held = f"'{alias}' (version {holder.version}, {metric} {theirs})"
    if why == "it holds the alias already":
        return f"{mine}; version {version} of '{model}' is '{alias}' already"
    if promoted:
        compare = f"{value:.6g} {sign} {theirs}" if holder_value is not None else "the holder has no value"
        return f"{mine} beats {held}: {compare}; version {version} of '{model}' is now '{alias}'"
    return (f"{mine} does not beat {held}; version {version} of '{model}' registered, "
            f"'{alias}' stays on version {holder.version}")


def _record(client, p: Promotion) -> None:
    """The comparison, on the run (this is a registry action: no journal, the answer is needed now)."""
    from mlflow.entities import RunTag

    tags = {naming.PROMOTION: naming.PROMOTION_PROMOTED if p.promoted else naming.PROMOTION_KEPT,
            naming.PROMOTION_MODEL: p.model, naming.PROMOTION_VERSION: p.version, naming.PROMOTION_ALIAS: p.alias,
            naming.PROMOTION_METRIC: p.metric, naming.PROMOTION_VALUE: repr(p.value),
            naming.PROMOTION_HOLDER_VALUE: "none" if p.holder_value is None else repr(p.holder_value),
            naming.PROMOTION_HOLDER_VERSION: p.holder_version or "none",
            naming.PROMOTION_REASON: naming.clip(p.reason, naming.MAX_TAG_VAL_LENGTH)}
    client.log_batch(p.run_id, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
