"""A metric across runs, as one Altair chart: ``metric_history(runs, "f1")``.

Read at a glance: x is the run sequence (1, 2, 3, ... in the order the runs started; the
dates in the axis title), or the date when the runs span days; points coloured by what
ran them (cell, job, sweep point, scheduled, retrain, from the ``mlops.*`` tags); lines
only within one series (one cell's re-runs, one schedule's runs); the best run and the
champion labelled in bands kept free above and below the points, so labels never sit on
a point, a tick or the axis; the wrong side of the threshold shaded; a clicked point
grows and gets a black outline. ``slices=True`` adds one line per ``<metric>.slice.<group>``.
"""

from __future__ import annotations

import math
from datetime import datetime

import altair as alt
import numpy as np
import pandas as pd

from .. import naming

RUN_PICK = "run_pick"
MAX_POINTS = 1000  # above this many runs the history keeps the extremes per time slice
TIME_AXIS_DAYS = 2  # runs spanning at least this many days: x is the date, else the run sequence

CELL, JOB, SWEEP_POINT, SCHEDULED, RETRAIN, RUN = "cell", "job", "sweep point", "scheduled", "retrain", "run"
KINDS = (CELL, JOB, SWEEP_POINT, SCHEDULED, RETRAIN, RUN)
KIND_COLORS = {CELL: "#1f77b4", JOB: "#17becf", SWEEP_POINT: "#e377c2", SCHEDULED: "#ff7f0e",
               RETRAIN: "#2ca02c", RUN: "#7f7f7f"}
_RED, _GOLD, _PURPLE = "#c62828", "#f2b01e", "#6a1b9a"
_BAND = 0.3  # share of the data's span kept free above and below the points for the labels

# Where the kinds come from: our column name (HistoryWidget's loader) or MLflow's search_runs one.
_KIND_COLUMNS = ("kind", f"tags.{naming.KIND}")
_SWEEP_COLUMNS = ("sweep", f"tags.{naming.PARENT_SWEEP}")
_SCHEDULE_COLUMNS = ("schedule", f"tags.{naming.SCHEDULE}")
_TRIGGER_COLUMNS = ("triggered_by", f"tags.{naming.TRIGGERED_BY}")


def metric_history(runs: pd.DataFrame, metric: str, *, threshold: float | None = None,
                   greater_is_better: bool | None = None, max_points: int = MAX_POINTS,
                   selected: str | None = None, title: str | None = None, slices: bool = False,
                   width: int = 560, height: int = 240) -> alt.TopLevelMixin:
    """``metric`` of each run, in order, with the threshold, the best run and the champion.

    ``runs``: one row per run, as ``mlflow.search_runs()`` returns (``run_id``,
    ``start_time``, ``status``, ``metrics.<name>``, ``params.<name>``, ``tags.<name>``)
    or as ``HistoryWidget`` loads it (``run_name``, ``kind``, ``params``, ``data``,
    ``champion`` and, when known, ``sweep``, ``schedule``, ``triggered_by``). Runs on the
    wrong side of the threshold sit in a shaded band. With more than ``max_points`` runs
    the chart keeps the highest and lowest run of each time slice plus the best, champion,
    selected and latest runs, and says so. Clicking a point selects its run (selection
    ``run_pick``). ``slices=True`` puts a chart of ``<metric>.slice.<group>`` under it.
    """
    frame = history_frame(runs, metric)
    gib = greater_is_better if greater_is_better is not None else not lower_is_better(metric)
    frame = mark_runs(frame, threshold, gib, selected)
    shown = thin_runs(frame, max_points)
    x = _XAxis(shown, width)
    layers = _history_layers(shown, metric, threshold, gib, x, width, height)
    chart = alt.layer(*layers).properties(width=width, height=height)
    head = title or f"{metric} over {len(frame):,} runs"
    note = _history_note(frame, metric, gib)
    if len(shown) < len(frame):
        note.append(f"showing {len(shown):,} of {len(frame):,} runs: the highest and lowest of each time slice, "
                    "plus the best, champion and latest")
    chart = chart.properties(title=alt.TitleParams(head, subtitle=note or alt.Undefined, anchor="start", fontSize=13))
    if slices:
        chart = alt.vconcat(chart, slice_history(runs, metric, width=width), spacing=24).resolve_scale(
            color="independent").resolve_legend(color="independent")
    return chart


def lower_is_better(metric: str) -> bool:
    """Loss-like metric names (loss, error, rmse, mae, mse, ...) are minimised."""
    name = metric.lower()
    return any(k in name for k in ("loss", "error", "rmse", "mse", "mae", "mape", "perplexity", "logloss"))


# -- the frame -----------------------------------------------------------------------------------
def history_frame(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per run that has ``metric``, oldest first: run_id, run_name, start_time,
    value, kind, series, status, params, data, champion, seq (1, 2, ...), started (local
    time, as text); from either frame layout ``metric_history`` takes."""
    col = metric if metric in runs else f"metrics.{metric}"
    if col not in runs or not len(runs):
        empty = pd.DataFrame(columns=["run_id", "run_name", "kind", "series", "status", "params", "data",
                                      "champion", "started"])
        return empty.assign(start_time=pd.Series(dtype="datetime64[ns, UTC]"), value=pd.Series(dtype=float),
                            seq=pd.Series(dtype=np.int64))
    value = pd.to_numeric(runs[col], errors="coerce")
    keep = value.notna() & np.isfinite(value.astype(float))
    r = runs.loc[keep]
    out = pd.DataFrame({"run_id": r["run_id"].astype(str), "value": value[keep].astype(float)})
    out["start_time"] = _times(r["start_time"])
    out["run_name"] = _column(r, ("run_name", "tags.mlflow.runName"), "")
    out["kind"] = run_kinds(r)
    out["series"] = _series(out["kind"], out["run_name"], _column(r, _SCHEDULE_COLUMNS, ""))
    out["status"] = _column(r, ("status",), "FINISHED")
    out["params"] = r["params"].astype(str) if "params" in r else _join_params(r)
    out["data"] = _column(r, ("data",), "")
    out["champion"] = _column(r, ("champion",), "")
    out = out.sort_values("start_time", kind="stable").reset_index(drop=True)
    out["seq"] = np.arange(1, len(out) + 1)
    local = out["start_time"].dt.tz_convert(datetime.now().astimezone().tzinfo)
    out["started"] = local.dt.strftime("%Y-%m-%d %H:%M:%S")
    return out


def run_kinds(runs: pd.DataFrame) -> pd.Series:
    """What ran each run, from the ``mlops.*`` tags: ``retrain`` (started by an alert,
    ``mlops.triggered_by``), ``scheduled`` (``mlops.schedule``), ``sweep point``
    (``mlops.sweep``), else ``cell`` or ``job`` (``mlops.kind``), else ``run``."""
    kind = _column(runs, _KIND_COLUMNS, RUN)
    out = kind.where(kind.isin(KINDS), RUN)
    for columns, label in ((_SWEEP_COLUMNS, SWEEP_POINT), (_SCHEDULE_COLUMNS, SCHEDULED),
                           (_TRIGGER_COLUMNS, RETRAIN)):  # later wins: a triggered scheduled job is a retrain
        out = out.where(~_present(runs, columns), label)
    return out.astype(str)


def _series(kind: pd.Series, name: pd.Series, schedule: pd.Series) -> pd.Series:
    """Which runs a line joins: one cell's (or job's) runs by name, one schedule's runs;
    sweep points are alternatives, not a sequence: no line."""
    label = np.where(kind == SCHEDULED, "scheduled: " + schedule, kind + ": " + name)
    return pd.Series(np.where(kind == SWEEP_POINT, "", label), index=kind.index, dtype=object)


def _present(r: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    for name in names:
        if name in r:
            v = r[name]
            return v.notna() & (v.astype(str).str.strip() != "")
    return pd.Series(False, index=r.index)


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
    side of the threshold), ``state`` (below/above threshold, failed, ok) and ``selected``."""
    f = frame.copy()
    f["best"] = False
    if len(f):
        f.loc[f["value"].idxmax() if greater_is_better else f["value"].idxmin(), "best"] = True
    if threshold is None:
        f["below"] = False
    else:
        f["below"] = f["value"] < threshold if greater_is_better else f["value"] > threshold
    word = "below" if greater_is_better else "above"
    f["state"] = np.where(f["status"] == "FAILED", "failed", np.where(f["below"], f"{word} threshold", "ok"))
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


# -- the x axis --------------------------------------------------------------------------------
class _XAxis:
    """The run sequence, or dates when the runs span ``TIME_AXIS_DAYS`` or more: the
    encoding, and where a run sits across the plot (0 left, 1 right) to place labels."""

    def __init__(self, f: pd.DataFrame, width: int) -> None:
        times = f["start_time"]
        span = times.max() - times.min() if len(f) else pd.Timedelta(0)
        self.by_time = bool(len(f)) and span >= pd.Timedelta(days=TIME_AXIS_DAYS)
        self.n = int(f["seq"].max()) if len(f) else 1
        self.t0 = times.min() if len(f) else None
        self.span = span
        self.first, self.last = (f["started"].iloc[0], f["started"].iloc[-1]) if len(f) else ("", "")

    def encoding(self) -> alt.X:
        if self.by_time:
            days = self.span / pd.Timedelta(days=1)
            unit, step = ("day", max(1, math.ceil(days / 8))) if days <= 240 else \
                ("month", max(1, math.ceil(days / 240)))
            fmt = "%b %d" if days <= 360 else "%b %Y"
            return alt.X("t:T", title="run start (date)", scale=alt.Scale(padding=14),
                         axis=alt.Axis(format=fmt, tickCount={"interval": unit, "step": step}, labelFlush=True,
                                       grid=False))
        first, last = self.first[:16], self.last[:16]
        last = last[11:] if last[:10] == first[:10] else last  # one day: the date once
        span = f" ({first} to {last})" if first else ""
        return alt.X("seq:Q", title=f"run, in the order started{span}",
                     scale=alt.Scale(domain=[0.5, self.n + 0.5], nice=False, zero=False),
                     axis=alt.Axis(format="d", tickMinStep=1, grid=False, labelFlush=True))

    def fraction(self, row) -> float:
        if self.by_time:
            return float((row["start_time"] - self.t0) / self.span) if self.span > pd.Timedelta(0) else 0.5
        return (float(row["seq"]) - 0.5) / self.n


# -- the layers ----------------------------------------------------------------------------------
_ROW_FIELDS = ["run_id", "run_name", "seq", "start_time", "started", "value", "kind", "series", "state", "params",
               "data"]


def _history_layers(f: pd.DataFrame, metric: str, threshold: float | None, gib: bool, x_axis: _XAxis,
                    width: int, height: int) -> list:
    """Points for every run shown (only the fields the tooltip needs, times as epoch ms,
    so 1,000 runs stay near 250 kB of spec); lines within a series; best, champion and
    selected runs and their labels as small separate layers."""
    rows = f[_ROW_FIELDS].copy()
    rows["t"] = (f["start_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    rows = rows.drop(columns=["start_time"])
    counts = rows.loc[rows["series"] != "", "series"].value_counts()
    rows["line"] = rows["series"].map(counts).fillna(0).to_numpy() >= 2
    lo, hi = _domain(f["value"], threshold)
    pick = alt.selection_point(name=RUN_PICK, fields=["run_id"], on="click", clear="dblclick")
    x = x_axis.encoding()
    y = alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[lo, hi], nice=False, zero=False),
              axis=alt.Axis(tickCount=6))
    tooltip = [alt.Tooltip("run_name:N", title="run"), alt.Tooltip("run_id:N"),
               alt.Tooltip("value:Q", title=metric, format=".4~g"), alt.Tooltip("seq:Q", title="run #"),
               alt.Tooltip("started:N"), alt.Tooltip("kind:N"), alt.Tooltip("state:N"),
               alt.Tooltip("params:N"), alt.Tooltip("data:N", title="data fingerprint")]
    kinds = [k for k in KINDS if k in set(rows["kind"])]
    palette = alt.Scale(domain=kinds, range=[KIND_COLORS[k] for k in kinds])
    color = alt.Color("kind:N", scale=palette, legend=alt.Legend(title=None, orient="top", symbolType="circle"))
    layers = []
    if threshold is not None and math.isfinite(threshold):
        edge = lo if gib else hi
        band = alt.Chart(pd.DataFrame({"a": [min(edge, threshold)], "b": [max(edge, threshold)]}))
        layers.append(band.mark_rect(color=_RED, opacity=0.06).encode(
            y="a:Q", y2="b:Q", x=alt.value(0), x2=alt.value(width)))
    base = alt.Chart(rows).encode(x=x, y=y)
    layers.append(base.transform_filter("datum.line").mark_line(strokeWidth=1.2, opacity=0.5).encode(
        detail="series:N", color=color, order="seq:Q"))
    small = len(rows) <= 300
    layers.append(base.mark_circle(cursor="pointer").encode(
        color=color,
        size=alt.when(pick, empty=False).then(alt.value(260 if small else 120))
        .otherwise(alt.value(70 if small else 22)),
        stroke=alt.when(pick, empty=False).then(alt.value("black")).otherwise(alt.value("white")),
        strokeWidth=alt.when(pick, empty=False).then(alt.value(2.5)).otherwise(alt.value(0.6)),
        opacity=alt.when(pick).then(alt.value(0.95)).otherwise(alt.value(0.5)),
        tooltip=tooltip,
    ).add_params(pick).properties(name="history_points"))
    layers += _marks(f, rows, metric, gib, x_axis, x, y, tooltip, (lo, hi), (width, height), threshold)
    if threshold is not None and math.isfinite(threshold):
        rule = alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        layers.append(rule.mark_rule(color=_RED, strokeDash=[6, 4]).encode(y="threshold:Q"))
        layers.append(rule.mark_text(align="right", baseline="bottom", dy=-3, color=_RED, fontSize=11).encode(
            y="threshold:Q", x=alt.value(width - 4), text=alt.value(f"threshold {threshold:g}")))
    return layers


def _domain(values: pd.Series, threshold: float | None) -> tuple[float, float]:
    """The y range: the values and the threshold, plus a free band above and below for labels."""
    v = values.to_numpy(dtype=float)
    points = np.concatenate([v, [threshold]]) if threshold is not None and math.isfinite(threshold) else v
    if not len(points):
        return 0.0, 1.0
    lo, hi = float(points.min()), float(points.max())
    span = hi - lo if hi > lo else max(abs(hi) * 0.1, 0.01)
    return lo - span * _BAND, hi + span * _BAND


def _marks(f, rows, metric, gib, x_axis: _XAxis, x, y, tooltip, domain, size, threshold) -> list:
    """The best run (diamond), the champion (ring) and the selected run (black ring), and
    labels for the first two placed where they cover no point, no other label, the
    threshold's text, and stay inside the plot (never over a tick or an axis)."""
    marks = rows.assign(champion=f["champion"].to_numpy())
    layers = [alt.Chart(marks[f["best"].to_numpy()]).mark_point(
        shape="diamond", size=260, filled=True, color=_GOLD, stroke="black", strokeWidth=1).encode(
        x=x, y=y, tooltip=tooltip)]
    champions = (f["champion"] != "").to_numpy()
    if champions.any():
        layers.append(alt.Chart(marks[champions]).mark_point(
            shape="circle", size=420, filled=False, color=_PURPLE, strokeWidth=2.5)
            .encode(x=x, y=y, tooltip=[*tooltip, alt.Tooltip("champion:N")]))
    placer = _Placer(f, x_axis, domain, size, threshold)
    todo = []
    for _, b in f[f["best"].to_numpy()].iterrows():
        text = f"best {metric} {b['value']:.4g}" + (f" · {b['champion']}" if b["champion"] else "")
        todo.append((b, text, "black", "bold", "above" if gib else "below"))
    for _, c in f[champions & ~f["best"].to_numpy()].iterrows():
        todo.append((c, f"{c['champion']} ({metric} {c['value']:.4g})", _PURPLE, "normal", None))
    for row, text, color, weight, prefer in todo:
        dx, dy, align, baseline = placer.place(row, text, weight == "bold", prefer)
        label = pd.DataFrame({"x": [_x_value(row, x_axis)], "y": [row["value"]], "text": [text]})
        layers.append(alt.Chart(label).mark_text(
            fontSize=11, align=align, baseline=baseline, dx=dx, dy=dy, color=color, fontWeight=weight).encode(
            x=alt.X("x:T" if x_axis.by_time else "x:Q"), y="y:Q", text="text:N"))
    chosen = marks[f["selected"].to_numpy()]
    if len(chosen):
        layers.append(alt.Chart(chosen).mark_point(size=180, filled=False, color="black", strokeWidth=2)
                      .encode(x=x, y=y, tooltip=tooltip))
    return layers


class _Placer:
    """Label placement in pixels: each label takes the first spot around its point (above,
    below, right, left, then the diagonals) whose box stays inside the plot and covers no
    point, no earlier label and not the threshold's text; else the spot covering least."""

    _GAP = 13  # px from the point's centre: clear of the champion's ring

    def __init__(self, f: pd.DataFrame, x_axis: _XAxis, domain, size, threshold) -> None:
        self.width, self.height = size
        self.x_axis, (self.lo, self.hi) = x_axis, domain
        self.points = np.array([self.px(r) for _, r in f.iterrows()]) if len(f) else np.zeros((0, 2))
        self.taken: list[tuple[float, float, float, float]] = []
        if threshold is not None and math.isfinite(threshold):
            ty = self._py(threshold)
            self.taken.append((self.width - 100, ty - 18, self.width, ty))  # "threshold 0.8"

    def _py(self, value: float) -> float:
        return (self.hi - value) / (self.hi - self.lo) * self.height

    def px(self, row) -> tuple[float, float]:
        frac = self.x_axis.fraction(row)
        x = 14 + frac * (self.width - 28) if self.x_axis.by_time else frac * self.width
        return x, self._py(row["value"])

    def place(self, row, text: str, bold: bool, prefer: str | None) -> tuple[int, int, str, str]:
        x, y = self.px(row)
        w, h, g = len(text) * (6.8 if bold else 6.1) + 4, 14, self._GAP
        spots = {  # name: (dx, dy, align, baseline, box)
            "above": (0, -g, "center", "bottom", (x - w / 2, y - g - h, x + w / 2, y - g)),
            "below": (0, g, "center", "top", (x - w / 2, y + g, x + w / 2, y + g + h)),
            "right": (g, 0, "left", "middle", (x + g, y - h / 2, x + g + w, y + h / 2)),
            "left": (-g, 0, "right", "middle", (x - g - w, y - h / 2, x - g, y + h / 2)),
            "above right": (-4, -g, "left", "bottom", (x - 4, y - g - h, x - 4 + w, y - g)),
            "above left": (4, -g, "right", "bottom", (x + 4 - w, y - g - h, x + 4, y - g)),
            "below right": (-4, g, "left", "top", (x - 4, y + g, x - 4 + w, y + g + h)),
            "below left": (4, g, "right", "top", (x + 4 - w, y + g, x + 4, y + g + h)),
        }
        order = list(spots)
        if prefer:  # the best's label goes on the free side first, shifted inwards near an edge
            order = sorted(order, key=lambda k: (not k.startswith(prefer), k != prefer))
        scored = []
        for i, name in enumerate(order):
            dx, dy, align, baseline, box = spots[name]
            inside = box[0] >= 2 and box[2] <= self.width - 2 and box[1] >= 2 and box[3] <= self.height - 2
            cost = self._covers(box) + (0 if inside else 100)
            scored.append((cost, i, name))
            if cost == 0:
                break
        _, _, name = min(scored)
        dx, dy, align, baseline, box = spots[name]
        self.taken.append(box)
        return dx, dy, align, baseline

    def _covers(self, box) -> int:
        x0, y0, x1, y1 = box
        r = 6
        px, py = self.points[:, 0], self.points[:, 1]
        hits = int(np.sum((px > x0 - r) & (px < x1 + r) & (py > y0 - r) & (py < y1 + r)))
        return hits + sum(10 for a in self.taken if not (x1 < a[0] or a[2] < x0 or y1 < a[1] or a[3] < y0))


def _x_value(row, x_axis: _XAxis):
    if x_axis.by_time:
        return int((row["start_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    return int(row["seq"])


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


# -- slices --------------------------------------------------------------------------------------
def slice_history(runs: pd.DataFrame, metric: str, *, width: int = 560, height: int = 180) -> alt.TopLevelMixin:
    """One line per group of ``<metric>.slice.<group>`` (``mm.log_slices``), on the same x
    as ``metric_history`` (runs that have ``metric``), the worst slice of the latest run
    named in the subtitle."""
    frame = history_frame(runs, metric)
    prefix = naming.metric_slice(metric, "x")[:-1]  # "<metric>.slice."
    columns = {c: c.split(prefix, 1)[1] for c in runs.columns
               if c.startswith((prefix, f"metrics.{prefix}")) and c.split(prefix, 1)[1]}
    title = f"{metric} by slice"
    if not columns or not len(frame):
        note = pd.DataFrame({"text": [f"no run logged {prefix}<group> metrics (mm.log_slices)"]})
        return alt.Chart(note).mark_text(color="#666", align="left").encode(text="text:N", x=alt.value(0)).properties(
            width=width, height=24, title=alt.TitleParams(title, anchor="start", fontSize=13))
    ids = runs["run_id"].astype(str)
    long = []
    for column, group in columns.items():
        v = pd.to_numeric(runs[column], errors="coerce")
        long.append(pd.DataFrame({"run_id": ids, "group": group, "value": v}).dropna(subset=["value"]))
    data = pd.concat(long, ignore_index=True).merge(
        frame[["run_id", "seq", "start_time", "started", "run_name"]], on="run_id", how="inner")
    data["t"] = (data["start_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    data = data.drop(columns=["start_time"]).sort_values(["group", "seq"])
    x = _XAxis(frame, width).encoding()
    values = data["value"].to_numpy(dtype=float)
    lo, hi = _domain(pd.Series(values), None) if len(values) else (0.0, 1.0)
    y = alt.Y("value:Q", title=f"{metric} per slice", scale=alt.Scale(domain=[lo, hi], nice=False, zero=False))
    color = alt.Color("group:N", legend=alt.Legend(title="slice", orient="right"))
    tip = [alt.Tooltip("group:N", title="slice"), alt.Tooltip("value:Q", title=metric, format=".4~g"),
           alt.Tooltip("run_name:N", title="run"), alt.Tooltip("seq:Q", title="run #"), alt.Tooltip("started:N")]
    base = alt.Chart(data).encode(x=x, y=y, color=color)
    chart = alt.layer(base.mark_line(strokeWidth=1.5, point=alt.OverlayMarkDef(size=30)).encode(
        detail="group:N", order="seq:Q", tooltip=tip))
    latest = data[data["seq"] == data["seq"].max()]
    worst = latest.loc[latest["value"].idxmin()]
    sub = (f"{len(columns)} groups; latest run: worst slice {worst['group']} {worst['value']:.4g}, "
           f"gap {latest['value'].max() - worst['value']:.4g}")
    return chart.properties(width=width, height=height,
                            title=alt.TitleParams(title, subtitle=sub, anchor="start", fontSize=13))
