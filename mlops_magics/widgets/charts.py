"""Altair charts of drift and metric history: pure functions from a DataFrame to a chart.

The widgets draw with these, and reports, the demo or a user's own notebook can too::

    from mlops_magics.widgets import charts
    charts.drift_scores(mm.drift(ref, cur).table)
    charts.metric_history(mlflow.search_runs(), "f1", threshold=0.8)

Every chart carries aggregates only (one row per feature, bucket or run), never raw rows,
so specs stay small and far below Altair's 5,000-row limit. The metric history lives in
``history_chart.py``; its public functions are re-exported here.
"""

from __future__ import annotations

import math
import warnings

import altair as alt
import numpy as np
import pandas as pd

from ..monitoring._evaluate import P_VALUE_METHODS
from .history_chart import (KIND_COLORS, KINDS, MAX_POINTS, RUN_PICK, history_frame, lower_is_better,
                            mark_runs, metric_history, run_kinds, slice_history, thin_runs)

__all__ = ["FEATURE_PICK", "KINDS", "KIND_COLORS", "MAX_POINTS", "RUN_PICK", "axis_title", "bucket_edges",
           "distribution", "drift_scores", "drift_when", "history_frame", "in_effect", "lower_is_better",
           "mark_runs", "metric_history", "run_kinds", "slice_history", "thin_runs"]

DRIFTED, NOT_DRIFTED = "drifted", "not drifted"
_RED, _GREEN, _GREY, _BLUE, _ORANGE = "#c62828", "#2e7d32", "#9e9e9e", "#1f77b4", "#ff7f0e"
FEATURE_PICK = "feature_pick"
_P_FLOOR = 1e-300

# What each method's bar measures: the x-axis title, the tooltip and the widget's threshold line.
UNITS = {"ks": "-log10 p (ks)", "chi2": "-log10 p (chi2)", "psi": "PSI", "kl": "KL divergence (nats)",
         "js": "JS distance (base 2)", "wasserstein": "Wasserstein (scaled: W1 / reference std)"}
_SCORE_NAMES = {"ks": "KS statistic D", "chi2": "chi2 statistic", "psi": "PSI", "kl": "KL (nats)",
                "js": "JS distance", "wasserstein": "W1 / reference std"}


# -- drift: per-feature scores ----------------------------------------------------------------------
def drift_scores(table: pd.DataFrame, *, title: str | None = None, selected: str | None = None,
                 width: int = 420) -> alt.TopLevelMixin:
    """Bars of each feature's drift against its method's threshold, one panel per method.

    ``table`` is ``DriftReport.table``. Distance methods (psi, kl, js, wasserstein) plot
    the score with the dashed rule at the threshold; test methods (ks, chi2) plot
    ``-log10 p`` (the adjusted p with a correction) with the rule at ``-log10 alpha``, so
    a longer bar always means more drift. Each panel's x-axis title says what the bar is
    and when it counts as drift (``-log10 p (ks): drift when p <= 0.05, past the rule at
    1.3``), the same threshold the tooltip and the rule show. Bars are red when the feature
    drifted (by score, missing rate or schema), grey otherwise. Features are ordered most
    drifted first, or by importance when the table has an ``importance`` column (a
    reference run that logged ``importance.<feature>``). Clicking a bar selects the feature
    (selection ``feature_pick``).
    """
    data = _score_rows(table, selected)
    pick = alt.selection_point(name=FEATURE_PICK, fields=["feature"], on="click", clear="dblclick")
    methods = list(dict.fromkeys(data["method"]))
    ranked = "importance" in data and data["importance"].notna().any()
    panels = [_score_panel(data[data["method"] == m], m, pick, width, ranked) for m in methods]
    if not panels:
        chart = _nothing_compared(width)
    elif len(panels) == 1:
        chart = panels[0]
    else:
        with warnings.catch_warnings():  # one selection across the panels: Altair merges it, and says so
            warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
            chart = alt.vconcat(*panels, spacing=14).resolve_scale(x="independent", y="independent")
    if title:
        chart = chart.properties(title=alt.TitleParams(title, anchor="start", fontSize=13))
    return chart


def axis_title(method: str, threshold: float) -> str:
    """What a panel's bar is and when it counts as drift."""
    unit = UNITS.get(method, method)
    if method in P_VALUE_METHODS:
        return f"{unit}: drift when p <= {threshold:g}, past the rule at {_minus_log10(threshold):.3g}"
    return f"{unit}: drift when >= {threshold:g}, past the rule"


def in_effect(table: pd.DataFrame) -> list[tuple[str, float]]:
    """``[(method, threshold), ...]`` of the methods a report used, in table order."""
    t = table[table["method"].astype(str) != ""]
    return list(dict.fromkeys(zip(t["method"].astype(str), t["threshold"].astype(float))))


def drift_when(method: str, threshold: float) -> str:
    """``p <= 0.05`` or ``PSI >= 0.1``: the rule in words, as the tooltip and the widget say it."""
    if method in P_VALUE_METHODS:
        return f"p <= {threshold:g}"
    return f"{_SCORE_NAMES.get(method, method)} >= {threshold:g}"


def _score_panel(d: pd.DataFrame, method: str, pick, width: int, ranked: bool) -> alt.LayerChart:
    threshold = float(d["threshold"].iloc[0])
    top = float(np.nanmax(np.concatenate([d["evidence"].to_numpy(float), d["rule"].to_numpy(float)])))
    top = top if math.isfinite(top) and top > 0 else 1.0
    sort = list(d["feature"]) if ranked else alt.EncodingSortField("evidence", order="descending")
    y = alt.Y("feature:N", sort=sort, title="by importance" if ranked else None,
              axis=alt.Axis(labelLimit=160, titleColor="#666", titleFontWeight="normal"))
    x = alt.X("evidence:Q", title=axis_title(method, threshold),
              scale=alt.Scale(domain=[0, top * 1.2], nice=False),  # room for the labels after the bars
              axis=alt.Axis(titleFontWeight="bold", titleFontSize=11, labelFlush=True, tickCount=6))
    base = alt.Chart(d)
    bars = base.mark_bar(cursor="pointer", height={"band": 0.75}).encode(
        y=y, x=x,
        color=alt.Color("verdict:N", scale=alt.Scale(domain=[DRIFTED, NOT_DRIFTED], range=[_RED, _GREY]),
                        legend=alt.Legend(title=None, orient="top")),
        opacity=alt.when(pick).then(alt.value(1.0)).otherwise(alt.value(0.35)),
        stroke=alt.when(pick, empty=False).then(alt.value("black"))
        .when("datum.selected").then(alt.value("black")).otherwise(alt.value(None)),
        strokeWidth=alt.value(1.5),
        tooltip=_score_tooltip(method, ranked),
    ).add_params(pick).properties(name=f"drift_bars_{method}")
    labels = base.mark_text(align="left", dx=3, fontSize=10, color="#333").encode(y=y, x=x, text="label:N")
    rule = base.mark_rule(strokeDash=[5, 3], color="black").encode(x="mean(rule):Q")
    return alt.layer(bars, labels, rule).properties(width=width, height=alt.Step(18))


def _nothing_compared(width: int) -> alt.Chart:
    note = pd.DataFrame({"text": ["no feature compared: see the table's status column"]})
    return alt.Chart(note).mark_text(color="#666", align="left").encode(
        text="text:N", x=alt.value(0)).properties(width=width, height=20)


def _minus_log10(p) -> np.ndarray | float:
    return -np.log10(np.clip(np.asarray(p, dtype=float), _P_FLOOR, None))


def _score_rows(table: pd.DataFrame, selected: str | None) -> pd.DataFrame:
    t = table[(table["method"].astype(str) != "") & np.isfinite(table["score"].astype(float))].copy()
    test = t["method"].isin(P_VALUE_METHODS).to_numpy()
    p = t["p_value"].astype(float)
    if "p_adjusted" in t:  # a correction: the adjusted p is what the verdict used
        adjusted = t["p_adjusted"].astype(float)
        p = adjusted.where(np.isfinite(adjusted), p)
    t["evidence"] = np.where(test, _minus_log10(p), t["score"].astype(float))
    t["rule"] = np.where(test, _minus_log10(t["threshold"]), t["threshold"].astype(float))
    t["verdict"] = np.where(t["drifted"].astype(bool), DRIFTED, NOT_DRIFTED)
    t["label"] = [f"p={pv:.2g}" if m in P_VALUE_METHODS else _fmt(float(s))
                  for s, m, pv in zip(t["score"], t["method"], p)]
    t["when"] = [drift_when(m, float(th)) for m, th in zip(t["method"], t["threshold"])]
    detail = t["detail"] if "detail" in t else pd.Series("", index=t.index)
    t["why"] = [_why(r, d, s) for r, d, s in zip(t["reason"], detail, t["status"])]
    t["selected"] = t["feature"] == selected if selected is not None else False
    t["p"] = [f"{v:.3g}" if np.isfinite(v) else "" for v in p]
    t["null_change"] = [_signed_percent(v) for v in t["null_rate_change"].astype(float)]
    t["unseen"] = [f"{v:.1%}" if np.isfinite(v) and v > 0 else "" for v in t["unseen_share"].astype(float)]
    keep = ["feature", "method", "score", "threshold", "p_value", "null_rate_change", "unseen_share",
            "importance", "p", "null_change", "unseen", "evidence", "rule", "when", "verdict", "label", "why",
            "selected"]
    out = t[[c for c in keep if c in t]].reset_index(drop=True)
    return out.replace([np.inf, -np.inf], np.nan)


def _why(reason, detail, status) -> str:
    parts = [str(x) for x in (reason, detail, "" if status == "ok" else status) if isinstance(x, str) and x]
    return "; ".join(parts)


def _score_tooltip(method: str, ranked: bool) -> list:
    tips = [alt.Tooltip("feature:N"), alt.Tooltip("method:N"),
            alt.Tooltip("score:Q", title=_SCORE_NAMES.get(method, "score"), format=".4~g")]
    if method in P_VALUE_METHODS:
        tips += [alt.Tooltip("p:N", title="p-value"), alt.Tooltip("evidence:Q", title="-log10 p", format=".3~g")]
    tips.append(alt.Tooltip("when:N", title="drift when"))
    if ranked:
        tips.append(alt.Tooltip("importance:Q", format=".3~g"))
    tips += [alt.Tooltip("null_change:N", title="null-rate change"), alt.Tooltip("unseen:N", title="unseen share"),
             alt.Tooltip("verdict:N"), alt.Tooltip("why:N")]
    return tips


def _signed_percent(v: float) -> str:
    return "" if not np.isfinite(v) or v == 0 else f"{v:+.1%}"


# -- drift: one feature's distribution ------------------------------------------------------------
def distribution(hist: pd.DataFrame, feature: str, *, width: int = 420, height: int = 160) -> alt.TopLevelMixin:
    """Reference and current share per bucket of one feature, overlaid.

    ``hist`` is ``DriftReport.histogram(feature)`` (bucket, reference, current, new),
    optionally with numeric bucket edges ``lo`` and ``hi``: then the bars are densities on
    a numeric axis (a true histogram); otherwise one bar pair per bucket, in order.
    Buckets the reference cannot have (out of its range, unseen categories) are outlined.
    """
    h = hist[(hist["reference"] > 0) | (hist["current"] > 0)].copy()
    if {"lo", "hi"} <= set(h.columns) and h["lo"].notna().all() and len(h):
        return _density(h, feature, width, height)
    long = h.melt(id_vars=["bucket", "new"], value_vars=["reference", "current"], var_name="data", value_name="share")
    order = list(h["bucket"])
    enc = dict(
        x=alt.X("bucket:N", sort=order, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=120)),
        y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of rows"),
        xOffset=alt.XOffset("data:N", sort=["reference", "current"]),
        **_side_channels(outline=2, new="reference never had it"),
    )
    chart = alt.Chart(long).mark_bar(stroke="black").encode(**enc)
    return chart.properties(width=width, height=height, title=_dist_title(feature))


def _density(h: pd.DataFrame, feature: str, width: int, height: int) -> alt.TopLevelMixin:
    lo, hi = h["lo"].astype(float), h["hi"].astype(float)
    span = (hi - lo).where(hi > lo, np.nan)
    rows = []
    for side in ("reference", "current"):
        part = h[["bucket", "new"]].copy()
        part["data"], part["lo"], part["hi"] = side, lo, hi
        part["share"] = h[side].astype(float)
        part["density"] = (part["share"] / span).fillna(0.0)
        rows.append(part)
    long = pd.concat(rows, ignore_index=True)
    chart = alt.Chart(long).mark_rect(opacity=0.55, stroke="black").encode(
        x=alt.X("lo:Q", title=feature, scale=alt.Scale(zero=False, nice=False)), x2="hi:Q",
        y=alt.Y("density:Q", title="density (share / width)"), y2=alt.datum(0),
        **_side_channels(outline=1.5, new="outside the reference range"),
    )
    return chart.properties(width=width, height=height, title=_dist_title(feature))


def _side_channels(*, outline: float, new: str) -> dict:
    """Reference grey and current orange, buckets the reference cannot have outlined
    (``outline`` pixels wide), and the tooltip, which calls those buckets ``new``."""
    return dict(
        color=alt.Color("data:N", scale=alt.Scale(domain=["reference", "current"], range=[_GREY, _ORANGE]),
                        legend=alt.Legend(title=None, orient="top")),
        strokeWidth=alt.condition("datum.new", alt.value(outline), alt.value(0)),
        tooltip=[alt.Tooltip("bucket:N"), alt.Tooltip("data:N"), alt.Tooltip("share:Q", format=".2%"),
                 alt.Tooltip("new:N", title=new)],
    )


def _dist_title(feature: str) -> alt.TitleParams:
    return alt.TitleParams(f"{feature}: reference vs current", anchor="start", fontSize=12)


def bucket_edges(hist: pd.DataFrame, edges) -> pd.DataFrame:
    """``hist`` with numeric ``lo``/``hi`` per bucket from the cut points ``[min, ..., max]``
    of range buckets; the buckets below the min and above the max get one average bucket
    width outside the range. Edges are rounded to 6 significant digits: enough to draw,
    and the chart does not carry the exact data values that quantile cuts are."""
    if edges is None or len(edges) < 2 or len(hist) != len(edges) + 1:
        return hist
    e = _round_sig(np.asarray(edges, dtype=float), 6)
    pad = (e[-1] - e[0]) / (len(e) - 1) if e[-1] > e[0] else 1.0
    out = hist.copy()
    out["lo"] = np.concatenate([[e[0] - pad], e[:-1], [e[-1]]])
    out["hi"] = np.concatenate([[e[0]], e[1:], [e[-1] + pad]])
    return out


def _round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    scale = np.where(x == 0, 0, np.floor(np.log10(np.abs(np.where(x == 0, 1, x)))))
    factor = 10.0 ** (digits - 1 - scale)
    return np.round(x * factor) / factor


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else ""
