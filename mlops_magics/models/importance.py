"""``mm.log_importance``: scikit-learn's permutation importance as run metrics and a chart.

Each feature's mean importance (how much the model's score drops when that column is
shuffled) is logged as ``importance.<feature>``; the table, with the original feature
names, as ``mlops/importance.json``; a Vega-Lite bar chart as ``mlops/importance.vl.json``
(open it in any Vega-Lite viewer, or ``altair.Chart.from_json``). No altair import.

:func:`read_importances` gives a run's importances back, largest first (the drift widget
orders features with it: drift in what the model leans on comes first).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from .. import _current, naming
from ..errors import MlopsError, one_line

COLUMNS = ["feature", "importance", "std", "metric"]


def log_importance(model, X, y, *, n_repeats: int = 5, scoring: object = None, random_state: int | None = 0,
                   n_jobs: int | None = None) -> pd.DataFrame:
    """Permutation importance of each column of ``X`` for fitted ``model`` on ``(X, y)``, logged in
    the run being tracked; returns a frame (feature, importance, std, metric) sorted largest first.

    ``scoring``: as scikit-learn takes it (default: the model's own ``score``). Use held-out
    data: importance on the training rows tells what the model memorised.
    """
    run = _current.require_run("mm.log_importance")
    table = importance_table(model, X, y, n_repeats=n_repeats, scoring=scoring, random_state=random_state,
                             n_jobs=n_jobs)
    for row in table.itertuples(index=False):
        run.log_metric(row.metric, row.importance)
    run.log_text(naming.ARTIFACT_IMPORTANCE, to_json(table, n_repeats=n_repeats, scoring=scoring))
    run.log_text(naming.ARTIFACT_IMPORTANCE_CHART, json.dumps(chart_spec(table)))
    return table


def importance_table(model, X, y, *, n_repeats: int = 5, scoring: object = None, random_state: int | None = 0,
                     n_jobs: int | None = None) -> pd.DataFrame:
    """The frame ``log_importance`` logs, computed without logging."""
    from sklearn.inspection import permutation_importance

    if not hasattr(model, "predict"):
        raise MlopsError(f"the model is a {type(model).__name__}, with no predict: give a fitted scikit-learn model")
    if getattr(X, "ndim", 2) != 2:
        raise MlopsError("X must be a table (a DataFrame or a 2-d array), one column per feature")
    if int(n_repeats) < 1:
        raise MlopsError("n_repeats must be at least 1")
    names = _feature_names(model, X)
    try:
        result = permutation_importance(model, X, y, n_repeats=int(n_repeats), scoring=scoring,
                                        random_state=random_state, n_jobs=n_jobs)
    except Exception as exc:
        raise MlopsError(f"permutation importance failed: {one_line(exc)}") from None
    keys = naming.distinct_keys([naming.metric_importance(n) for n in names])
    table = pd.DataFrame({"feature": names, "importance": result.importances_mean.astype(float),
                          "std": result.importances_std.astype(float), "metric": keys}, columns=COLUMNS)
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _feature_names(model, X) -> list[str]:
    columns = getattr(X, "columns", None)
    if columns is not None:
        return [str(c) for c in columns]
    known = getattr(model, "feature_names_in_", None)
    width = np.shape(X)[1]
    if known is not None and len(known) == width:
        return [str(c) for c in known]
    return [f"x{i}" for i in range(width)]


def to_json(table: pd.DataFrame, *, n_repeats: int, scoring: object) -> str:
    rows = [{"feature": r.feature, "importance": _finite(r.importance), "std": _finite(r.std), "metric": r.metric}
            for r in table.itertuples(index=False)]
    return json.dumps({"n_repeats": int(n_repeats), "scoring": None if scoring is None else str(scoring),
                       "rows": rows}, allow_nan=False)


def chart_spec(table: pd.DataFrame) -> dict:
    """A Vega-Lite v5 bar chart: one bar per feature, largest first, with a ±std rule."""
    values = [{"feature": r.feature, "importance": _finite(r.importance), "std": _finite(r.std),
               "low": _finite(r.importance - r.std), "high": _finite(r.importance + r.std)}
              for r in table.itertuples(index=False)]
    y = {"field": "feature", "type": "nominal", "sort": "-x", "title": None}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Permutation importance",
        "data": {"values": values},
        "height": {"step": 18},
        "layer": [
            {"mark": {"type": "bar", "color": "#4c78a8"},
             "encoding": {"y": y, "x": {"field": "importance", "type": "quantitative",
                                        "title": "mean score drop when shuffled"},
                          "tooltip": [{"field": "feature"}, {"field": "importance", "format": ".4g"},
                                      {"field": "std", "format": ".4g"}]}},
            {"mark": {"type": "rule", "color": "#333"},
             "encoding": {"y": y, "x": {"field": "low", "type": "quantitative"}, "x2": {"field": "high"}}},
        ],
    }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def read_importances(run: str, *, tracking_uri: str | None = None) -> dict[str, float]:
    """The permutation importances run ``run`` logged, ``{feature: importance}`` largest first.

    ``run``: a run id or ``runs:/<run id>/...`` (a drift reference). Features keep their own
    names (from ``mlops/importance.json``); a run without that file but with
    ``importance.<feature>`` metrics gives the metric names' feature part. ``{}`` when the
    run logged none.
    """
    from ..store_read import ReadError, Store

    run_id = run[len("runs:/"):].split("/", 1)[0] if run.startswith("runs:/") else run
    try:
        store = Store(tracking_uri)
        found = store.get_run(run_id)
    except ReadError as exc:
        raise MlopsError(str(exc)) from None
    folder = naming.ARTIFACT_IMPORTANCE.rsplit("/", 1)[0]
    try:
        names = set(store.list_artifacts(run_id, folder))
    except ReadError:
        names = set()
    if naming.ARTIFACT_IMPORTANCE in names:
        rows = json.loads(store.read_artifact_text(run_id, naming.ARTIFACT_IMPORTANCE))["rows"]
        pairs = [(r["feature"], r["importance"]) for r in rows if r.get("importance") is not None]
    else:
        pairs = [(k[len(naming.IMPORTANCE_PREFIX):], v) for k, v in found.metrics.items()
                 if k.startswith(naming.IMPORTANCE_PREFIX) and math.isfinite(v)]
    return dict(sorted(pairs, key=lambda p: -p[1]))


def order_features(features: list[str], importances: dict[str, float]) -> list[str]:
    """``features`` most important first; those without an importance after, in their own order."""
    known = [f for f in features if f in importances]
    known.sort(key=lambda f: -importances[f])
    return known + [f for f in features if f not in importances]
