"""``eval=(X, y)``: score a model and scikit-learn's dummy baseline on the same held-out data.

Classifiers are scored with F1 (``average="binary"`` for 0/1 labels, ``"weighted"`` otherwise)
against ``DummyClassifier(strategy="most_frequent")``; regressors with R² against
``DummyRegressor(strategy="mean")``. The dummy is fitted on the evaluation data itself: it
stands for "predict the obvious answer", which a model worth promoting must beat.
Pure scikit-learn: nothing here imports mlflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import naming
from ..errors import MlopsError, one_line


class EvalError(MlopsError):
    """Evaluation data the model cannot be scored on."""


@dataclass
class Evaluation:
    """The model's score and its baseline's on the evaluation data."""

    metric: str  # "f1" or "r2"
    value: float
    baseline: float
    kind: str  # "classifier" or "regressor"
    rows: int

    def metrics(self) -> dict[str, float]:
        """``{<metric>: value, baseline.<metric>: baseline}``, as logged on the run."""
        return {self.metric: self.value, naming.metric_baseline(self.metric): self.baseline}

    def __repr__(self) -> str:
        verdict = "beats" if self.value > self.baseline else "does not beat"
        return (f"{self.metric}={self.value:.4g} {verdict} its baseline ({naming.metric_baseline(self.metric)}="
                f"{self.baseline:.4g}) on {self.rows} rows")


def split_eval(eval: object) -> tuple[object, object]:
    """``(X, y)`` from what ``eval=`` was given, or a one-line :class:`EvalError`."""
    if not isinstance(eval, (tuple, list)) or len(eval) != 2:
        raise EvalError(f"eval= wants a pair (X, y) of held-out data, got {type(eval).__name__}")
    return eval[0], eval[1]


def model_kind(model: object) -> str:
    """``classifier`` or ``regressor`` (scikit-learn's own ``_estimator_type``)."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(model):
        return "classifier"
    if is_regressor(model):
        return "regressor"
    raise EvalError(f"eval= scores classifiers (F1) and regressors (R²); a {type(model).__name__} is neither")


def evaluate(model: object, X: object, y: object) -> Evaluation:
    """Score ``model`` and the dummy baseline on ``(X, y)``."""
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    kind = model_kind(model)
    try:
        n = len(y)  # type: ignore[arg-type]
    except TypeError:
        raise EvalError(f"eval=(X, y): y must be a sequence of labels, got {type(y).__name__}") from None
    if n == 0:
        raise EvalError("eval=(X, y): y is empty")
    try:
        predicted = model.predict(X)
    except Exception as exc:
        raise EvalError(f"eval=(X, y): the model cannot predict on X: {one_line(exc)}") from None
    if len(predicted) != n:
        raise EvalError(f"eval=(X, y): X gives {len(predicted)} predictions for {n} labels")
    dummy = DummyClassifier(strategy="most_frequent") if kind == "classifier" else DummyRegressor(strategy="mean")
    dummy.fit(np.zeros((n, 1)), y)
    baseline = dummy.predict(np.zeros((n, 1)))
    if kind == "classifier":
        metric, score = "f1", _f1(y, predicted, baseline)
    else:
        from sklearn.metrics import r2_score

        metric, score = "r2", (float(r2_score(y, predicted)), float(r2_score(y, baseline)))
    return Evaluation(metric=metric, value=score[0], baseline=score[1], kind=kind, rows=n)


def _f1(y, predicted, baseline) -> tuple[float, float]:
    import numpy as np
    from sklearn.metrics import f1_score

    labels = set(np.unique(np.asarray(y)).tolist()) | set(np.unique(np.asarray(predicted)).tolist())
    average = "binary" if labels <= {0, 1} and len(labels) <= 2 else "weighted"
    return (float(f1_score(y, predicted, average=average, zero_division=0)),
            float(f1_score(y, baseline, average=average, zero_division=0)))
