"""``mm.compare_models``: champion against challenger on the same rows (shadow evaluation).

Both models predict on ``X``. Without labels: how much they agree (classifiers: share of
equal predictions; regressors: correlation and mean absolute difference). With labels:
each model's metrics and the difference ``b - a`` with a paired bootstrap confidence
interval (the same resampled rows for both models). Inside a tracked cell or a job the
result is logged: ``compare.agreement``, ``compare.<metric>.a|b|delta|ci_low|ci_high``.

Models are fitted objects, ``runs:/<run id>/<path>`` or ``models:/<name>@<alias>`` (also
``models:/<name>/<version>``), loaded with MLflow in this call only.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import _current, locations, naming
from ..errors import MlopsError, first_line
from . import scoring

N_BOOT = 1000
CLASSIFICATION, REGRESSION = "classification", "regression"
METRICS = {CLASSIFICATION: ("accuracy", "f1"), REGRESSION: ("r2", "mae", "rmse")}
LOWER_IS_BETTER = {"mae", "rmse"}
COLUMNS = ["metric", "a", "b", "delta", "ci_low", "ci_high"]


class CompareError(MlopsError):
    """Models or data ``compare_models`` cannot take."""


@dataclass
class Comparison:
    """What ``mm.compare_models`` found: ``b`` against ``a``.

    ``.agreement`` (classifiers), ``.correlation`` and ``.mean_abs_diff`` (regressors);
    ``.table`` (metric, a, b, delta, ci_low, ci_high), empty without labels; ``delta`` is
    ``b - a`` (for mae and rmse lower is better); ``.logged``: whether it went into a run.
    """

    a: str
    b: str
    task: str
    rows: int
    table: pd.DataFrame
    agreement: float | None = None
    correlation: float | None = None
    mean_abs_diff: float | None = None
    confidence: float = 0.95
    n_boot: int = N_BOOT
    logged: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        if self.task == CLASSIFICATION:
            agree = f"agreement {self.agreement:.1%}"
        else:
            corr = "n/a" if self.correlation is None else f"{self.correlation:.4g}"
            agree = f"correlation {corr}, mean |b - a| {self.mean_abs_diff:.4g}"
        return f"b vs a on {self.rows} rows ({self.task}): {agree}"

    def _shown(self) -> pd.DataFrame:
        level = f"{self.confidence:.0%} CI"
        return pd.DataFrame({"metric": self.table["metric"], "a": self.table["a"].map(_g),
                             "b": self.table["b"].map(_g), "delta (b - a)": self.table["delta"].map(_signed),
                             level: [f"[{_signed(lo)}, {_signed(hi)}]"
                                     for lo, hi in zip(self.table["ci_low"], self.table["ci_high"])]})

    def _footer(self) -> list[str]:
        lines = [f"a: {self.a}", f"b: {self.b}"]
        if self.table.empty:
            lines.append("no labels: agreement only (give y for metric deltas)")
        lines += self.notes
        lines.append("logged to the run" if self.logged else "not logged: no tracked run")
        return lines

    def __repr__(self) -> str:
        body = [self._shown().to_string(index=False)] if not self.table.empty else []
        return "\n".join([self.headline, *body, *self._footer()])

    def _repr_html_(self) -> str:
        parts = [f"<div><b>{html.escape(self.headline)}</b></div>"]
        if not self.table.empty:
            shown = self._shown()
            head = "".join(f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in shown.columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                           for row in shown.itertuples(index=False))
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts += [f"<div style='color:#666;font-size:smaller'>{html.escape(x)}</div>" for x in self._footer()]
        return ("<div class='mlops-magics-compare' style='border-left:3px solid #4c78a8;padding:4px 8px'>"
                + "".join(parts) + "</div>")

    def to_json(self) -> str:
        rows = [{k: (_finite(v) if k != "metric" else v) for k, v in r.items()}
                for r in self.table.to_dict(orient="records")]
        return json.dumps({"a": self.a, "b": self.b, "task": self.task, "rows": self.rows,
                           "agreement": self.agreement, "correlation": self.correlation,
                           "mean_abs_diff": self.mean_abs_diff, "confidence": self.confidence,
                           "n_boot": self.n_boot, "metrics": rows}, allow_nan=False)


def compare_models(a, b, X, y=None, *, task: str | None = None, n_boot: int = N_BOOT, confidence: float = 0.95,
                   random_state: int | None = 0, tracking_uri: str | None = None) -> Comparison:
    """Compare model ``b`` (challenger) with ``a`` (champion) on rows ``X`` (labels ``y`` optional).

    ``task``: ``classification`` or ``regression`` (default: from the models, else from
    their predictions). The confidence interval of each delta comes from ``n_boot`` paired
    bootstrap resamples of the rows (``random_state`` seeds them). Logged into the run of
    the tracked cell (or job) now running, if any.
    """
    if not 0 < confidence < 1:
        raise CompareError("confidence must be between 0 and 1 (0.95 for a 95% interval)")
    if int(n_boot) < 1:
        raise CompareError("n_boot must be at least 1")
    model_a, name_a = load_model(a, "a", tracking_uri)
    model_b, name_b = load_model(b, "b", tracking_uri)
    pred_a, pred_b = _predict(model_a, X, "a"), _predict(model_b, X, "b")
    kind = _task(task, model_a, model_b, pred_a, pred_b)
    result = Comparison(name_a, name_b, kind, len(pred_a), pd.DataFrame(columns=COLUMNS),
                        confidence=confidence, n_boot=int(n_boot))
    if kind == CLASSIFICATION:
        result.agreement = float(np.mean(pred_a == pred_b))
    else:
        result.mean_abs_diff = float(np.mean(np.abs(pred_b.astype(float) - pred_a.astype(float))))
        if np.std(pred_a) > 0 and np.std(pred_b) > 0:
            result.correlation = float(np.corrcoef(pred_a.astype(float), pred_b.astype(float))[0, 1])
        else:
            result.notes.append("a constant prediction: no correlation")
    if y is not None:
        truth = scoring.as_array(y, "y").ravel()
        if len(truth) != len(pred_a):
            raise CompareError(f"y has {len(truth)} values for {len(pred_a)} rows of X")
        result.table = metric_table(kind, truth, pred_a, pred_b, n_boot=int(n_boot), confidence=confidence,
                                    random_state=random_state)
    _log(result)
    return result


# -- models ----------------------------------------------------------------------------------------

def load_model(ref, which: str = "a", tracking_uri: str | None = None):
    """``(model, description)``: a fitted object as is, a ``runs:/`` or ``models:/`` URI loaded."""
    if not isinstance(ref, str):
        if not hasattr(ref, "predict"):
            raise CompareError(f"model {which} is a {type(ref).__name__}, with no predict: give a fitted "
                               "model, 'runs:/<run id>/<path>' or 'models:/<name>@<alias>'")
        return ref, type(ref).__name__
    if not ref.startswith(("runs:/", "models:/")):
        raise CompareError(f"model {which} {ref!r} is not a model URI: give 'runs:/<run id>/<path>' "
                           "or 'models:/<name>@<alias>' (or the fitted model itself)")
    import tempfile

    import mlflow.artifacts
    from mlflow.models import Model

    uri = locations.tracking_uri(tracking_uri)
    locations.reading_client(uri, CompareError, registry=True)  # a missing SQLite store is an error, not a new one
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=folder, tracking_uri=uri,
                                                        registry_uri=uri)
            flavors = Model.load(local).flavors
            if "sklearn" in flavors:
                import mlflow.sklearn

                return mlflow.sklearn.load_model(local), ref
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(local), ref
        except Exception as exc:
            raise CompareError(f"could not load model {which} from {ref}: {first_line(exc)}") from None


def _predict(model, X, which: str) -> np.ndarray:
    try:
        out = model.predict(X)
    except Exception as exc:
        raise CompareError(f"model {which} could not predict on X: {first_line(exc)}") from None
    out = out.to_numpy() if hasattr(out, "to_numpy") else np.asarray(out)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1:
        raise CompareError(f"model {which} predicts {out.shape[1:]} values per row: compare_models takes "
                           "one prediction per row")
    return out


def _task(task, model_a, model_b, pred_a, pred_b) -> str:
    if task is not None:
        if task not in METRICS:
            raise CompareError(f"task {task!r}: use 'classification' or 'regression'")
        return task
    from sklearn.base import is_classifier, is_regressor

    kinds = set()
    for model, pred in ((model_a, pred_a), (model_b, pred_b)):
        if is_classifier(model):
            kinds.add(CLASSIFICATION)
        elif is_regressor(model):
            kinds.add(REGRESSION)
        else:
            kinds.add(REGRESSION if pred.dtype.kind in "fc" else CLASSIFICATION)
    if len(kinds) > 1:
        raise CompareError("one model is a classifier and the other a regressor: give task='classification' "
                           "or task='regression' if they really answer the same question")
    return kinds.pop()


# -- metrics: weighted sums, so a bootstrap resample is one matrix product ----------------------------

def metric_table(task: str, y, pred_a, pred_b, *, n_boot: int = N_BOOT, confidence: float = 0.95,
                 random_state: int | None = 0) -> pd.DataFrame:
    """Each metric for a and b, ``b - a`` and its paired bootstrap percentile interval.

    Resample ``i`` takes rows ``rng.integers(0, n, n)`` with ``rng = numpy.random.default_rng(random_state)``.
    """
    n = len(y)
    if n == 0:
        raise CompareError("no rows to compare on")
    names = METRICS[task]
    if task == CLASSIFICATION:
        classes = np.unique(np.concatenate([y, pred_a, pred_b]).astype(str) if _mixed(y, pred_a, pred_b)
                            else np.concatenate([y, pred_a, pred_b]))
        parts = [_classification_stats(m, y, p, classes) for m in names for p in (pred_a, pred_b)]
        values = [lambda s, m=m, c=classes: _classification_value(m, s, n, len(c)) for m in names]
    else:
        y, pred_a, pred_b = (v.astype(float) for v in (y, pred_a, pred_b))
        parts = [_regression_stats(m, y, p) for m in names for p in (pred_a, pred_b)]
        values = [lambda s, m=m: _regression_value(m, s, n) for m in names]
    widths = [p.shape[1] for p in parts]
    stats = np.concatenate(parts, axis=1)
    edges = np.cumsum([0, *widths])

    def evaluate(sums: np.ndarray) -> np.ndarray:  # sums: (k,) or (B, k) -> (metrics, 2[, B])
        out = []
        for i, value in enumerate(values):
            ja, jb = 2 * i, 2 * i + 1
            out.append((value(sums[..., edges[ja]:edges[ja + 1]]), value(sums[..., edges[jb]:edges[jb + 1]])))
        return np.asarray(out, dtype=float)

    point = evaluate(stats.sum(axis=0))
    rng = np.random.default_rng(random_state)
    boot = np.empty((n_boot, stats.shape[1]))
    for i in range(n_boot):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        boot[i] = weights @ stats
    resampled = evaluate(boot)  # (metrics, 2, B)
    deltas = resampled[:, 1, :] - resampled[:, 0, :]
    tail = (1 - confidence) / 2 * 100
    rows = []
    for i, metric in enumerate(names):
        finite = deltas[i][np.isfinite(deltas[i])]
        low, high = (np.percentile(finite, [tail, 100 - tail]) if finite.size else (math.nan, math.nan))
        rows.append({"metric": metric, "a": point[i, 0], "b": point[i, 1], "delta": point[i, 1] - point[i, 0],
                     "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _mixed(*arrays) -> bool:
    return len({a.dtype.kind for a in arrays}) > 1 and any(a.dtype.kind in "OSU" for a in arrays)


def _classification_stats(metric: str, y, pred, classes) -> np.ndarray:
    if metric == "accuracy":
        return (y == pred).astype(float)[:, None]
    if _mixed(y, pred):
        y, pred = y.astype(str), pred.astype(str)
    chosen = classes[-1:] if len(classes) <= 2 else classes  # binary: the positive class only
    tp = [(y == c) & (pred == c) for c in chosen]
    fp = [(y != c) & (pred == c) for c in chosen]
    fn = [(y == c) & (pred != c) for c in chosen]
    return np.column_stack(tp + fp + fn).astype(float)


def _classification_value(metric: str, sums: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    if metric == "accuracy":
        return sums[..., 0] / n
    k = sums.shape[-1] // 3
    tp, fp, fn = sums[..., :k], sums[..., k:2 * k], sums[..., 2 * k:]
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)
    if n_classes <= 2:
        return f1[..., 0]
    present = denominator > 0  # macro over the classes present (scikit-learn's labels=None)
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _regression_stats(metric: str, y, pred) -> np.ndarray:
    error = pred - y
    if metric == "mae":
        return np.abs(error)[:, None]
    if metric == "rmse":
        return (error ** 2)[:, None]
    return np.column_stack([y, y ** 2, error ** 2])


def _regression_value(metric: str, sums: np.ndarray, n: int) -> np.ndarray:
    if metric == "mae":
        return sums[..., 0] / n
    if metric == "rmse":
        return np.sqrt(sums[..., 0] / n)
    total = sums[..., 1] - sums[..., 0] ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1 - sums[..., 2] / np.where(total > 0, total, 1), np.nan)


# -- the run ---------------------------------------------------------------------------------------

def _log(result: Comparison) -> None:
    run = _current.active_run()
    if run is None:
        return
    run.set_tag(naming.COMPARE_A, result.a)
    run.set_tag(naming.COMPARE_B, result.b)
    for key, value in ((naming.METRIC_COMPARE_AGREEMENT, result.agreement),
                       (naming.METRIC_COMPARE_CORRELATION, result.correlation),
                       (naming.METRIC_COMPARE_MEAN_ABS_DIFF, result.mean_abs_diff)):
        if value is not None and math.isfinite(value):
            run.log_metric(key, value)
    for row in result.table.itertuples(index=False):
        for part in ("a", "b", "delta", "ci_low", "ci_high"):
            value = getattr(row, part)
            if math.isfinite(value):
                run.log_metric(naming.metric_compare(row.metric, part), value)
    run.log_text(naming.ARTIFACT_COMPARE, result.to_json())
    result.logged = True


def _g(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else ""


def _signed(v) -> str:
    return f"{v:+.4g}" if isinstance(v, float) and math.isfinite(v) else "n/a"


def _finite(v):
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
