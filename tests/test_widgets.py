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
from mlops_magics.widgets._chart import BUNDLE_KEY, VegaChart  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RNG = np.random.default_rng(7)


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
    assert {t["field"] for t in bars["encoding"]["tooltip"]} >= {"method", "score", "p", "null_change"}
    assert rule["mark"]["type"] == "rule" and rule["encoding"]["x"]["field"] == "rule"
    assert all(r["rule"] == pytest.approx(0.1) for r in rows)
    assert [p["name"] for p in spec["params"]] == [charts.FEATURE_PICK]
    assert spec["params"][0]["views"] == [bars["name"]]  # the clickable layer is the bars
    assert spec["title"]["text"] == report.verdict


def test_test_methods_plot_minus_log10_p_in_their_own_panel():
    ref, cur = frames(n=500)  # <= 1,000 rows: auto picks ks and chi2
    table = mm.drift(ref, cur).table

    spec = charts.drift_scores(table).to_dict()

    rows = {r["feature"]: r for r in next(iter(spec["datasets"].values()))}
    age = table.set_index("feature").loc["age"]
    assert age["method"] == "ks"
    assert rows["age"]["evidence"] == pytest.approx(-np.log10(age["p_value"]))
    assert rows["age"]["rule"] == pytest.approx(-np.log10(0.05))
    assert spec["facet"]["row"]["field"] == "panel"  # ks and chi2: one panel each
    assert {r["panel"] for r in rows.values()} == {"ks: -log10 p (drift when p <= 0.05)",
                                                   "chi2: -log10 p (drift when p <= 0.05)"}


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
def runs_frame(n: int, seed: int = 3) -> pd.DataFrame:
    """A synthetic runs frame in the layout HistoryWidget loads (one row per run)."""
    rng = np.random.default_rng(seed)
    start = 1_750_000_000_000 + np.sort(rng.integers(0, 30 * 86_400_000, n))
    f1 = np.clip(0.85 + np.cumsum(rng.normal(0, 0.002, n)) + rng.normal(0, 0.02, n), 0, 1)
    return pd.DataFrame({
        "run_id": [f"{i:032x}" for i in range(n)], "run_name": [f"run-{i}" for i in range(n)],
        "start_time": start, "status": "FINISHED", "kind": np.where(np.arange(n) % 3, "cell", "job"),
        "params": [f"lr=0.{i % 7 + 1} depth={i % 5 + 2}" for i in range(n)], "data": "X_train:3f2a9c0d11aa",
        "champion": "", "metrics.f1": f1, "metrics.loss": 1 - f1})


def test_history_chart_marks_threshold_best_champion_and_selection():
    frame = runs_frame(40)
    frame.loc[30, "champion"] = "champion: churn v3"
    best = frame.loc[frame["metrics.f1"].idxmax(), "run_id"]

    spec = charts.metric_history(frame, "f1", threshold=0.84, selected=frame.run_id[5]).to_dict()

    layers = spec["layer"]
    points = next(layer for layer in layers if layer["mark"]["type"] == "circle")
    assert [p["name"] for p in spec["params"]] == [charts.RUN_PICK]
    assert spec["params"][0]["views"] == [points["name"]]
    assert {t["field"] for t in points["encoding"]["tooltip"]} >= {"run_name", "params", "data"}
    data = spec["datasets"]
    rows = data[points["data"]["name"]]
    assert len(rows) == 40 and {"run_id", "value", "start_time", "params", "data"} <= set(rows[0])
    assert [r["start_time"] for r in rows] == frame["start_time"].tolist()  # epoch ms, as MLflow has them
    below = {r["run_id"] for r in rows if r["state"] == "below threshold"}
    assert below == set(frame.loc[frame["metrics.f1"] < 0.84, "run_id"])
    diamonds = [layer for layer in layers if layer["mark"].get("shape") == "diamond"]
    assert [r["run_id"] for r in data[diamonds[0]["data"]["name"]]] == [best]
    rings = [layer for layer in layers if layer["mark"].get("shape") == "circle" and layer["mark"].get("size") == 420]
    assert [r["champion"] for r in data[rings[0]["data"]["name"]]] == ["champion: churn v3"]
    rules = [layer for layer in layers if layer["mark"]["type"] == "rule"]
    assert data[rules[0]["data"]["name"]] == [{"threshold": 0.84}]


def test_loss_like_metrics_are_minimised():
    frame = runs_frame(30)
    spec = charts.metric_history(frame, "loss", threshold=0.2).to_dict()
    best = next(layer for layer in spec["layer"] if layer["mark"].get("shape") == "diamond")
    assert spec["datasets"][best["data"]["name"]][0]["value"] == pytest.approx(frame["metrics.loss"].min())
    points = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    states = {r["state"] for r in spec["datasets"][points["data"]["name"]]}
    assert "above threshold" in states or frame["metrics.loss"].max() <= 0.2


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
    assert set(f["params"]) == {"lr=0.1"}
    spec = charts.metric_history(frame, "f1").to_dict()
    points = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    ms = [r["start_time"] for r in spec["datasets"][points["data"]["name"]]]
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
    assert scores.spec != before and "psi: PSI" in json.dumps(scores.spec)
    assert w.selected_feature == "age" and dist.spec is not None

    w._slider.value = 0.9  # the slider
    assert w.threshold == pytest.approx(0.9)
    assert w.report.table["threshold"].tolist() == pytest.approx([0.9] * 4)
    assert w._slider.description == "threshold"
    w._defaults.click()
    assert w.threshold is None and w._slider.value == pytest.approx(0.1)
    assert w._slider.description == "threshold (default)"


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
    ref = pd.DataFrame({"x": RNG.normal(0, 1, n).round(9) + 10, "y": RNG.uniform(0, 1, n).round(9)})
    cur = pd.DataFrame({"x": RNG.normal(0.5, 1, n).round(9) + 10, "y": RNG.uniform(0, 1, n).round(9)})
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
def make_runs(client, experiment: str = "churn", f1s=(0.71, 0.83, 0.78, 0.88, 0.80)) -> list[str]:
    """Tracked runs as mlops-magics writes them: kind tags, params, f1, an input dataset
    with our digest and its profile artifact; one session parent that must not show."""
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
        digest = mm.fingerprint(data).digest
        client.log_inputs(rid, [DatasetInput(Dataset(name="X_train", digest=digest, source_type="mlops_magics",
                                                     source="{}"), [InputTag(naming.DATASET_CONTEXT_TAG, "input")])])
        client.log_text(rid, mm.profile(data).to_json(), naming.artifact_profile("X_train"))
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


def test_history_errors_name_the_closest_experiment_and_metric(client):
    make_runs(client)
    with pytest.raises(mm.MlopsError, match="no experiment 'chrun'.*Did you mean 'churn'"):
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
