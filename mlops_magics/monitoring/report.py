"""``DriftReport``: the per-feature table, the dataset verdict, its display, and ``.log()``."""

from __future__ import annotations

import html
import json
import math
from collections import Counter

import pandas as pd

from .. import _current, naming
from ._evaluate import percent
from .verdict import DEFAULT_SHARE, MIN_ROWS, dataset_drifted, verdict

_COLUMNS = ["feature", "method", "score", "threshold", "drifted", "p_value", "null_rate_change",
            "unseen_share", "status", "reason", "detail"]
_OK, _BAD = "#2e7d32", "#c62828"


class DriftReport:
    """What ``mm.drift`` found.

    ``.table``: one row per feature (feature, method, score, threshold, drifted, p_value,
    null_rate_change, unseen_share, status, reason, detail; p_adjusted with a correction).
    ``.share``: the share of compared features that drifted; ``.drifted``: share >= the
    share threshold (``naming.DRIFT_SHARE`` unless given: the one rule of the report, the
    widget, ``%drift`` and the CLI). ``.caveats``: small-sample warnings, also shown under
    the verdict. ``.importance``: the reference run's feature importances when it logged
    them (the table is then ordered by them). ``.histogram(feature)``: the buckets behind
    the scores. ``.log()``: into the run of the tracked cell or job now running.
    """

    def __init__(self, rows, *, share: float = DEFAULT_SHARE, correction: str | None = None,
                 reference: str = "reference", current: str = "current", exact: bool = True,
                 importance: dict[str, float] | None = None) -> None:
        self.share_threshold, self.correction = share, correction
        self.reference, self.current, self.exact = reference, current, exact
        self.importance = dict(importance or {})
        rows = _by_importance(rows, self.importance)
        self.table = _table(rows, correction)
        self._buckets = {r.feature: r.buckets for r in rows if r.buckets is not None}
        compared = [r for r in rows if r.counted]
        self.n_compared = len(compared)
        self.n_drifted = sum(r.drifted for r in compared)
        self.n_skipped = len(rows) - len(compared)
        self.caveats = _caveats(rows)
        self.inputs: dict = {}  # what drift() was given, so a DriftWidget can recompute this report

    @property
    def share(self) -> float:
        return self.n_drifted / self.n_compared if self.n_compared else 0.0

    @property
    def drifted(self) -> bool:
        return dataset_drifted(self.n_drifted, self.n_compared, self.share_threshold)

    @property
    def drifted_features(self) -> list[str]:
        return self.table.loc[self.table["drifted"], "feature"].tolist()

    @property
    def verdict(self) -> str:
        return verdict(self.n_drifted, self.n_compared, self.share_threshold, self.n_skipped)

    def histogram(self, feature: str) -> pd.DataFrame:
        """The buckets of ``feature``: reference and current shares, and which are new."""
        b = self._buckets.get(feature)
        if b is None:
            from ..errors import MlopsError, did_you_mean

            raise MlopsError(f"no buckets for {feature!r}.{did_you_mean(feature, self._buckets)}")
        ref, cur = b.ref.sum(), b.cur.sum()
        return pd.DataFrame({"bucket": b.labels, "reference": b.ref / ref if ref else b.ref,
                             "current": b.cur / cur if cur else b.cur, "new": b.new})

    def edges(self, feature: str):
        """The cut points ``[min, e1, ..., max]`` of ``feature``'s range buckets (numpy
        array), or None when its buckets are categories or single values."""
        b = self._buckets.get(feature)
        return None if b is None else b.edges

    # -- MLflow ------------------------------------------------------------------------------------
    def log(self) -> None:
        """Scores as metrics ``drift.<feature>.<method>`` (p-values as ``....p_value``) and
        ``drift.share`` on the run being tracked; tags it ``mlops.alert=drift`` with the
        reason when the data set drifted. Also the table as ``mlops/drift.json``."""
        run = _current.require_run("report.log()")
        for row in self.table.itertuples(index=False):
            if row.method and _finite(row.score):
                run.log_metric(naming.metric_drift(row.feature, row.method), float(row.score))
            if row.method and _finite(row.p_value):
                run.log_metric(naming.metric_drift(row.feature, row.method, "p_value"), float(row.p_value))
        run.log_metric(naming.METRIC_DRIFT_SHARE, self.share)
        if self.drifted:
            run.alert(naming.ALERT_DRIFT, self.reason())
        run.log_text(naming.ARTIFACT_DRIFT, self.to_json())

    def reason(self) -> str:
        """The verdict and the drifted features, for the alert tag."""
        return f"{self.verdict}: {', '.join(self.drifted_features)}"

    def to_json(self) -> str:
        table = self.table.astype(object).where(self.table.notna(), None)
        return json.dumps({"verdict": self.verdict, "share": self.share, "drifted": self.drifted,
                           "share_threshold": self.share_threshold, "correction": self.correction,
                           "caveats": self.caveats, "importance": self.importance or None,
                           "reference": self.reference, "current": self.current,
                           "rows": table.to_dict(orient="records")}, allow_nan=False, default=str)

    # -- display -------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        shown = _shown(self.table)
        lines = [self.verdict, *(f"caveat: {c}" for c in self.caveats), shown.to_string(index=False)]
        lines += [f"  {m}: {why} ({n} feature{'s' if n > 1 else ''})" for (m, why), n in self._reasons().items()]
        return "\n".join(lines)

    def _reasons(self) -> Counter:
        t = self.table[self.table["method"] != ""]
        return Counter(zip(t["method"], t["reason"]))

    def _repr_html_(self) -> str:
        color = _BAD if self.drifted else _OK
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in _shown(self.table).columns)
        body = "".join(_html_row(r, s) for r, s in zip(self.table.itertuples(index=False),
                                                       _shown(self.table).itertuples(index=False)))
        sources = html.escape(f"{self.reference} → {self.current}")
        why = "".join(f"<div>{html.escape(m)}: {html.escape(r)} ({n})</div>" for (m, r), n in self._reasons().items())
        caveats = "".join(f"<div style='color:#8a5a00'>caveat: {html.escape(c)}</div>" for c in self.caveats)
        return (f"<div class='mlops-magics-drift' style='border-left:3px solid {color};padding:4px 8px'>"
                f"<div><b>{html.escape(self.verdict)}</b> <span style='color:#666'>{sources}</span></div>{caveats}"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<div style='color:#666;font-size:smaller'>{why}</div></div>")


def _by_importance(rows, importance: dict[str, float]):
    """Rows ordered by importance, most important first; features without one keep their
    order after them. Unchanged without importances."""
    if not importance:
        return list(rows)
    known = sorted((r for r in rows if r.feature in importance), key=lambda r: -importance[r.feature])
    return known + [r for r in rows if r.feature not in importance]


def _caveats(rows) -> list[str]:
    """One line per method whose scores a small sample makes unreliable."""
    lines = []
    for method in dict.fromkeys(r.method for r in rows if r.caveat):
        some = [r for r in rows if r.caveat and r.method == method]
        n, m = min(r.n_ref for r in some), min(r.n_cur for r in some)
        count = f"{len(some)} feature{'s' if len(some) > 1 else ''}"
        if some[0].caveat == "power":
            lines.append(f"{method} on {n:,} reference vs {m:,} current values ({count}): under {MIN_ROWS} "
                         "values a test sees only large shifts; a 'no' is weak evidence")
            continue
        lo, hi = min(r.chance for r in some), max(r.chance for r in some)
        level = f"{lo:.2g}" if f"{lo:.2g}" == f"{hi:.2g}" else f"{lo:.2g}-{hi:.2g}"
        lines.append(f"{method} on {n:,} reference vs {m:,} current values ({count}): scores near {level} "
                     f"arise by chance alone (threshold {some[0].threshold:g}); method='auto' uses a test "
                     "(ks, chi2) at this size")
    return lines


def _table(rows, correction: str | None) -> pd.DataFrame:
    data = [{"feature": r.feature, "method": r.method, "score": r.score, "threshold": r.threshold,
             "drifted": r.drifted, "p_value": r.p_value, "null_rate_change": r.null_rate_change,
             "unseen_share": r.unseen_share, "status": r.status, "reason": r.reason,
             "detail": "; ".join(r.details), "p_adjusted": r.p_adjusted} for r in rows]
    columns = _COLUMNS[:6] + (["p_adjusted"] if correction else []) + _COLUMNS[6:]
    return pd.DataFrame(data, columns=columns).astype({"drifted": bool})


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text: numbers rounded, the why kept for the lines under it."""
    out = pd.DataFrame({"feature": table["feature"], "method": table["method"],
                        "score": table["score"].map(_g), "threshold": table["threshold"].map(_g),
                        "drifted": table["drifted"].map({True: "yes", False: "no"}),
                        "p_value": table["p_value"].map(_p)})
    if "p_adjusted" in table:
        out["p_adjusted"] = table["p_adjusted"].map(_p)
    out["missing Δ"] = table["null_rate_change"].map(_pp)
    out["unseen"] = table["unseen_share"].map(lambda v: percent(v) if _finite(v) and v > 0 else "")
    notes = table["status"].where(table["status"] != "ok", "")
    out["note"] = [", ".join(x for x in (s, d) if x) for s, d in zip(notes, table["detail"])]
    return out


def _html_row(row, shown) -> str:
    cells = []
    for name, value in zip(shown._fields, shown):
        style = f" style='color:{_BAD};font-weight:bold'" if name == "drifted" and row.drifted else ""
        title = f" title='{html.escape(row.reason, quote=True)}'" if name == "method" and row.reason else ""
        cells.append(f"<td{style}{title}>{html.escape(str(value))}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _g(v) -> str:
    return f"{v:.4g}" if _finite(v) else ""


def _p(v) -> str:
    return f"{v:.3g}" if _finite(v) else ""


def _pp(v) -> str:
    return ("+" if v > 0 else "") + percent(v) if _finite(v) and v != 0 else ""
