"""Altair charts of drift and metric history: pure functions from a DataFrame to a chart.

The widgets draw with these, and reports, the demo or a user's own notebook can too::

    from mlops_magics.widgets import charts
    charts.drift_scores(mm.drift(ref, cur).table)
    charts.metric_history(mlflow.search_runs(), "f1", threshold=0.8)

Every chart carries aggregates only (one row per feature, bucket or run), never raw rows,
so specs stay small and far below Altair's 5,000-row limit.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from ..monitoring._evaluate import P_VALUE_METHODS

DRIFTED, NOT_DRIFTED = "drifted", "not drifted"
_RED, _GREEN, _GREY, _BLUE, _ORANGE = "#c62828", "#2e7d32", "#9e9e9e", "#1f77b4", "#ff7f0e"
FEATURE_PICK = "feature_pick"
RUN_PICK = "run_pick"
MAX_POINTS = 1000  # above this many runs the history keeps the extremes per time slice
_P_FLOOR = 1e-300


# -- drift: per-feature scores ----------------------------------------------------------------------
def drift_scores(table: pd.DataFrame, *, title: str | None = None, selected: str | None = None,
                 width: int = 420) -> alt.TopLevelMixin:
    """Bars of each feature's drift against its method's threshold, most drifted first.

    ``table`` is ``DriftReport.table``. Distance methods (psi, kl, js, wasserstein) plot
    the score with the rule at the threshold; test methods (ks, chi2) plot ``-log10 p``
    with the rule at ``-log10 alpha``, so a longer bar always means more drift. Bars are
    red when the feature drifted (by score, missing rate or schema), grey otherwise.
    One panel per method. Clicking a bar selects the feature (selection ``feature_pick``).
    """
    data = _score_rows(table, selected)
    pick = alt.selection_point(name=FEATURE_PICK, fields=["feature"], on="click", clear="dblclick")
    base = alt.Chart(data)
    y = alt.Y("feature:N", sort=alt.EncodingSortField("evidence", order="descending"), title=None)
    x = alt.X("evidence:Q", title=None, scale=alt.Scale(zero=True, nice=True))
    bars = base.mark_bar(cursor="pointer", height={"band": 0.75}).encode(
        y=y, x=x,
        color=alt.Color("verdict:N", scale=alt.Scale(domain=[DRIFTED, NOT_DRIFTED], range=[_RED, _GREY]),
                        legend=alt.Legend(title=None, orient="top")),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)),
        stroke=alt.condition("datum.selected", alt.value("black"), alt.value(None)),
        strokeWidth=alt.value(1.5),
        tooltip=_score_tooltip(),
    ).add_params(pick)
    labels = base.mark_text(align="left", dx=3, fontSize=10, color="#333").encode(y=y, x=x, text="label:N")
    rule = base.mark_rule(strokeDash=[5, 3], color="black").encode(x="mean(rule):Q")
    layered = alt.layer(bars, labels, rule)
    if data["panel"].nunique() > 1:
        chart = layered.properties(width=width, height=alt.Step(18)).facet(
            row=alt.Row("panel:N", title=None, header=alt.Header(labelOrient="top", labelAnchor="start",
                                                                  labelFontWeight="bold")),
        ).resolve_scale(x="independent", y="independent")
    else:
        axis = data["panel"].iloc[0] if len(data) else ""
        chart = layered.properties(width=width, height=alt.Step(18))
        chart = chart.encode(x=alt.X("evidence:Q", title=axis))  # the panel's name as the axis title
    if title:
        chart = chart.properties(title=alt.TitleParams(title, anchor="start", fontSize=13))
    return chart


def _score_rows(table: pd.DataFrame, selected: str | None) -> pd.DataFrame:
    t = table[(table["method"].astype(str) != "") & np.isfinite(table["score"].astype(float))].copy()
    test = t["method"].isin(P_VALUE_METHODS)
    p = t["p_value"].astype(float).clip(lower=_P_FLOOR)
    t["evidence"] = np.where(test, -np.log10(p), t["score"].astype(float))
    t["rule"] = np.where(test, -np.log10(t["threshold"].astype(float).clip(lower=_P_FLOOR)),
                         t["threshold"].astype(float))
    t["panel"] = [_panel(m, th) for m, th in zip(t["method"], t["threshold"])]
    t["verdict"] = np.where(t["drifted"].astype(bool), DRIFTED, NOT_DRIFTED)
    t["label"] = [_fmt(s) if m not in P_VALUE_METHODS else f"p={pv:.2g}"
                  for s, m, pv in zip(t["score"], t["method"], t["p_value"])]
    detail = t["detail"] if "detail" in t else pd.Series("", index=t.index)
    t["why"] = [_why(r, d, s) for r, d, s in zip(t["reason"], detail, t["status"])]
    t["selected"] = t["feature"] == selected if selected is not None else False
    t["p"] = [f"{v:.3g}" if np.isfinite(v) else "" for v in t["p_value"].astype(float)]
    t["null_change"] = [_signed_percent(v) for v in t["null_rate_change"].astype(float)]
    t["unseen"] = [f"{v:.1%}" if np.isfinite(v) and v > 0 else "" for v in t["unseen_share"].astype(float)]
    keep = ["feature", "method", "score", "threshold", "p_value", "null_rate_change", "unseen_share",
            "p", "null_change", "unseen", "evidence", "rule", "panel", "verdict", "label", "why", "selected"]
    out = t[[c for c in keep if c in t]].reset_index(drop=True)
    return out.replace([np.inf, -np.inf], np.nan)


def _panel(method: str, threshold: float) -> str:
    if method in P_VALUE_METHODS:
        return f"{method}: -log10 p (drift when p <= {threshold:g})"
    unit = {"js": "JS distance, base 2", "wasserstein": "W1 / reference std", "kl": "KL, nats",
            "psi": "PSI"}.get(method, method)
    return f"{method}: {unit} (drift when >= {threshold:g})"


def _why(reason, detail, status) -> str:
    parts = [str(x) for x in (reason, detail, "" if status == "ok" else status) if isinstance(x, str) and x]
    return "; ".join(parts)


def _score_tooltip() -> list:
    return [alt.Tooltip("feature:N"), alt.Tooltip("method:N"), alt.Tooltip("score:Q", format=".4~g"),
            alt.Tooltip("threshold:Q", format="~g"), alt.Tooltip("p:N", title="p-value"),
            alt.Tooltip("null_change:N", title="null-rate change"), alt.Tooltip("unseen:N", title="unseen share"),
            alt.Tooltip("verdict:N"), alt.Tooltip("why:N")]


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
        color=_side_color(),
        strokeWidth=alt.condition("datum.new", alt.value(2), alt.value(0)),
        tooltip=[alt.Tooltip("bucket:N"), alt.Tooltip("data:N"), alt.Tooltip("share:Q", format=".2%"),
                 alt.Tooltip("new:N", title="reference never had it")],
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
        color=_side_color(),
        strokeWidth=alt.condition("datum.new", alt.value(1.5), alt.value(0)),
        tooltip=[alt.Tooltip("bucket:N"), alt.Tooltip("data:N"), alt.Tooltip("share:Q", format=".2%"),
                 alt.Tooltip("new:N", title="outside the reference range")],
    )
    return chart.properties(width=width, height=height, title=_dist_title(feature))


def _side_color() -> alt.Color:
    return alt.Color("data:N", scale=alt.Scale(domain=["reference", "current"], range=[_GREY, _ORANGE]),
                     legend=alt.Legend(title=None, orient="top"))


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


# -- metric history -----------------------------------------------------------------------------------
def metric_history(runs: pd.DataFrame, metric: str, *, threshold: float | None = None,
                   greater_is_better: bool | None = None, max_points: int = MAX_POINTS,
                   selected: str | None = None, title: str | None = None,
                   width: int = 560, height: int = 240) -> alt.TopLevelMixin:
    """``metric`` of each run over start time, with the threshold rule, best run and champion.

    ``runs``: one row per run, as ``mlflow.search_runs()`` returns (``run_id``,
    ``start_time``, ``status``, ``metrics.<name>``, ``params.<name>``,
    ``tags.mlflow.runName``) or as ``HistoryWidget`` loads it (adds ``run_name``,
    ``kind``, ``params``, ``data`` and ``champion``). Runs below the threshold (above it
    when lower is better) are red. With more than ``max_points`` runs the chart keeps the
    highest and lowest run of each time slice plus the best, champion, selected and latest
    runs, and says so. Clicking a point selects its run (selection ``run_pick``).
    """
    frame = history_frame(runs, metric)
    gib = greater_is_better if greater_is_better is not None else not lower_is_better(metric)
    frame = mark_runs(frame, threshold, gib, selected)
    shown = thin_runs(frame, max_points)
    layers = _history_layers(shown, metric, threshold, width)
    chart = alt.layer(*layers).properties(width=width, height=height)
    head = title or f"{metric} over {len(frame):,} runs"
    note = _history_note(frame, metric, gib)
    if len(shown) < len(frame):
        note.append(f"showing {len(shown):,} of {len(frame):,} runs: the highest and lowest of each time slice, "
                    "plus the best, champion and latest")
    return chart.properties(title=alt.TitleParams(head, subtitle=note or alt.Undefined, anchor="start", fontSize=13))


def lower_is_better(metric: str) -> bool:
    """Loss-like metric names (loss, error, rmse, mae, mse, ...) are minimised."""
    name = metric.lower()
    return any(k in name for k in ("loss", "error", "rmse", "mse", "mae", "mape", "perplexity", "logloss"))


def history_frame(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per run that has ``metric``: run_id, run_name, start_time, value, kind,
    status, params, data, champion; from either frame layout ``metric_history`` takes."""
    col = metric if metric in runs else f"metrics.{metric}"
    if col not in runs or not len(runs):
        empty = pd.DataFrame(columns=["run_id", "run_name", "value", "kind", "status", "params", "data", "champion"])
        return empty.assign(start_time=pd.Series(dtype="datetime64[ns, UTC]"), value=pd.Series(dtype=float))
    value = pd.to_numeric(runs[col], errors="coerce")
    keep = value.notna() & np.isfinite(value.astype(float))
    r = runs.loc[keep]
    out = pd.DataFrame({"run_id": r["run_id"].astype(str), "value": value[keep].astype(float)})
    out["start_time"] = _times(r["start_time"])
    out["run_name"] = _column(r, ("run_name", "tags.mlflow.runName"), "")
    out["kind"] = _column(r, ("kind", "tags.mlops.kind"), "run")
    out["status"] = _column(r, ("status",), "FINISHED")
    out["params"] = r["params"].astype(str) if "params" in r else _join_params(r)
    out["data"] = _column(r, ("data",), "")
    out["champion"] = _column(r, ("champion",), "")
    return out.sort_values("start_time", kind="stable").reset_index(drop=True)


def _times(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_datetime(s, unit="ms", utc=True)
    return pd.to_datetime(s, utc=True)


def _column(r: pd.DataFrame, names: tuple[str, ...], default: str) -> pd.Series:
    for name in names:
        if name in r:
            return r[name].fillna(default).astype(str)
    return pd.Series(default, index=r.index, dtype=object)


def _join_params(r: pd.DataFrame, limit: int = 12) -> pd.Series:
    cols = sorted(c for c in r.columns if c.startswith("params."))[:limit]
    out = pd.Series("", index=r.index, dtype=object)
    for c in cols:
        name, v = c[len("params."):], r[c]
        piece = (name + "=" + v.astype(str)).where(v.notna(), "")
        out = out.str.cat(piece, sep=" ").str.strip()
    return out


def mark_runs(frame: pd.DataFrame, threshold: float | None, greater_is_better: bool,
              selected: str | None = None) -> pd.DataFrame:
    """Adds ``best`` (the argmax, argmin when lower is better), ``below`` (on the wrong
    side of the threshold), ``state`` (the colour legend) and ``selected``."""
    f = frame.copy()
    f["best"] = False
    if len(f):
        f.loc[f["value"].idxmax() if greater_is_better else f["value"].idxmin(), "best"] = True
    if threshold is None:
        f["below"] = False
    else:
        f["below"] = f["value"] < threshold if greater_is_better else f["value"] > threshold
    word = "below" if greater_is_better else "above"
    state = np.where(f["status"] == "FAILED", "failed",
                     np.where(f["below"], f"{word} threshold", f["kind"].astype(str)))
    f["state"] = state
    f["selected"] = f["run_id"] == selected if selected else False
    return f


def thin_runs(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """At most about ``max_points`` runs: the highest and lowest of each of
    ``max_points // 2`` equal time slices, plus every best, champion, selected and the
    latest run. Vectorised: 10,000 runs take milliseconds."""
    n = len(frame)
    if n <= max_points:
        return frame
    t = frame["start_time"].astype("int64").to_numpy()
    slices = max(1, max_points // 2)
    lo, hi = t.min(), t.max()
    slot = np.minimum(((t - lo) / max(hi - lo, 1) * slices).astype(np.int64), slices - 1)
    g = pd.DataFrame({"slot": slot, "value": frame["value"].to_numpy()}, index=frame.index)
    keep = set(g.groupby("slot")["value"].idxmax()) | set(g.groupby("slot")["value"].idxmin())
    notable = frame["best"] | frame["selected"] | (frame["champion"] != "")
    keep |= set(frame.index[notable.to_numpy()]) | {frame.index[-1]}
    return frame.loc[sorted(keep)]


_ROW_FIELDS = ["run_id", "run_name", "start_time", "value", "state", "params", "data"]


def _history_layers(f: pd.DataFrame, metric: str, threshold: float | None, width: int) -> list:
    """Points for every run shown (only the fields the tooltip needs, times as epoch ms,
    so 1,000 runs stay near 200 kB of spec); best, champion and selected runs as small
    separate layers."""
    rows = f[_ROW_FIELDS].copy()
    rows["start_time"] = (f["start_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    pick = alt.selection_point(name=RUN_PICK, fields=["run_id"], on="click", clear="dblclick")
    x = alt.X("start_time:T", title="run start")
    y = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False))
    tooltip = [alt.Tooltip("run_name:N", title="run"), alt.Tooltip("run_id:N"),
               alt.Tooltip("value:Q", title=metric, format=".4~g"),
               alt.Tooltip("start_time:T", title="started", format="%Y-%m-%d %H:%M:%S"),
               alt.Tooltip("state:N"), alt.Tooltip("params:N"), alt.Tooltip("data:N", title="data fingerprint")]
    states = sorted(rows["state"].unique()) if len(rows) else []
    colors = [_RED if s.endswith("threshold") else _GREY if s == "failed" else
              (_BLUE if s == "cell" else "#17becf" if s == "job" else "#6a51a3") for s in states]
    base = alt.Chart(rows).encode(x=x, y=y)
    line = base.mark_line(color="#bbb", strokeWidth=1)
    points = base.mark_circle(size=60 if len(rows) <= 300 else 20, cursor="pointer").encode(
        color=alt.Color("state:N", scale=alt.Scale(domain=states, range=colors),
                        legend=alt.Legend(title=None, orient="top")),
        opacity=alt.condition(pick, alt.value(0.95), alt.value(0.3)),
        tooltip=tooltip,
    ).add_params(pick)
    layers = [line, points]
    marks = rows.assign(champion=f["champion"].to_numpy())
    best = alt.Chart(marks[f["best"].to_numpy()]).encode(x=x, y=y)
    layers += [best.mark_point(shape="diamond", size=260, filled=True, color="#f2b01e", stroke="black",
                               strokeWidth=1).encode(tooltip=tooltip),
               best.mark_text(dy=-16, fontWeight="bold", fontSize=11).encode(text=alt.Text("value:Q", format=".4~g"))]
    champ = marks[(f["champion"] != "").to_numpy()]
    if len(champ):
        c = alt.Chart(champ).encode(x=x, y=y)
        layers += [c.mark_point(shape="circle", size=420, filled=False, color="#6a1b9a", strokeWidth=2.5)
                   .encode(tooltip=[*tooltip, alt.Tooltip("champion:N")]),
                   c.mark_text(dy=22, color="#6a1b9a", fontSize=11).encode(text="champion:N")]
    chosen = marks[f["selected"].to_numpy()]
    if len(chosen):
        layers.append(alt.Chart(chosen).mark_point(size=180, filled=False, color="black", strokeWidth=2)
                      .encode(x=x, y=y, tooltip=tooltip))
    if threshold is not None and math.isfinite(threshold):
        rule = alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        layers.append(rule.mark_rule(color=_RED, strokeDash=[6, 4]).encode(y="threshold:Q"))
        layers.append(rule.mark_text(align="right", dy=-7, color=_RED, fontSize=11).encode(
            y="threshold:Q", x=alt.value(width - 2), text=alt.value(f"threshold {threshold:g}")))
    return layers


def _history_note(f: pd.DataFrame, metric: str, gib: bool) -> list[str]:
    if not len(f):
        return [f"no run has {metric} yet"]
    best = f.loc[f["best"]].iloc[0]
    notes = [f"best {metric} {best['value']:.4g} ({best['run_name'] or best['run_id'][:8]})"]
    champs = f.loc[f["champion"] != ""]
    for _, c in champs.iterrows():
        notes.append(f"{c['champion']}: {metric} {c['value']:.4g} ({c['run_name'] or c['run_id'][:8]})")
    n_below = int(f["below"].sum())
    if n_below:
        notes.append(f"{n_below} run{'s' if n_below > 1 else ''} {'below' if gib else 'above'} the threshold")
    return ["; ".join(notes)]


def _round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    scale = np.where(x == 0, 0, np.floor(np.log10(np.abs(np.where(x == 0, 1, x)))))
    factor = 10.0 ** (digits - 1 - scale)
    return np.round(x * factor) / factor


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else ""
