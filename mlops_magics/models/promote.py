"""``mm.promote`` and ``mlops-magics promote``: champion/challenger on MLflow's model registry.

The run's logged model (``models:/<model id>``; ``runs:/<run id>/<path>`` for a model logged
before MLflow 3 logged models) first passes the checks of :mod:`.checks` (it beats its
dummy baseline, loads and predicts in a fresh process, has the alias holder's signature);
a failed check refuses the promotion unless ``force``. It then becomes a new version of the
registered model; the alias (``champion``) moves to it only when its metric beats the alias
holder's, or nobody holds the alias. Checks and comparison are written on the run as
``mlops.promotion*`` tags. The registry needs a database-backed store: the default
``sqlite:///mlflow.db`` is one.

Everything read (the run, its metrics and tags, its logged model, the alias holder and its
metric, versions registered before) comes through :mod:`mlops_magics.store_read`; the writes
(the registered model, its version, the alias, the run's tags) through the journal's
``mlflow_writer.Registry``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from .. import naming
from ..errors import did_you_mean, first_line
from ..journal.mlflow_writer import PermanentError, Registry
from ..store_read import NoRun, ReadError, Store, own_metrics
from . import checks as gate
from .save import ModelError, model_paths


class PromotionRefused(ModelError):
    """A check failed: the model was not registered (``force=True`` / ``--force`` overrides)."""

    def __init__(self, message: str, checks: list) -> None:
        super().__init__(message)
        self.checks = checks


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
    checks: list = field(default_factory=list)  # checks.Check, in order: baseline, loads, signature
    forced: bool = False  # a check failed and force=True overrode it

    def __repr__(self) -> str:
        verdict = "promoted" if self.promoted else "kept"
        forced = f" (forced past failed checks: {gate.summary(self.checks)})" if self.forced else ""
        return f"{verdict}{forced}: {self.reason}"

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.promoted else "#ef6c00"
        return (f'<div style="font-family:var(--jp-code-font-family,monospace);font-size:12px;'
                f'border-left:3px solid {color};padding:4px 8px">{html.escape(repr(self))}</div>')


def promote(run_id: str, model: str, *, metric: str = "f1", alias: str = "champion",
            greater_is_better: bool = True, force: bool = False, tracking_uri: str | None = None) -> Promotion:
    """Register ``run_id``'s model as a new version of ``model``; move ``alias`` to it only if
    its ``metric`` beats the alias holder's (``greater_is_better=False`` for losses).

    Before that the model must pass three checks: its ``metric`` beats ``baseline.<metric>``
    (logged by ``mm.log_model(model, eval=(X, y))`` or ``--eval``), it loads and predicts on
    its input example in a fresh process, and its signature matches the alias holder's. A
    failed check raises :class:`PromotionRefused` (one line, the reason) and registers
    nothing; ``force=True`` promotes anyway and records that it did. Each check is tagged
    on the run (``mlops.promotion.check.<name>=passed|failed: ...|skipped: ...``).

    Returns a :class:`Promotion`; the comparison is also tagged on the run
    (``mlops.promotion=promoted|kept|refused`` with both values). A run without a logged
    model, or without the metric, is a :class:`ModelError`.
    """
    store = _store(tracking_uri)
    run = _get_run(store, run_id)
    value = _metric(run, metric)
    source, model_id, location = _model_source(store, run)
    holder = store.alias_holder(model, alias)
    checks = _checks(store, run, metric, value, greater_is_better, source, location, holder, model, alias)
    registry = Registry(store.uri)
    failed = [c for c in checks if c.failed]
    if failed and not force:
        why = f"refused: {gate.summary(checks)}; `promote --force` (force=True) overrides"
        registry.tag_run(run_id, _refusal_tags(model, alias, metric, value, checks, why))
        raise PromotionRefused(why, checks)
    version = _register(registry, store, model, run_id, source, model_id, metric, value)
    holder_value = _metric_or_none(store, holder.run_id, metric) if holder is not None else None
    promoted, why = _verdict(value, holder, holder_value, version, greater_is_better)
    if promoted:
        registry.set_alias(model, alias, version)
    sign = ">" if greater_is_better else "<"
    reason = _reason(model, version, alias, metric, value, holder, holder_value, promoted, why, sign)
    result = Promotion(run_id, model, version, alias, metric, value, greater_is_better, promoted,
                       str(holder.version) if holder is not None else None, holder.run_id if holder is not None else None,
                       holder_value, reason, checks=checks, forced=bool(failed))
    registry.tag_run(run_id, _result_tags(result))
    return result


def _store(tracking_uri: str | None) -> Store:
    """The store's reads; a SQLite store that does not exist is a :class:`ModelError`."""
    try:
        return Store(tracking_uri, hint="set MLFLOW_TRACKING_URI or run inside the project that holds mlflow.db")
    except ReadError as exc:
        raise ModelError(str(exc)) from None


def _checks(store: Store, run, metric, value, greater_is_better, source, location, holder, model, alias) -> list:
    """Baseline, fresh-process load, signature against the alias holder."""
    uri = store.uri
    held = f"'{alias}' (version {holder.version} of '{model}')" if holder is not None else None
    theirs = None
    if holder is not None:
        try:
            where = store.model_version_uri(model, holder.version)
            theirs = gate.signature_of(where, uri) if where else None
        except Exception:
            theirs = None
    return [gate.baseline(run, metric, value, greater_is_better),
            gate.loads(source, uri),
            gate.signature(gate.signature_of(location, uri), theirs, held)]


def _check_tags(checks: list) -> dict[str, str]:
    return {naming.promotion_check(c.name): naming.clip(c.tag_value(), naming.MAX_TAG_VAL_LENGTH) for c in checks}


def _refusal_tags(model, alias, metric, value, checks, why) -> dict[str, str]:
    return {naming.PROMOTION: naming.PROMOTION_REFUSED, naming.PROMOTION_MODEL: model,
            naming.PROMOTION_ALIAS: alias, naming.PROMOTION_METRIC: metric, naming.PROMOTION_VALUE: repr(value),
            naming.PROMOTION_REASON: naming.clip(why, naming.MAX_TAG_VAL_LENGTH), **_check_tags(checks)}


def _get_run(store: Store, run_id: str):
    try:
        return store.get_run(run_id)
    except NoRun:
        raise ModelError(f"no run {run_id!r} at {store.shown}") from None
    except ReadError as exc:
        raise ModelError(f"MLflow could not read run {run_id}: {first_line(exc)}") from None


def _metric(run, metric: str) -> float:
    value = _finite(run.metrics.get(metric))
    if value is None:
        own = own_metrics(run.metrics)
        raise ModelError(f"run {run.run_id} has no metric {metric!r}.{did_you_mean(metric, own)}"
                         f" Its metrics: {', '.join(own) or 'none'}; choose one with --metric")
    return value


def _metric_or_none(store: Store, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        return _finite(store.get_run(run_id).metrics.get(metric))
    except Exception:
        return None


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _model_source(store: Store, run) -> tuple[str, str | None, str]:
    """``(source URI, model id or None, artifact location)`` of the run's model: the newest
    logged model named in ``mlops.model`` (else ``model``); for a run from before logged
    models, the run's artifacts at that path when they hold an MLmodel."""
    candidates = model_paths(run.tags) or [naming.ARTIFACT_MODEL]
    for path in reversed(candidates):
        logged = _or_none(store.logged_model, run, path)
        if logged is not None:
            return f"models:/{logged.model_id}", logged.model_id, logged.artifact_location
        names = {p.rsplit("/", 1)[-1] for p in _or_none(store.list_artifacts, run.run_id, path) or []}
        if "MLmodel" in names:
            uri = f"runs:/{run.run_id}/{path}"
            return uri, None, uri
    raise ModelError(f"run {run.run_id} has no logged model: log one with %%track --log-model VAR "
                     "or mm.log_model(model) (and let MLflow take it: mm.flush())")


def _or_none(read, *args):
    """``read(*args)``, or None when the store cannot answer (a model found no way is no model)."""
    try:
        return read(*args)
    except Exception:
        return None


def _register(registry: Registry, store: Store, model: str, run_id: str, source: str, model_id: str | None, metric: str,
              value: float) -> str:
    """The model version for this run (registered now, or the one an earlier promote made)."""
    try:
        registry.ensure_model(model)
    except PermanentError as exc:
        raise ModelError(f"MLflow could not create registered model {model!r}: {first_line(exc)}") from None
    for mv in store.model_versions(model, run_id):
        if mv.source == source:
            return mv.version
    return registry.create_version(model, source, run_id, {metric: repr(value)}, model_id)


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


def _result_tags(p: Promotion) -> dict[str, str]:
    """The comparison, as the run's tags."""
    tags = {naming.PROMOTION: naming.PROMOTION_PROMOTED if p.promoted else naming.PROMOTION_KEPT,
            naming.PROMOTION_MODEL: p.model, naming.PROMOTION_VERSION: p.version, naming.PROMOTION_ALIAS: p.alias,
            naming.PROMOTION_METRIC: p.metric, naming.PROMOTION_VALUE: repr(p.value),
            naming.PROMOTION_HOLDER_VALUE: "none" if p.holder_value is None else repr(p.holder_value),
            naming.PROMOTION_HOLDER_VERSION: p.holder_version or "none",
            naming.PROMOTION_REASON: naming.clip(p.reason, naming.MAX_TAG_VAL_LENGTH), **_check_tags(p.checks)}
    if p.forced:
        tags[naming.PROMOTION_FORCED] = naming.clip(f"true: {gate.summary(p.checks)}", naming.MAX_TAG_VAL_LENGTH)
    return tags
