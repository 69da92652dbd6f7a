"""Classification metrics by name, the same way for slices and comparisons.

``f1``, ``precision`` and ``recall`` are binary (positive class: the larger label, ``1`` of
``0/1``, ``True`` of booleans) when the labels hold two classes, else macro averages over
the classes present. ``roc_auc`` takes scores: the positive class's probability (1-d) or
one column per class (2-d, one-vs-rest macro average).
"""

from __future__ import annotations

import numpy as np

from ..errors import MlopsError, did_you_mean

METRICS = ("f1", "accuracy", "precision", "recall", "roc_auc")


class ScoringError(MlopsError, ValueError):
    """Labels or predictions a metric cannot take."""


def check_metric_name(metric: str) -> str:
    if metric not in METRICS:
        raise ScoringError(f"unknown metric {metric!r}.{did_you_mean(str(metric), METRICS)} "
                           f"Use one of {', '.join(METRICS)}")
    return metric


def as_array(values: object, what: str) -> np.ndarray:
    """``values`` (list, Series, array) as a numpy array, by position."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim == 0:
        raise ScoringError(f"{what} is a single value: give one value per row")
    return array


def classes_of(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> np.ndarray:
    """The sorted labels the metric is about (for roc_auc: those of ``y_true`` only)."""
    values = y_true if metric == "roc_auc" else np.concatenate([y_true.ravel(), y_pred.ravel()])
    try:
        return np.unique(values)
    except TypeError:  # mixed types: compare as text
        return np.unique(values.astype(str))


def check_predictions(y_pred: np.ndarray, metric: str) -> None:
    """Scores where labels are needed (and the reverse) are the usual slip: say which to give."""
    if metric == "roc_auc":
        if y_pred.dtype.kind not in "iufb":
            raise ScoringError("roc_auc needs scores: give model.predict_proba(X)[:, 1] (binary) "
                               "or model.predict_proba(X) (multiclass), not labels")
        return
    if y_pred.ndim != 1:
        raise ScoringError(f"{metric} needs one predicted label per row (model.predict(X)), "
                           f"got an array of shape {y_pred.shape}")
    if y_pred.dtype.kind == "f" and y_pred.size and not np.all(np.isnan(y_pred) | (y_pred == np.round(y_pred))):
        raise ScoringError(f"y_pred holds scores, not labels: {metric} needs model.predict(X) "
                           "(roc_auc takes scores)")


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray, positive: object = None) -> float:
    """``metric`` of ``y_pred`` against ``y_true``; ``classes``: all labels of the whole data;
    ``positive``: the positive class of a binary metric (default: the larger label)."""
    from sklearn import metrics as m

    positive = classes[-1] if positive is None else positive
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, y_pred))
    if metric == "roc_auc":
        if y_pred.ndim == 1:
            return float(m.roc_auc_score(y_true == positive, y_pred))
        return float(m.roc_auc_score(y_true, y_pred, multi_class="ovr", average="macro", labels=classes))
    fn = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}[metric]
    if len(classes) <= 2:
        return float(fn(y_true, y_pred, average="binary", pos_label=positive, zero_division=0))
    return float(fn(y_true, y_pred, average="macro", zero_division=0))


def why_not_scored(metric: str, y_true: np.ndarray, min_rows: int) -> str | None:
    """Why a group's rows give no meaningful ``metric``, or None when they do."""
    if len(y_true) < min_rows:
        return f"{len(y_true)} rows, fewer than min_rows={min_rows}"
    if metric != "accuracy":
        present = np.unique(y_true.astype(str)) if y_true.dtype.kind == "O" else np.unique(y_true)
        if len(present) < 2:
            only = present[0].item() if isinstance(present[0], np.generic) else present[0]
            return f"one class only ({only!r}): {metric} is not defined on it"
    return None
