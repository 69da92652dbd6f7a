"""``mm.log_model`` and ``%%track --log-model VAR``: a fitted scikit-learn model, saved with its
signature and input example, delivered as an MLflow 3 logged model named ``model``.

The model is saved synchronously in the cell (so refitting it in the next cell cannot
change what was logged) into ``<journal folder>/models/<run key>/<path>``, with a sidecar
``<path>.mlops.json`` (which save it is, classifier or regressor, the ``eval=`` scores and
the evaluation data's fingerprint). A journal record hands that folder to the delivery
process, which creates the logged model linked to the run, its metrics and datasets
(:mod:`mlops_magics.journal.logged_models`), so ``models:/<model id>`` and ``runs:/<run id>/model`` can be registered
and served. Saving in MLflow's format is the one place a cell imports mlflow, and only
when a model is logged.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import _current, locations, naming
from ..errors import MlopsError, one_line
from ..journal.logged_models import META_SUFFIX, meta_path, read_meta  # noqa: F401  (the sidecar's format)

EXAMPLE_ROWS = 5
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."


class ModelError(MlopsError):
    """A model that cannot be logged or promoted."""


@dataclass
class LoggedModel:
    """A model saved for a run: ``runs:/<run id>/<path>`` once MLflow has the run."""

    path: str
    local_dir: str
    signature: str | None
    flavor: str
    run_key: str = ""
    evaluation: object = None  # an evaluate.Evaluation when eval=(X, y) was given

    def __repr__(self) -> str:
        sig = f"signature {self.signature}" if self.signature else "no signature (give input_example=...)"
        scored = f"; {self.evaluation!r}" if self.evaluation is not None else ""
        return f"{self.flavor} model logged as '{self.path}' in run key {self.run_key[:8]}; {sig}{scored}"


def model_dir(key: str, path: str) -> Path:
    """Where a run's model is saved before upload."""
    return locations.home() / "models" / key / path


def artifact_path(name: str | None) -> str:
    """The artifact path for ``name`` (default ``model``): one folder name."""
    if name is None:
        return naming.ARTIFACT_MODEL
    text = str(name).strip()
    if not text or any(c not in _PATH_CHARS for c in text) or text in (".", ".."):
        raise ModelError(f"model name {name!r}: use letters, digits, '-', '_' or '.' (it is a folder in the run)")
    return text


def check_model(obj: object, what: str = "the model") -> None:
    """A fitted scikit-learn estimator, or a one-line :class:`ModelError`."""
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:
        raise ModelError("logging a model needs scikit-learn: pip install scikit-learn") from None
    kind = type(obj).__name__
    if not isinstance(obj, BaseEstimator):
        raise ModelError(f"{what} is a {kind}, not a scikit-learn estimator: log_model takes fitted "
                         "scikit-learn models (an estimator or a Pipeline)")
    try:
        check_is_fitted(obj)
    except NotFittedError:
        raise ModelError(f"{what} ({kind}) is not fitted: call .fit(X, y) before logging it") from None


def save(obj: object, key: str, path: str, input_example: object = None, *, evaluation=None,
         eval_data: dict | None = None) -> LoggedModel:
    """Save fitted ``obj`` for run ``key`` at artifact ``path``, with signature and input example.

    ``evaluation`` (an :class:`~.evaluate.Evaluation`) and ``eval_data`` (the evaluation data as
    an MLflow dataset dict) go into the sidecar, for the logged model's metrics and datasets.
    """
    import mlflow.sklearn  # noqa: F401  (the flavour _save_sklearn uses)
    from mlflow.models import infer_signature

    example = _head(input_example)
    signature = None
    if example is not None:
        try:
            output = obj.predict(example) if hasattr(obj, "predict") else obj.transform(example)
            signature = infer_signature(example, output)
        except Exception as exc:
            raise ModelError(f"the input example does not fit the model: {one_line(exc)}") from None
    target = model_dir(key, path)
    if target.exists():  # logged again in the same run: the newest wins
        shutil.rmtree(target)
    locations.private_dir(target.parent)
    _save_sklearn(obj, str(target), signature=signature, input_example=example, pip_requirements=_requirements())
    _write_meta(obj, target, evaluation, eval_data)
    locations.private_tree(target)  # under the journal home: owner only, as everything there
    return LoggedModel(path=path, local_dir=str(target), signature=_describe(signature), flavor="sklearn",
                       run_key=key, evaluation=evaluation)


def _write_meta(obj: object, target: Path, evaluation, eval_data: dict | None) -> None:
    from sklearn.base import is_classifier, is_regressor

    kind = "classifier" if is_classifier(obj) else "regressor" if is_regressor(obj) else None
    meta = {"save_id": uuid.uuid4().hex, "flavor": "sklearn", "model_type": kind, "eval": None}
    if evaluation is not None:
        meta["eval"] = {"metrics": evaluation.metrics(), "metric": evaluation.metric, "rows": evaluation.rows,
                        "dataset": eval_data}
    side = meta_path(target)
    side.write_text(json.dumps(meta))
    locations.private_file(side)


def score(obj: object, eval: object, name: str | None = None):
    """``eval=(X, y)``: the model's and the dummy baseline's scores, and X as an MLflow dataset
    dict (named ``name``, else ``eval``) so the logged model's metrics name the data they were
    measured on. Pure scikit-learn and our fingerprint: no mlflow."""
    from ..fingerprints import fingerprint
    from ..journal.datasets import data_record, mlflow_dataset
    from .evaluate import evaluate, split_eval

    X, y = split_eval(eval)
    evaluation = evaluate(obj, X, y)
    try:
        fp = fingerprint(X)
    except Exception:  # data we cannot fingerprint: the scores still count, without a dataset link
        return evaluation, None
    source = {"variable": name} if name else {"eval": True}
    return evaluation, mlflow_dataset(data_record(name or "eval", fp, naming.CONTEXT_EVAL, source))


def log_scores(run, evaluation) -> None:
    """``<metric>`` and ``baseline.<metric>`` on the run, at step 0 (where a cell's metrics are)."""
    for k, v in evaluation.metrics().items():
        run.log_metric(k, v, 0)


def _save_sklearn(obj: object, target: str, **kwargs) -> None:
    """MLflow's safe format (skops) refuses types it cannot vouch for, such as the node storage of
    every tree model. This model was built in this very process, so its own types are trusted;
    what skops cannot store at all (classes defined in a notebook) goes through cloudpickle."""
    import mlflow.sklearn  # noqa: F401  (the flavour _save_sklearn uses)

    try:
        mlflow.sklearn.save_model(obj, target, **kwargs)
        return
    except Exception as exc:
        first = exc
        shutil.rmtree(target, ignore_errors=True)
    try:
        import skops.io

        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(obj))
        mlflow.sklearn.save_model(obj, target, skops_trusted_types=trusted, **kwargs)
        return
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
    try:
        mlflow.sklearn.save_model(obj, target, serialization_format="cloudpickle", **kwargs)
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
        raise ModelError(f"MLflow could not save the model: {one_line(first)}") from None


def attach(run, logged: LoggedModel) -> None:
    """Name the model on the run (tag ``mlops.model``, every model the run holds); the tracked
    cell uploads it when it ends. In a job, the job's own run keeps the list across cells."""
    job = _job_run(run)
    held = model_paths(job.tags) if job is not None and job is not run else []
    paths = [p for p in [*held, *model_paths(run.tags)] if p != logged.path]
    value = ",".join(dict.fromkeys([*paths, logged.path]))
    run.set_tag(naming.MODEL, value)
    if job is not None:
        job.set_tag(naming.MODEL, value)


def saved_since(key: str, paths: list[str], since_s: float) -> list[str]:
    """Those of ``paths`` saved (for run ``key``) at or after ``since_s``: what a cell must upload."""
    out = []
    for path in paths:
        mlmodel = model_dir(key, path) / "MLmodel"
        if mlmodel.exists() and mlmodel.stat().st_mtime >= since_s - 1.0:
            out.append(path)
    return out


def _job_run(run):
    """The job's own active run when ``run`` records into a notebook job, else None."""
    session = _current.session()
    if session is None or session.job is None or session.job.key != run.key:
        return None
    return session.job.run


def model_paths(tags: dict[str, str]) -> list[str]:
    """The artifact paths a run's ``mlops.model`` tag names."""
    return [p for p in tags.get(naming.MODEL, "").split(",") if p]


def log_model(obj: object, name: str | None = None, *, eval: object = None,
              input_example: object = None) -> LoggedModel:
    """Log fitted scikit-learn model ``obj`` in the run being tracked (a ``%%track`` cell or a job).

    It becomes an MLflow 3 logged model named ``name`` (default ``model``), linked to the
    run, its metrics and datasets, saved with MLflow's sklearn flavor and the signature
    inferred from ``input_example`` (its first rows are kept as the example), so
    ``models:/<model id>`` or ``runs:/<run id>/model`` can be registered with ``mm.promote``
    and served.

    ``eval=(X, y)``: held-out data. The model and scikit-learn's dummy baseline
    (most frequent class, or the mean) are scored on it and both logged: ``f1`` and
    ``baseline.f1`` for a classifier (weighted F1 beyond two 0/1 classes), ``r2`` and
    ``baseline.r2`` for a regressor. ``promote`` refuses a model that does not beat its
    baseline. Without ``input_example``, the first rows of ``X`` are the example.
    """
    run = _current.require_run("mm.log_model", to="log the model into")
    check_model(obj)
    path = artifact_path(name)
    evaluation = eval_data = None
    if eval is not None:
        evaluation, eval_data = score(obj, eval)
        if input_example is None:
            input_example = eval[0]
    if input_example is None:
        import warnings

        warnings.warn("no input_example: the model is logged without a signature; pass input_example=X "
                      "(a few rows of the training data)", stacklevel=2)
    logged = save(obj, run.key, path, input_example, evaluation=evaluation, eval_data=eval_data)
    if evaluation is not None:
        log_scores(run, evaluation)
    attach(run, logged)
    _submit_if_job_run(run, logged)
    return logged


def example_from(model: object, candidates: list[object]) -> object | None:
    """The first rows of the first candidate (frame or 2-d array) the model could predict on."""
    names = getattr(model, "feature_names_in_", None)
    width = getattr(model, "n_features_in_", None)
    for obj in candidates:
        columns = getattr(obj, "columns", None)
        if names is not None and columns is not None and hasattr(obj, "loc"):
            if set(names) <= set(columns):
                return obj[list(names)].head(EXAMPLE_ROWS)
        elif names is None and width is not None and getattr(obj, "ndim", 0) == 2 and obj.shape[1] == width:
            data = obj.to_numpy() if hasattr(obj, "to_numpy") else obj
            return data[:EXAMPLE_ROWS]
    return None


def _head(example: object) -> object:
    if example is None:
        return None
    if hasattr(example, "head") and hasattr(example, "columns"):
        return example.head(EXAMPLE_ROWS)
    if hasattr(example, "shape") and hasattr(example, "__getitem__") and len(getattr(example, "shape", ())) >= 1:
        return example[:EXAMPLE_ROWS]
    return example


def _describe(signature) -> str | None:
    if signature is None:
        return None
    return naming.clip(f"{signature.inputs!r} -> {signature.outputs!r}", 300)


def _submit_if_job_run(run, logged: LoggedModel) -> None:
    """In a job's untracked cell the run is the job's own: upload now (a tracked cell does it when it ends)."""
    if _job_run(run) is not run:
        return
    from ..journal import records

    session = _current.session()

    session.delivery(locations.tracking_uri()).submit([
        records.log(run.key, tags={naming.MODEL: run.tags[naming.MODEL]}),
        records.model(run.key, logged.local_dir, logged.path),
    ])


def _requirements() -> list[str]:
    """Pinned from what is installed: MLflow's own inference re-imports the model in a
    subprocess and takes seconds."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "skops", "cloudpickle"):
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    return out
