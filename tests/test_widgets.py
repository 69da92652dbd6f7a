"""The drift and history widgets without a browser: chart specs via to_dict(), clicks
simulated by setting the synced selection traits as the front end does, the static
fallback, what the saved widget state holds, the kernel-served JavaScript, and the
%drift / %history magics in a fresh shell (real MLflow on a temporary SQLite store)."""

from __future__ import annotations

import html
import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from conftest import last_bundle, run

if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):  # in CI a missing extra fails
    for _module in ("altair", "anywidget", "ipywidgets", "vl_convert"):
        pytest.importorskip(_module, reason="pip install 'mlops-magics[widgets]'")

import ipywidgets  # noqa: E402

import mlops_magics as mm  # noqa: E402
from mlops_magics import naming  # noqa: E402
from mlops_magics.widgets import DriftWidget, HistoryWidget, charts  # noqa: E402
from mlops_magics.widgets.offline_chart import BUNDLE_KEY, VegaChart  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# -- data -------------------------------------------------------------------------------------
def frames(n: int = 3000, seed: int = 7):
    """Reference and current data: age shifts, city gains a new category, income gains
    missing values, tenure stays put."""
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 1, n),
                        "city": rng.choice(list("abcd"), n), "tenure": rng.integers(0, 4, n)})
    cur = pd.DataFrame({"age": rng.normal(46, 10, n), "income": rng.lognormal(10, 1, n),
                        "city": rng.choice(list("abce"), n), "tenure": rng.integers(0, 4, n)})
    cur.loc[: n // 8, "income"] = np.nan
    return ref, cur


def click(chart: VegaChart, selection: str, field: str, value: str) -> None:
    """What the front end sends when a point of a point selection is clicked."""
    chart._vl_selections = {selection: {"value": {field: [value], "vlPoint": {"or": [{field: value}]}},
                                        "store": [{"unit": "", "fields": [{"field": field, "type": "E"}],
                                                   "values": [value]}]}}


def widget_state(*roots) -> str:
    """The saved widget state of these widgets and every widget they hold, as JSON."""
    seen, stack, state = set(), list(roots), {}
    while stack:
        w = stack.pop()
        if w.model_id in seen:
            continue
        seen.add(w.model_id)
        state[w.model_id] = w.get_state()
        stack.extend(v for v in _children(w))
    return json.dumps(state, default=str)


def _children(w):
    for name in w.keys:
        value = getattr(w, name, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        yield from (v for v in values if isinstance(v, ipywidgets.Widget))


# -- charts: drift --------------------------------------------------------------------------------
def panels_of(spec: dict) -> list[dict]:
    """The per-method panels of a drift_scores spec (one layer chart, or a vconcat of them)."""
    return spec["vconcat"] if "vconcat" in spec else [spec]


def test_drift_scores_chart_sorts_colours_and_draws_the_rule():
    ref, cur = frames()
    report = mm.drift(ref, cur, method="psi")

    spec = charts.drift_scores(report.table, title=report.verdict).to_dict()

    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == 4  # one row per feature, nothing else
    by_feature = {r["feature"]: r for r in rows}
    assert by_feature["age"]["verdict"] == "drifted" and by_feature["tenure"]["verdict"] == "not drifted"
    assert by_feature["income"]["null_rate_change"] > 0.1 and by_feature["income"]["null_change"] == "+12.5%"
    bars, labels, rule = spec["layer"]
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["y"]["sort"] == {"field": "evidence", "order": "descending"}
    assert bars["encoding"]["color"]["scale"]["domain"] == ["drifted", "not drifted"]
    assert {t["field"] for t in bars["encoding"]["tooltip"]} >= {"method", "score", "when", "null_change"}
    assert bars["encoding"]["x"]["title"] == "PSI: drift when >= 0.1, past the rule"  # what the bar is
    assert {r["when"] for r in rows} == {"PSI >= 0.1"}  # the tooltip says the same rule
    assert rule["mark"]["type"] == "rule" and rule["encoding"]["x"]["field"] == "rule"
    assert all(r["rule"] == pytest.approx(0.1) for r in rows)
    # the value labels start right of the bar ends, inside a domain made 20% longer than the longest bar
    assert labels["mark"]["align"] == "left" and labels["mark"]["dx"] > 0
    assert bars["encoding"]["x"]["scale"]["domain"] == [0, pytest.approx(1.2 * max(r["evidence"] for r in rows))]
    assert [p["name"] for p in spec["params"]] == [charts.FEATURE_PICK]
    assert bars["name"] in spec["params"][0]["views"]  # the clickable layer is the bars
    assert spec["title"]["text"] == report.verdict


def test_test_methods_plot_minus_log10_p_with_titled_axes_per_method():
    ref, cur = frames(n=500)  # <= 1,000 rows: auto picks ks and chi2
    table = mm.drift(ref, cur, threshold={"ks": 0.01}).table

    spec = charts.drift_scores(table).to_dict()

    rows = {r["feature"]: r for data in spec["datasets"].values() for r in data}  # one data set per panel
    age = table.set_index("feature").loc["age"]
    assert age["method"] == "ks"
    assert rows["age"]["evidence"] == pytest.approx(-np.log10(age["p_value"]))
    assert rows["age"]["rule"] == pytest.approx(2.0) and rows["age"]["when"] == "p <= 0.01"
    assert rows["city"]["rule"] == pytest.approx(-np.log10(0.05)) and rows["city"]["when"] == "p <= 0.05"
    panels = panels_of(spec)
    titles = [panel["layer"][0]["encoding"]["x"]["title"] for panel in panels]
    assert titles == ["-log10 p (ks): drift when p <= 0.01, past the rule at 2",
                      "-log10 p (chi2): drift when p <= 0.05, past the rule at 1.3"]
    [pick] = spec["params"]
    assert pick["name"] == charts.FEATURE_PICK
    assert {panel["layer"][0]["name"] for panel in panels} <= set(pick["views"])  # one click selection, both panels
    for panel in panels:
        bars = panel["layer"][0]
        assert bars["encoding"]["stroke"]["condition"][0] == {"param": charts.FEATURE_PICK, "value": "black",
                                                              "empty": False}


def test_every_method_titles_its_axis():
    ref, cur = frames()
    for method, unit in (("psi", "PSI"), ("kl", "KL divergence (nats)"), ("js", "JS distance (base 2)"),
                         ("wasserstein", "Wasserstein (scaled: W1 / reference std)"), ("ks", "-log10 p (ks)"),
                         ("chi2", "-log10 p (chi2)")):
        spec = charts.drift_scores(mm.drift(ref, cur, method=method).table).to_dict()
        titles = [panel["layer"][0]["encoding"]["x"]["title"] for panel in panels_of(spec)]
        assert titles[0].startswith(f"{unit}: drift when "), (method, titles)


def test_importance_orders_the_bars_when_the_table_has_it():
    ref, cur = frames()
    table = mm.drift(ref, cur, method="psi").table
    table = table.assign(importance=table["feature"].map({"tenure": 0.4, "age": 0.01, "city": 0.2}))
    table = table.sort_values("importance", ascending=False, na_position="last")

    spec = charts.drift_scores(table).to_dict()

    bars = spec["layer"][0]
    assert bars["encoding"]["y"]["sort"] == ["tenure", "city", "age", "income"]
    assert bars["encoding"]["y"]["title"] == "by importance"
    assert "importance" in {t["field"] for t in bars["encoding"]["tooltip"]}


def test_distribution_chart_carries_buckets_not_rows():
    ref, cur = frames()
    report = mm.drift(ref, cur)
    from mlops_magics.widgets._drift_widget import histogram

    numeric = charts.distribution(histogram(report, "age"), "age").to_dict()
    category = charts.distribution(histogram(report, "city"), "city").to_dict()

    num_rows = next(iter(numeric["datasets"].values()))
    assert len(num_rows) <= 2 * 22  # two shares per bucket, at most 20 buckets + 2 open ends
    assert {"lo", "hi", "density"} <= set(num_rows[0]) and numeric["mark"]["type"] == "rect"
    assert sum(r["share"] for r in num_rows if r["data"] == "current") == pytest.approx(1.0)
    cat_rows = next(iter(category["datasets"].values()))
    new = {(r["bucket"], r["data"]) for r in cat_rows if r["new"]}
    assert new == {("(unseen)", "reference"), ("(unseen)", "current")}
    assert category["encoding"]["xOffset"]["field"] == "data"


# -- charts: metric history -----------------------------------------------------------------------
def runs_frame(n: int, seed: int = 3, hours: float | None = None) -> pd.DataFrame:
    """A synthetic runs frame in the layout HistoryWidget loads (one row per run), over
    30 days, or ``hours`` apart."""
    rng = np.random.default_rng(seed)
    if hours is None:
        start = 1_750_000_000_000 + np.sort(rng.integers(0, 30 * 86_400_000, n))
    else:
        start = 1_750_000_000_000 + (np.arange(n) * hours * 3_600_000).astype(np.int64)
    f1 = np.clip(0.85 + np.cumsum(rng.normal(0, 0.002, n)) + rng.normal(0, 0.02, n), 0, 1)
    return pd.DataFrame({
        "run_id": [f"{i:032x}" for i in range(n)], "run_name": [f"run-{i}" for i in range(n)],
        "start_time": start, "status": "FINISHED", "kind": np.where(np.arange(n) % 3, "cell", "job"),
        "params": [f"lr=0.{i % 7 + 1} depth={i % 5 + 2}" for i in range(n)], "data": "X_train:3f2a9c0d11aa",
        "champion": "", "metrics.f1": f1, "metrics.loss": 1 - f1})


def layer(spec: dict, *, mark: str, **props) -> dict:
    """The one layer with this mark type (and mark properties)."""
    found = [lay for lay in spec["layer"] if lay["mark"]["type"] == mark
             and all(lay["mark"].get(k) == v for k, v in props.items())]
    assert len(found) == 1, (mark, props, [lay["mark"] for lay in spec["layer"]])
    return found[0]


def test_history_chart_marks_threshold_best_champion_and_selection():
    frame = runs_frame(40)
    frame.loc[30, "champion"] = "champion: churn v3"
    best = frame.loc[frame["metrics.f1"].idxmax(), "run_id"]

    spec = charts.metric_history(frame, "f1", threshold=0.84, selected=frame.run_id[5]).to_dict()

    points = layer(spec, mark="circle")
    assert [p["name"] for p in spec["params"]] == [charts.RUN_PICK]
    assert spec["params"][0]["views"] == [points["name"]]
    assert {t["field"] for t in points["encoding"]["tooltip"]} >= {"run_name", "params", "data", "kind", "started"}
    data = spec["datasets"]
    rows = data[points["data"]["name"]]
    assert len(rows) == 40 and {"run_id", "value", "t", "seq", "params", "data"} <= set(rows[0])
    assert [r["t"] for r in rows] == frame["start_time"].tolist()  # epoch ms, as MLflow has them
    below = {r["run_id"] for r in rows if r["state"] == "below threshold"}
    assert below == set(frame.loc[frame["metrics.f1"] < 0.84, "run_id"]) and below
    diamonds = [lay for lay in spec["layer"] if lay["mark"].get("shape") == "diamond"]
    assert [r["run_id"] for r in data[diamonds[0]["data"]["name"]]] == [best]
    rings = [lay for lay in spec["layer"] if lay["mark"].get("shape") == "circle" and lay["mark"].get("size") == 420]
    assert [r["champion"] for r in data[rings[0]["data"]["name"]]] == ["champion: churn v3"]
    rules = [lay for lay in spec["layer"] if lay["mark"]["type"] == "rule"]
    assert data[rules[0]["data"]["name"]] == [{"threshold": 0.84}]
    texts = {data[lay["data"]["name"]][0]["text"] for lay in spec["layer"] if lay["mark"]["type"] == "text"
             and lay["encoding"]["text"].get("field") == "text"}
    assert texts == {f"best f1 {frame['metrics.f1'].max():.4g}", "champion: churn v3 (f1 "
                     f"{frame.loc[30, 'metrics.f1']:.4g})"}


def test_a_clicked_point_is_highlighted_by_the_selection():
    spec = charts.metric_history(runs_frame(12, hours=1), "f1").to_dict()

    enc = layer(spec, mark="circle")["encoding"]

    for channel, picked, other in (("size", 260, 70), ("stroke", "black", "white"), ("strokeWidth", 2.5, 0.6)):
        assert enc[channel]["condition"] == [{"param": charts.RUN_PICK, "value": picked, "empty": False}], channel
        assert enc[channel]["value"] == other
    assert enc["opacity"]["condition"][0]["param"] == charts.RUN_PICK


def test_x_is_the_run_sequence_within_a_day_and_dates_across_days():
    hours = charts.metric_history(runs_frame(8, hours=1), "f1").to_dict()
    days = charts.metric_history(runs_frame(40), "f1").to_dict()

    x = layer(hours, mark="circle")["encoding"]["x"]
    assert (x["field"], x["type"], x["axis"]["format"]) == ("seq", "quantitative", "d")
    assert x["scale"]["domain"] == [0.5, 8.5] and x["axis"]["tickMinStep"] == 1
    assert x["title"].startswith("run, in the order started (2025-06-15 ")  # the real date, once
    assert [r["seq"] for r in hours["datasets"][layer(hours, mark="circle")["data"]["name"]]] == list(range(1, 9))
    x = layer(days, mark="circle")["encoding"]["x"]
    assert (x["field"], x["type"], x["axis"]["format"]) == ("t", "temporal", "%b %d")  # Jun 17, never "03:16"
    assert x["axis"]["tickCount"]["interval"] == "day"


def test_points_are_coloured_by_kind_from_the_mlops_tags_and_lines_stay_in_a_series():
    frame = runs_frame(9, hours=1).drop(columns=["kind"])
    frame["tags.mlops.kind"] = ["cell", "cell", "job", "job", "job", "job", "job", "cell", "job"]
    frame["tags.mlops.sweep"] = [None, None, "k1", "k1", "k1", None, None, None, None]
    frame["tags.mlops.schedule"] = [None, None, None, None, None, "nightly", "nightly", None, "nightly"]
    frame["tags.mlops.triggered_by"] = [None] * 8 + ["a" * 32]
    frame["run_name"] = ["fit", "fit", "p1", "p2", "p3", "nightly", "nightly", "other", "retrain"]

    spec = charts.metric_history(frame, "f1").to_dict()

    points = layer(spec, mark="circle")
    rows = spec["datasets"][points["data"]["name"]]
    assert [r["kind"] for r in rows] == ["cell", "cell", "sweep point", "sweep point", "sweep point", "scheduled",
                                         "scheduled", "cell", "retrain"]
    assert points["encoding"]["color"]["field"] == "kind"
    assert points["encoding"]["color"]["scale"]["domain"] == ["cell", "sweep point", "scheduled", "retrain"]
    assert points["encoding"]["color"]["scale"]["range"] == [charts.KIND_COLORS[k] for k in
                                                             ("cell", "sweep point", "scheduled", "retrain")]
    line = layer(spec, mark="line")
    assert line["encoding"]["detail"]["field"] == "series" and line["transform"] == [{"filter": "datum.line"}]
    joined = {r["series"] for r in rows if r["line"]}
    assert joined == {"cell: fit", "scheduled: nightly"}  # not the sweep points, not single runs


def label_boxes(spec: dict) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Pixel boxes of the text labels of a sequence-x history chart, from the spec alone."""
    width, height = spec["width"], spec["height"]
    x = layer(spec, mark="circle")["encoding"]["x"]["scale"]["domain"]
    y = layer(spec, mark="circle")["encoding"]["y"]["scale"]["domain"]
    boxes = []
    for lay in spec["layer"]:
        if lay["mark"]["type"] != "text" or lay["encoding"]["text"].get("field") != "text":
            continue  # the threshold's own text is a value at the right edge
        [row] = spec["datasets"][lay["data"]["name"]]
        m = lay["mark"]
        px = (row["x"] - x[0]) / (x[1] - x[0]) * width + m.get("dx", 0)
        py = (y[1] - row["y"]) / (y[1] - y[0]) * height + m.get("dy", 0)
        w, h = len(row["text"]) * 6.1, 12
        x0 = {"left": px, "right": px - w, "center": px - w / 2}[m["align"]]
        y0 = {"top": py, "bottom": py - h, "middle": py - h / 2}[m["baseline"]]
        boxes.append((row["text"], (x0, y0, x0 + w, y0 + h)))
    return boxes


@pytest.mark.parametrize("seed", range(6))
def test_best_and_champion_labels_stay_inside_the_plot_and_off_the_points(seed):
    frame = runs_frame(12, seed=seed, hours=1)
    rng = np.random.default_rng(seed)
    frame.loc[int(rng.integers(0, 12)), "champion"] = "champion: churn v2"
    spec = charts.metric_history(frame, "f1", threshold=0.85).to_dict()
    x = layer(spec, mark="circle")["encoding"]["x"]["scale"]["domain"]
    y = layer(spec, mark="circle")["encoding"]["y"]["scale"]["domain"]
    rows = spec["datasets"][layer(spec, mark="circle")["data"]["name"]]
    points = [((r["seq"] - x[0]) / (x[1] - x[0]) * spec["width"], (y[1] - r["value"]) / (y[1] - y[0]) * spec["height"])
              for r in rows]

    boxes = label_boxes(spec)

    assert len(boxes) in (1, 2) and boxes[0][0].startswith("best f1 ")
    for text, (x0, y0, x1, y1) in boxes:
        assert 0 <= x0 and x1 <= spec["width"] and 0 <= y0 and y1 <= spec["height"], (text, x0, y0, x1, y1)
        assert not [p for p in points if x0 - 3 < p[0] < x1 + 3 and y0 - 3 < p[1] < y1 + 3], text
    if len(boxes) == 2:
        (_, a), (_, b) = boxes
        assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]  # the two labels do not overlap


def test_single_value_history_has_a_readable_y_range():
    spec = charts.metric_history(runs_frame(1, hours=1), "f1").to_dict()
    lo, hi = layer(spec, mark="circle")["encoding"]["y"]["scale"]["domain"]
    value = spec["datasets"][layer(spec, mark="circle")["data"]["name"]][0]["value"]
    assert lo < value < hi and hi - lo >= 0.02  # several ticks, not one ".540"


def test_loss_like_metrics_are_minimised():
    frame = runs_frame(30)
    threshold = float(frame["metrics.loss"].median())
    spec = charts.metric_history(frame, "loss", threshold=threshold).to_dict()
    best = next(lay for lay in spec["layer"] if lay["mark"].get("shape") == "diamond")
    assert spec["datasets"][best["data"]["name"]][0]["value"] == pytest.approx(frame["metrics.loss"].min())
    rows = spec["datasets"][layer(spec, mark="circle")["data"]["name"]]
    above = {r["run_id"] for r in rows if r["state"] == "above threshold"}
    assert above == set(frame.loc[frame["metrics.loss"] > threshold, "run_id"]) and len(above) == 15
    assert not {r["run_id"] for r in rows if r["state"] == "below threshold"}


def test_slices_draw_one_line_per_group():
    frame = runs_frame(6, hours=2)
    frame["metrics.f1.slice.north"] = frame["metrics.f1"] + 0.03
    frame["metrics.f1.slice.south"] = frame["metrics.f1"] - 0.05
    frame.loc[0, "metrics.f1.slice.south"] = np.nan  # a run that logged one group only

    spec = charts.metric_history(frame, "f1", slices=True).to_dict()

    main, sliced = spec["vconcat"]
    assert main["title"]["text"] == "f1 over 6 runs"
    assert sliced["title"]["text"] == "f1 by slice" and "worst slice south" in sliced["title"]["subtitle"]
    [lines] = sliced["layer"]
    assert lines["mark"]["type"] == "line" and lines["encoding"]["detail"]["field"] == "group"
    rows = spec["datasets"][(lines.get("data") or sliced["data"])["name"]]
    assert {g: sum(r["group"] == g for r in rows) for g in ("north", "south")} == {"north": 6, "south": 5}
    assert lines["encoding"]["x"]["field"] == "seq"  # the same x as the chart above
    empty = charts.metric_history(runs_frame(3, hours=1), "f1", slices=True).to_dict()
    assert "no run logged f1.slice.<group> metrics" in json.dumps(empty)


def test_ten_thousand_runs_are_thinned_keeping_the_extremes_and_marks():
    frame = runs_frame(10_000)
    frame.loc[4321, "champion"] = "champion: churn v9"
    latest = frame.loc[frame["start_time"].idxmax(), "run_id"]
    best = frame.loc[frame["metrics.f1"].idxmax(), "run_id"]
    worst = frame.loc[frame["metrics.f1"].idxmin(), "run_id"]

    spec = charts.metric_history(frame, "f1", threshold=0.8).to_dict()  # no MaxRowsError

    points = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    shown = {r["run_id"] for r in spec["datasets"][points["data"]["name"]]}
    assert len(shown) <= charts.MAX_POINTS + 3
    assert {latest, best, worst, frame.run_id[4321]} <= shown
    assert "showing" in " ".join(spec["title"]["subtitle"]) and "10,000" in spec["title"]["text"]
    assert len(json.dumps(spec)) < 400_000


def test_history_chart_takes_mlflow_search_runs_layout():
    frame = runs_frame(5).rename(columns={"run_name": "tags.mlflow.runName"}).drop(columns=["params", "kind"])
    frame["params.lr"], frame["start_time"] = "0.1", pd.to_datetime(frame["start_time"], unit="ms", utc=True)
    f = charts.history_frame(frame, "f1")
    assert f["run_name"].tolist() == [f"run-{i}" for i in range(5)]
    assert set(f["params"]) == {"lr=0.1"} and set(f["kind"]) == {"run"}
    spec = charts.metric_history(frame, "f1").to_dict()
    ms = [r["t"] for r in spec["datasets"][layer(spec, mark="circle")["data"]["name"]]]
    assert ms == runs_frame(5)["start_time"].tolist()  # whatever the datetime resolution


# -- DriftWidget ------------------------------------------------------------------------------------
def test_drift_widget_verdict_click_and_in_place_updates():
    ref, cur = frames()
    w = DriftWidget(ref, cur)
    scores, dist = w.scores, w.distribution

    assert re.fullmatch(r"\d of 4 features drifted \(\d+%\): dataset drift (yes|no)", w.report.verdict)
    assert w.report.verdict in w._verdict.value
    assert dist.spec is None and w.selected_feature is None

    click(scores, charts.FEATURE_PICK, "feature", "age")
    assert w.selected_feature == "age"
    assert dist.chart is not None and "age: reference vs current" in json.dumps(dist.spec)

    before = scores.spec
    w._method_box.value = "psi"  # the dropdown, as a person changes it
    assert w.method == "psi" and set(w.report.table["method"]) == {"psi"}
    assert w.scores is scores and w.distribution is dist  # same widgets, new charts
    assert scores.spec != before and "PSI: drift when >= 0.1" in json.dumps(scores.spec)
    assert w.selected_feature == "age" and dist.spec is not None

    assert list(w._which.options) == ["psi"] and w._slider.description == "PSI >="
    w._slider.value = 0.9  # the slider
    assert w.threshold == {"psi": pytest.approx(0.9)}
    assert w.report.table["threshold"].tolist() == pytest.approx([0.9] * 4)
    assert "PSI >= 0.9 (psi)" in html.unescape(w._in_effect.value) and "PSI: drift when >= 0.9" in json.dumps(scores.spec)
    w._defaults.click()
    assert w.threshold is None and w._slider.value == pytest.approx(0.1)
    assert "PSI &gt;= 0.1 (psi, default)" in w._in_effect.value


def test_threshold_control_shows_each_methods_threshold_in_effect():
    ref, cur = frames(n=500)  # auto: ks for the numbers, chi2 for the categories
    w = DriftWidget(ref, cur)

    assert list(w._which.options) == ["ks", "chi2"] and w.thresholds_in_effect() == {"ks": 0.05, "chi2": 0.05}
    assert w._slider.description == "p <=" and w._slider.value == pytest.approx(0.05)  # not the 0.1 of psi
    assert html.unescape(w._in_effect.value).count("p <= 0.05") == 2

    w._slider.value = 0.01  # sets ks's alpha only
    assert w.threshold == {"ks": pytest.approx(0.01)}
    assert w.thresholds_in_effect() == {"ks": pytest.approx(0.01), "chi2": 0.05}
    text = html.unescape(w._in_effect.value)
    assert "p <= 0.01 (ks)" in text and "p <= 0.05 (chi2, default)" in text
    spec = json.dumps(w.scores.spec)  # the chart says what the control says: axis, tooltip, rule
    assert "-log10 p (ks): drift when p <= 0.01, past the rule at 2" in spec and '"when": "p <= 0.01"' in spec
    w._which.value = "chi2"
    assert w._slider.value == pytest.approx(0.05)
    w._slider.value = 0.2
    assert w.thresholds_in_effect() == {"ks": pytest.approx(0.01), "chi2": pytest.approx(0.2)}


def test_report_and_widget_say_the_same_verdict():
    ref = pd.DataFrame({c: np.arange(3000.0) for c in "abcd"})
    cur = ref.assign(a=ref["a"] + 900)  # 1 of 4 drifted: 25%

    report = mm.drift(ref, cur, share=0.25)  # as the demo's monitor notebook does
    from_report = DriftWidget(report)
    default_rule = DriftWidget(ref, cur)

    assert from_report.report is report and report.verdict in html.unescape(from_report._verdict.value)
    assert report.verdict == "1 of 4 features drifted (25%): dataset drift yes (rule: at least 25% of features)"
    assert default_rule.report.verdict == mm.drift(ref, cur).verdict == "1 of 4 features drifted (25%): dataset drift no"
    from_report.method = "psi"  # recomputed: still the report's share
    assert from_report.report.share_threshold == 0.25 and from_report.report.drifted
    assert DriftWidget(report, share=0.5).report.verdict.endswith("dataset drift no")


def test_small_sample_caveat_is_shown_in_the_widget():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({f"f{i}": rng.normal(size=400) for i in range(6)})
    cur = pd.DataFrame({f"f{i}": rng.normal(size=54) for i in range(6)})

    w = DriftWidget(ref, cur, method="psi")

    assert w.report.caveats and "caveat: psi on 400 reference vs 54 current values" in html.unescape(w._verdict.value)
    w.method = "auto"
    assert set(w.report.table["method"]) == {"ks"} and "under 100 values" in html.unescape(w._verdict.value)
    assert "caveat:" in w._repr_mimebundle_()["text/plain"]


def test_drift_widget_takes_profiles_and_reports_bad_options_in_place():
    ref, cur = frames()
    w = DriftWidget(mm.profile(ref), mm.profile(cur), features=["age", "city"])
    assert list(w.report.table["feature"]) == ["age", "city"]
    click(w.scores, charts.FEATURE_PICK, "feature", "age")  # buckets from the sketches
    assert "age: reference vs current" in json.dumps(w.distribution.spec)
    w.method = "nope"
    assert "unknown drift method 'nope'" in html.unescape(w._verdict.value)
    with pytest.raises(mm.MlopsError, match="unknown drift method"):
        DriftWidget(ref, cur, method="nope")


def test_static_fallback_is_an_svg_with_the_verdict():
    ref, cur = frames()
    w = DriftWidget(ref, cur, method="js")
    click(w.scores, charts.FEATURE_PICK, "feature", "city")

    data = w._repr_mimebundle_()

    assert WIDGET_VIEW in data and data[WIDGET_VIEW]["model_id"] == w.model_id
    assert w.report.verdict in data["text/plain"]
    svg = data["image/svg+xml"]
    assert svg.startswith("<svg") and w.report.verdict in svg
    assert "city: reference vs current" in svg
    assert "text/html" not in data  # so nbconvert and GitHub fall through to the image
    assert len(svg) < 150_000


def test_saved_state_holds_no_raw_rows_and_no_vega_bundle():
    n = 2000
    rng = np.random.default_rng(7)  # this test's own draws, whatever ran before it
    ref = pd.DataFrame({"x": rng.normal(0, 1, n).round(9) + 10, "y": rng.uniform(0, 1, n).round(9)})
    cur = pd.DataFrame({"x": rng.normal(0.5, 1, n).round(9) + 10, "y": rng.uniform(0, 1, n).round(9)})
    w = DriftWidget(ref, cur)
    click(w.scores, charts.FEATURE_PICK, "feature", "x")

    state = widget_state(w)

    raw = {f"{v:.9f}".rstrip("0") for v in np.concatenate([ref.to_numpy().ravel(), cur.to_numpy().ravel()])}
    leaked = {v for v in raw if v in state}
    assert not leaked  # bucket edges are rounded, labels carry 4 digits: no exact data value
    assert len(state) < 60_000
    addresses = set(re.findall(r"https?://[^\"' ]+", state))
    assert all(a.startswith("https://vega.github.io/schema/") for a in addresses)  # an identifier, never fetched
    esm = w.scores.get_state()["_esm"]
    assert len(esm) < 4000 and BUNDLE_KEY in esm


def test_the_kernel_serves_the_bundle_over_the_comm_once_asked(monkeypatch):
    chart = VegaChart(None)
    sent = []
    monkeypatch.setattr(chart, "send", lambda content, buffers=None: sent.append((content, buffers)))

    chart._answer(chart, {"type": "something else"}, [])
    chart._answer(chart, {"type": "mlops-magics:bundle?"}, [])

    assert len(sent) == 1
    content, buffers = sent[0]
    assert content == {"type": "mlops-magics:bundle"}
    js = bytes(buffers[0]).decode()
    assert len(js) > 500_000 and "export" in js
    assert not re.search(r"""import\s*(\(|[^;]*from\s*)["']https?://""", js)  # nothing to fetch


# -- HistoryWidget on a real MLflow store ------------------------------------------------------------
def make_runs(client, experiment: str = "churn", f1s=(0.71, 0.83, 0.78, 0.88, 0.80), inputs=("X_train",),
              slices: bool = False) -> list[str]:
    """Tracked runs as mlops-magics writes them: kind tags, params, f1, input datasets
    with our digest and their profile artifacts (the later ones shifted); with ``slices``,
    ``f1.slice.<region>`` as ``mm.log_slices`` logs them; one session parent that must not show."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    parent = client.create_run(exp_id, tags={naming.KIND: naming.KIND_SESSION}, start_time=1_750_000_000_000)
    client.log_metric(parent.info.run_id, "f1", 0.99)
    ids = []
    for i, f1 in enumerate(f1s):
        rng = np.random.default_rng(i)
        data = pd.DataFrame({"age": rng.normal(40 + 3 * i, 10, 800), "plan": rng.choice(["a", "b"], 800)})
        run = client.create_run(exp_id, run_name=f"train-{i}", start_time=1_750_000_000_000 + i * 3_600_000,
                                tags={naming.KIND: naming.KIND_JOB if i % 2 else naming.KIND_CELL})
        rid = run.info.run_id
        client.log_param(rid, "C", f"{0.1 * (i + 1):.1f}")
        client.log_metric(rid, "f1", f1)
        client.log_metric(rid, "accuracy", f1 + 0.05)
        if slices:
            for region, delta in (("north", 0.04), ("south", -0.06 - 0.01 * i)):
                client.log_metric(rid, naming.metric_slice("f1", region), f1 + delta)
        for k, name in enumerate(inputs):
            frame = data if k == 0 else data.assign(age=data["age"] * 0 + rng.normal(40, 10, 800))
            digest = mm.fingerprint(frame).digest
            client.log_inputs(rid, [DatasetInput(Dataset(name=name, digest=digest, source_type="mlops_magics",
                                                         source="{}"), [InputTag(naming.DATASET_CONTEXT_TAG, "input")])])
            client.log_text(rid, mm.profile(frame).to_json(), naming.artifact_profile(name))
        client.set_terminated(rid)
        ids.append(rid)
    return ids


def crown(client, run_id: str, model: str = "churn") -> None:
    client.create_registered_model(model)
    version = client.create_model_version(model, source=f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(model, "champion", version.version)


def test_history_widget_marks_best_and_champion_and_selects_on_click(client):
    ids = make_runs(client)
    crown(client, ids[1])
    w = HistoryWidget("churn", threshold=0.75)

    assert list(w.runs["run_id"]) == ids  # oldest first, the session parent left out
    assert list(w._metric_box.options) == ["accuracy", "f1"]
    spec = json.dumps(w.chart.spec)
    assert "champion: churn v1" in spec and "threshold 0.75" in spec
    assert "best f1 0.88 (train-3)" in spec
    digest = client.get_run(ids[0]).inputs.dataset_inputs[0].dataset.digest
    assert f"X_train {digest.rsplit(':', 1)[-1][:12]}" in spec  # tooltips: data fingerprint
    assert "C=0.2" in spec  # and params

    seen = []
    w.observe(lambda c: seen.append(c.new), names="selected_run")
    click(w.chart, charts.RUN_PICK, "run_id", ids[2])
    assert w.selected_run == ids[2] and seen == [ids[2]]
    assert "train-2" in w._details.value and not w._drift_button.disabled


def test_history_metric_dropdown_and_refresh_update_in_place(client):
    ids = make_runs(client)
    w = HistoryWidget("churn")
    chart = w.chart

    w._metric_box.value = "accuracy"
    assert w.metric == "accuracy" and "accuracy over 5 runs" in json.dumps(chart.spec)

    more = make_runs(client, f1s=(0.9,))
    w.refresh()
    assert w.chart is chart and len(w.runs) == len(ids) + 1 and more[0] in set(w.runs["run_id"])
    assert "accuracy over 6 runs" in json.dumps(chart.spec)


def test_history_drift_from_selected_run_to_latest(client):
    ids = make_runs(client)
    w = HistoryWidget("churn")
    click(w.chart, charts.RUN_PICK, "run_id", ids[0])

    w._drift_button.click()

    (drift_widget,) = w._drift_slot.children
    assert isinstance(drift_widget, DriftWidget)
    assert drift_widget.report.reference == f"runs:/{ids[0]}/X_train"
    assert drift_widget.report.current == f"runs:/{ids[-1]}/X_train"
    assert "age" in set(drift_widget.report.drifted_features)  # the mean moved by 12 years


def test_history_drift_compares_the_dataset_picked_from_the_runs_inputs(client):
    ids = make_runs(client, inputs=("X_train", "X_test"))
    w = HistoryWidget("churn")
    assert w._data_box.disabled and not w._data_box.options  # nothing selected yet
    click(w.chart, charts.RUN_PICK, "run_id", ids[0])

    assert list(w._data_box.options) == ["X_train", "X_test"] and w._data_box.value == "X_train"
    assert not w._data_box.disabled
    w._data_box.value = "X_test"
    w._drift_button.click()

    (drift_widget,) = w._drift_slot.children
    assert isinstance(drift_widget, DriftWidget)
    assert drift_widget.report.reference == f"runs:/{ids[0]}/X_test"
    assert drift_widget.report.current == f"runs:/{ids[-1]}/X_test"
    assert drift_widget.report.drifted_features == []  # X_test's age was drawn alike in every run
    assert w.drift_to_latest(ids[0], data="X_train").report.drifted_features == ["age"]


def test_history_selection_row_wraps_instead_of_squeezing_the_button(client):
    make_runs(client)
    w = HistoryWidget("churn")
    row = next(c for c in w.children if isinstance(c, ipywidgets.HBox) and w._drift_button in c.children)
    assert row.layout.flex_flow == "row wrap"
    assert w._drift_button.layout.width == "auto" and w._drift_button.layout.flex == "0 0 auto"
    assert w._details.layout.flex == "1 1 320px"


def test_history_widget_draws_one_line_per_slice(client):
    ids = make_runs(client, slices=True)
    w = HistoryWidget("churn", slices=True)

    main, sliced = w.chart.spec["vconcat"]

    assert sliced["title"]["text"] == "f1 by slice"
    data = w.chart.spec["datasets"][(sliced["layer"][0].get("data") or sliced["data"])["name"]]
    assert {r["group"] for r in data} == {"north", "south"} and len(data) == 2 * len(ids)
    assert "worst slice south" in sliced["title"]["subtitle"]


def test_drift_from_a_run_that_logged_importances_lists_them_first(client):
    ids = make_runs(client)
    client.log_metric(ids[0], naming.metric_importance("plan"), 0.3)
    client.log_metric(ids[0], naming.metric_importance("age"), 0.05)
    w = HistoryWidget("churn")

    drift_widget = w.drift_to_latest(ids[0])

    assert drift_widget.report.importance == {"plan": 0.3, "age": 0.05}
    assert drift_widget.report.table["feature"].tolist() == ["plan", "age"]
    first_panel = drift_widget.scores.spec["vconcat"][0]  # chi2 for plan, then ks for age: panels in that order
    bars = first_panel["layer"][0]
    assert bars["encoding"]["y"]["sort"] == ["plan"] and "chi2" in bars["encoding"]["x"]["title"]
    assert bars["encoding"]["y"]["title"] == "by importance"


def test_history_errors_name_the_closest_experiment_and_metric(client):
    make_runs(client)
    with pytest.raises(mm.MlopsError, match="no experiment (named )?'chrun'.*Did you mean 'churn'"):
        HistoryWidget("chrun")
    with pytest.raises(mm.MlopsError, match="no run .* has metric 'f2'.*Did you mean 'f1'"):
        HistoryWidget("churn", "f2")


def test_history_static_fallback_and_empty_experiment(client):
    client.create_experiment("fresh")
    w = HistoryWidget("fresh")
    assert "no runs yet" in w._summary.value
    data = w._repr_mimebundle_()
    assert data["image/svg+xml"].startswith("<svg") and "f1 of 0 runs" in data["text/plain"]


def test_history_of_real_tracked_cells_and_drift_between_their_data(ip, client):
    """End to end: %%track cells log f1, params, data and profiles; the widget reads them."""
    run(ip, "import numpy as np, pandas as pd")
    for i, f1 in enumerate((0.74, 0.81, 0.79)):
        ip.user_ns["X_train"] = pd.DataFrame({"age": np.random.default_rng(i).normal(40 + 5 * i, 10, 500)})
        result = run(ip, f"%%track --name fit-{i} --data X_train\nC = {i + 1}\nf1 = {f1} + 0 * len(X_train)")
        assert result.success, result.error_in_exec
    assert mm.flush(timeout=60) == 0

    w = HistoryWidget(threshold=0.8)

    assert list(w.runs["run_name"]) == ["fit-0", "fit-1", "fit-2"] and set(w.runs["kind"]) == {"cell"}
    assert all("X_train " in d for d in w.runs["data"]) and "C=2" in w.runs["params"].iloc[1]
    click(w.chart, charts.RUN_PICK, "run_id", w.runs["run_id"].iloc[0])
    drift_widget = w.drift_to_latest()
    assert drift_widget.report.drifted_features == ["age"]


# -- magics ------------------------------------------------------------------------------------------
def test_drift_magic_shows_the_widget_with_its_fallback(ip):
    ref, cur = frames()
    ip.user_ns.update(ref=ref, cur=cur)

    run(ip, "%drift ref cur --method psi --threshold 0.2 --features age,city")

    data = last_bundle(ip, WIDGET_VIEW)
    assert "of 2 features drifted" in data["text/plain"]  # --features age,city
    assert data["image/svg+xml"].startswith("<svg")
    assert "psi" in data["image/svg+xml"]


def test_drift_magic_mistakes_are_one_line(ip, capsys):
    ip.user_ns.update(reference=pd.DataFrame({"a": [1.0, 2.0]}))
    result = run(ip, "%drift refrence reference")
    assert "Did you mean 'reference'?" in str(result.error_in_exec)
    result = run(ip, "%drift reference reference --method psy")
    assert "Did you mean 'psi'?" in str(result.error_in_exec)


def test_history_magic_and_ipython_history_side_by_side(ip, client, capsys):
    make_runs(client)
    run(ip, "%history --experiment churn --metric f1 --threshold 0.8")
    data = last_bundle(ip, WIDGET_VIEW)
    assert "f1 of 5 runs in experiment 'churn'" in data["text/plain"]

    run(ip, "%config TrackMagics.experiment = 'churn'")
    run(ip, "%history --metric accuracy")  # the experiment %%track uses
    assert "accuracy of 5 runs in experiment 'churn'" in last_bundle(ip, WIDGET_VIEW)["text/plain"]

    run(ip, "x = 1")
    run(ip, "%history -n")  # IPython's own options still reach IPython's %history
    run(ip, "%hist")
    out = capsys.readouterr().out
    assert "x = 1" in out


def test_without_the_extra_the_names_say_what_to_install(ip, monkeypatch):
    import mlops_magics.widgets as widgets

    monkeypatch.setattr(widgets, "missing", lambda: ["vl-convert-python"])
    with pytest.raises(widgets.MissingDependency, match=r"pip install 'mlops-magics\[widgets\]'"):
        widgets.__getattr__("DriftWidget")(1, 2)
    ref, cur = frames(n=400)
    ip.user_ns.update(ref=ref, cur=cur)
    run(ip, "%drift ref cur")
    data = last_bundle(ip, "text/html")
    assert "features drifted" in data["text/html"] and "mlops-magics[widgets]" in data["text/plain"]
