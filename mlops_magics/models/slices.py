"""``mm.log_slices``: a classification metric on each group of rows, its worst value and the gap.

Logged on the run of the tracked cell (or job) now running as ``<metric>.slice.<group>``,
``<metric>.worst_slice`` and ``<metric>.slice_gap`` (best group minus worst), so
``mm.check_metric("f1.worst_slice", min=0.8)`` alerts on the weakest group, not the mean.
A group with too few rows, or (for all but accuracy) one class only, is not scored: the
report says why, the cell's summary says which.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import _current, naming
from ..errors import first_line
from . import scoring

MIN_ROWS = 10
MISSING_GROUP = "missing"  # the name rows with no group value get


@dataclass
class SliceReport:
    """What ``mm.log_slices`` logged.

    ``.table``: one row per group (group, rows, value, metric, note): ``value`` is NaN and
    ``note`` says why for a group not scored; ``metric`` is the MLflow metric name.
    ``.worst`` / ``.worst_value``: the lowest scored group; ``.gap``: best minus worst;
    ``.overall``: the metric on all rows.
    """

    metric: str
    table: pd.DataFrame
    overall: float | None
    worst: object = None
    worst_value: float | None = None
    gap: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        scored = int(self.table["value"].notna().sum())
        rows = int(self.table["rows"].sum())
        head = f"{self.metric} on {scored} of {len(self.table)} groups ({rows} rows)"
        if self.worst_value is None:
            return head + ": no group could be scored"
        overall = f", overall {self.overall:.4g}" if self.overall is not None else ""
        return (f"{head}: worst {self.worst_value:.4g} ({self.worst}), gap {self.gap:.4g}{overall}")

    def _shown(self) -> pd.DataFrame:
        return pd.DataFrame({"group": self.table["group"].astype(str), "rows": self.table["rows"],
                             self.metric: self.table["value"].map(lambda v: "" if math.isnan(v) else f"{v:.4g}"),
                             "note": self.table["note"]})

    def __repr__(self) -> str:
        return self.headline + "\n" + self._shown().to_string(index=False)

    def _repr_html_(self) -> str:
        shown = self._shown()
        head = "".join(f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in shown.columns)
        rows = []
        for group, values in zip(self.table["group"], shown.itertuples(index=False)):
            bad = self.worst_value is not None and group == self.worst
            style = " style='color:#c62828;font-weight:bold'" if bad else ""
            rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>")
        color = "#ef6c00" if self.notes or self.worst_value is None else "#2e7d32"
        return (f"<div class='mlops-magics-slices' style='border-left:3px solid {color};padding:4px 8px'>"
                f"<div><b>{html.escape(self.headline)}</b></div>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def log_slices(y_true, y_pred, groups, *, metric: str = "f1", min_rows: int = MIN_ROWS,
               pos_label: object = None) -> SliceReport:
    """Log ``metric`` of ``y_pred`` on each group of rows ``groups`` names, in the run being tracked.

    ``y_true``/``y_pred``/``groups``: one value per row, matched by position (lists, arrays or
    Series). ``metric``: f1, accuracy, precision, recall (predicted labels) or roc_auc
    (scores: ``predict_proba(X)[:, 1]``, or all columns for multiclass); two classes give
    the binary metric (positive: ``pos_label``, default the larger label), more the macro
    average. Groups with fewer than ``min_rows`` rows or one class are not scored.
    """
    run = _current.require_run("mm.log_slices")
    report = slice_report(y_true, y_pred, groups, metric=metric, min_rows=min_rows, pos_label=pos_label)
    for row in report.table.itertuples(index=False):
        if not math.isnan(row.value):
            run.log_metric(row.metric, row.value)
    if report.worst_value is not None:
        run.log_metric(naming.metric_worst_slice(metric), report.worst_value)
        run.log_metric(naming.metric_slice_gap(metric), report.gap)
    if report.notes:
        skipped = report.table.loc[report.table["value"].isna(), "group"].astype(str).tolist()
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        run.warn(f"{metric} slices not scored: {', '.join(skipped[:5])}{more} (the report says why)")
    return report


def slice_report(y_true, y_pred, groups, *, metric: str = "f1", min_rows: int = MIN_ROWS,
                 pos_label: object = None) -> SliceReport:
    """The per-group table ``log_slices`` logs, computed without logging."""
    scoring.check_metric_name(metric)
    truth = scoring.as_array(y_true, "y_true")
    pred = scoring.as_array(y_pred, "y_pred")
    labels = _groups(groups)
    if not len(truth) == len(pred) == len(labels):
        raise scoring.ScoringError(f"y_true, y_pred and groups must have one value per row: got "
                                   f"{len(truth)}, {len(pred)} and {len(labels)} values")
    if len(truth) == 0:
        raise scoring.ScoringError("no rows to score")
    scoring.check_predictions(pred, metric)
    classes = scoring.classes_of(truth, pred, metric)
    codes, names = _codes(labels)
    keys = naming.distinct_keys([naming.metric_slice(metric, n) for n in names])
    rows, notes = [], []
    for code, (name, key) in enumerate(zip(names, keys)):
        mask = codes == code
        t, p = truth[mask], pred[mask]
        why = scoring.why_not_scored(metric, t, min_rows)
        value = math.nan
        if why is None:
            try:
                value = scoring.score(metric, t, p, classes, pos_label)
            except ValueError as exc:  # sklearn's own refusals (a class missing for roc_auc...)
                why = first_line(exc)
        if why is not None:
            notes.append(f"{name}: {why}")
        rows.append({"group": name, "rows": int(mask.sum()), "value": value, "metric": key, "note": why or ""})
    table = pd.DataFrame(rows, columns=["group", "rows", "value", "metric", "note"])
    overall = _overall(metric, truth, pred, classes, pos_label)
    scored = table[table["value"].notna()]
    if scored.empty:
        return SliceReport(metric, table, overall, notes=notes)
    worst_at = scored["value"].idxmin()
    worst_value = float(scored["value"].min())
    return SliceReport(metric, table, overall, worst=table.at[worst_at, "group"], worst_value=worst_value,
                       gap=float(scored["value"].max()) - worst_value, notes=notes)


def _groups(groups) -> pd.Series:
    if isinstance(groups, pd.Series):
        return groups.reset_index(drop=True)
    if isinstance(groups, (str, bytes)) or np.ndim(groups) == 0:
        raise scoring.ScoringError("groups must name each row's group (a column, Series, list or array), "
                                   f"got {type(groups).__name__}")
    values = groups if isinstance(groups, (pd.Categorical, pd.Index)) else scoring.as_array(groups, "groups")
    return pd.Series(values)


def _codes(labels: pd.Series) -> tuple[np.ndarray, list[object]]:
    """Each row's group number and the group names (sorted where the values sort)."""
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except TypeError:  # values of mixed types: first seen first
        codes, uniques = pd.factorize(labels, sort=False)
    names: list[object] = [_plain(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names.append(MISSING_GROUP)
    return np.asarray(codes), names


def _plain(value: object) -> object:
    """numpy scalars as Python values, so groups print as ``1`` rather than ``np.int64(1)``."""
    return value.item() if isinstance(value, np.generic) else value


def _overall(metric, truth, pred, classes, pos_label) -> float | None:
    try:
        return scoring.score(metric, truth, pred, classes, pos_label)
    except ValueError:
        return None
