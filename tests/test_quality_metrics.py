"""Quality metrics from inside the notebook, on data shipped with scikit-learn: slice metrics
(``mm.log_slices``) with ``check_metric`` on the worst slice, permutation importance
(``mm.log_importance``) and champion-vs-challenger comparison (``mm.compare_models``) on
models from the real MLflow registry. Every value is checked against scikit-learn computed
here, independently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cell_runs, fresh_python, last_bundle, run

SETUP = """
import numpy as np, pandas as pd
import mlops_magics as mm
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
# the group: a real feature cut in bands; the last band holds a handful of rows, all malignant
size = pd.cut(X["mean radius"], [0, 12, 15, 24, 100],
              labels=["radius<12", "radius 12-15", "radius 15-24", "radius>=24"])
tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
pred = tree.predict(X)
"""


def flush(ip) -> None:
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]


def expected_slices(y, pred, groups, fn, **kwargs) -> dict[str, float]:
    out = {}
    for name in groups.cat.categories:
        mask = (groups == name).to_numpy()
        if mask.sum() >= 10 and len(np.unique(y[mask])) == 2:
            out[name] = fn(y[mask], pred[mask], **kwargs)
    return out


def test_slice_metrics_land_in_mlflow_and_check_metric_alerts_on_the_worst(ip, client):
    from sklearn.metrics import f1_score

    assert run(ip, SETUP).success
    cell = ("%%track --name slices\n"
            "report = mm.log_slices(y, pred, size)\n"
            "mm.check_metric('f1.worst_slice', min=0.9)")
    res = run(ip, cell)
    assert res.success, res.error_in_exec
    shown = last_bundle(ip)["text/plain"]
    assert "f1 slices not scored: radius>=24" in shown
    assert "alert" in shown and "f1.worst_slice=" in shown and "below min 0.9" in shown
    flush(ip)
    (cell_run,) = cell_runs(client)
    metrics, tags = cell_run.data.metrics, cell_run.data.tags

    ns = ip.user_ns
    y, pred, size = ns["y"].to_numpy(), ns["pred"], ns["size"]
    want = expected_slices(y, pred, size, f1_score)
    assert set(want) == {"radius<12", "radius 12-15", "radius 15-24"}
    keys = {"radius<12": "f1.slice.radius_12", "radius 12-15": "f1.slice.radius_12-15",
            "radius 15-24": "f1.slice.radius_15-24"}
    for group, value in want.items():
        assert metrics[keys[group]] == pytest.approx(value, abs=1e-12)
    assert not any(k.startswith("f1.slice.radius__24") for k in metrics)  # too few rows, one class
    assert metrics["f1.worst_slice"] == pytest.approx(min(want.values()), abs=1e-12)
    assert metrics["f1.slice_gap"] == pytest.approx(max(want.values()) - min(want.values()), abs=1e-12)
    assert metrics["f1.worst_slice"] < 0.9
    assert tags["mlops.alert"] == "metric"
    assert f"f1.worst_slice={metrics['f1.worst_slice']:.6g} below min 0.9" in tags["mlops.alert.reason"]

    report = ns["report"]
    small = report.table.set_index("group").loc["radius>=24"]
    assert np.isnan(small["value"]) and "fewer than min_rows=10" in small["note"]
    assert small["rows"] == int((size == "radius>=24").sum()) > 0
    assert report.worst == min(want, key=want.get)
    assert report.overall == pytest.approx(f1_score(y, pred))
    assert "worst" in repr(report) and "radius&gt;=24" in report._repr_html_()

    # a bound the worst slice keeps: no alert
    fine = "%%track --name fine\nmm.log_slices(y, pred, size)\nmm.check_metric('f1.worst_slice', min=0.1)"
    assert run(ip, fine).success
    flush(ip)
    assert "mlops.alert" not in cell_runs(client)[-1].data.tags


def test_slice_values_for_each_metric_binary_and_multiclass():
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_magics.models.slices import slice_report

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    groups = pd.cut(X["mean texture"], [0, 17, 21, 100], labels=["smooth", "mid", "rough"])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[["mean radius", "mean texture"]], y)
    pred = model.predict(X[["mean radius", "mean texture"]])
    proba = model.predict_proba(X[["mean radius", "mean texture"]])[:, 1]
    yy = y.to_numpy()
    for metric, fn, scores in [("accuracy", accuracy_score, pred), ("precision", precision_score, pred),
                               ("recall", recall_score, pred), ("roc_auc", roc_auc_score, proba)]:
        report = slice_report(y, scores, groups, metric=metric)
        got = dict(zip(report.table["group"], report.table["value"]))
        for name in groups.cat.categories:
            mask = (groups == name).to_numpy()
            assert got[name] == pytest.approx(fn(yy[mask], scores[mask]), abs=1e-12), (metric, name)
        assert report.worst_value == pytest.approx(min(got.values()))

    # a group of one class: a note for f1, a value for accuracy
    big = np.where(X["mean radius"] >= 24, "large", "other")
    assert (big == "large").sum() >= 3 and len(np.unique(yy[big == "large"])) == 1
    f1_big = slice_report(y, pred, big, metric="f1", min_rows=3).table.set_index("group")
    assert np.isnan(f1_big.loc["large", "value"]) and "one class only (0)" in f1_big.loc["large", "note"]
    acc_big = slice_report(y, pred, big, metric="accuracy", min_rows=3).table.set_index("group")
    assert acc_big.loc["large", "value"] == pytest.approx(accuracy_score(yy[big == "large"], pred[big == "large"]))

    # multiclass: macro averages; a group on a real feature, one group kept too small
    Xw, yw = load_wine(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xw[["alcohol", "hue"]], yw)
    pred, proba = model.predict(Xw[["alcohol", "hue"]]), model.predict_proba(Xw[["alcohol", "hue"]])
    bands = np.where(Xw["magnesium"] > 150, "mg/high", np.where(Xw["magnesium"] > 100, "mg mid", "mg low"))
    report = slice_report(yw, pred, bands, metric="f1")
    by = report.table.set_index("group")
    assert set(by.index) == {"mg low", "mg mid", "mg/high"}
    assert dict(by["metric"]) == {"mg/high": "f1.slice.mg_high", "mg low": "f1.slice.mg_low",
                                  "mg mid": "f1.slice.mg_mid"}  # no path, no space
    assert "fewer than min_rows" in by.loc["mg/high", "note"]
    for name in ("mg low", "mg mid"):
        mask = bands == name
        assert by.loc[name, "value"] == pytest.approx(f1_score(yw[mask], pred[mask], average="macro"))
    auc = slice_report(yw, proba, bands, metric="roc_auc", min_rows=3)
    mask = bands == "mg low"
    assert auc.table.set_index("group").loc["mg low", "value"] == pytest.approx(
        roc_auc_score(yw[mask], proba[mask], multi_class="ovr", labels=[0, 1, 2]))


def test_slice_mistakes_are_one_line_errors(ip):
    from mlops_magics.errors import MlopsError, NoActiveRunError

    assert run(ip, SETUP).success
    res = run(ip, "mm.log_slices(y, pred, size)")
    assert isinstance(res.error_in_exec, NoActiveRunError)
    for call, message in [
        ("mm.log_slices(y, pred, size, metric='f2')", "unknown metric 'f2'. Did you mean 'f1'?"),
        ("mm.log_slices(y, tree.predict_proba(X)[:, 1], size)", "y_pred holds scores, not labels"),
        ("mm.log_slices(y, pred[:10], size)", "one value per row: got 569, 10 and 569"),
        ("mm.log_slices(y, pred, 'mean radius')", "groups must name each row's group"),
    ]:
        res = run(ip, "%%track\n" + call)
        err = res.error_in_exec
        assert isinstance(err, MlopsError) and message in str(err), (call, err)
        assert err._render_traceback_() == [f"{type(err).__name__}: {err}"]


@pytest.mark.kernel
def test_slices_and_importance_in_a_job(client, tmp_path):
    import nbformat
    from sklearn.tree import DecisionTreeClassifier

    from mlops_magics.runner.run import run_notebook

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(SETUP),
                nbformat.v4.new_code_cell("mm.log_slices(y, pred, size, metric='accuracy')\n"
                                          "mm.check_metric('accuracy.worst_slice', min=0.99)\n"
                                          "mm.log_importance(tree, X, y, n_repeats=2)")]
    path = tmp_path / "slices_job.ipynb"
    nbformat.write(nb, path)
    result = run_notebook(path, progress=False)
    assert result.status == "FINISHED", result.failure
    job = client.get_run(result.run_id)
    from sklearn.metrics import accuracy_score

    X, y, size, pred = _setup_values()
    want = {}
    for name in size.cat.categories:
        mask = (size == name).to_numpy()
        if mask.sum() >= 10:
            want[name] = accuracy_score(y[mask], pred[mask])
    assert job.data.metrics["accuracy.worst_slice"] == pytest.approx(min(want.values()))
    assert job.data.metrics["accuracy.slice.radius_12"] == pytest.approx(want["radius<12"])
    assert job.data.tags["mlops.alert"] == "metric"
    assert "accuracy.worst_slice=" in job.data.tags["mlops.alert.reason"]
    from sklearn.inspection import permutation_importance

    from mlops_magics.models.importance import read_importances

    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    expected = permutation_importance(tree, X, y, n_repeats=2, random_state=0).importances_mean
    got = read_importances(result.run_id)
    assert list(got) == list(X.columns[np.argsort(-expected, kind="stable")])
    assert job.data.metrics["importance.worst_radius"] == pytest.approx(got["worst radius"])
    assert got["worst radius"] == pytest.approx(expected[list(X.columns).index("worst radius")])


def _setup_values():
    ns: dict = {}
    exec(SETUP.replace("import mlops_magics as mm\n", ""), ns)  # the same data and model, here
    return ns["X"], ns["y"].to_numpy(), ns["size"], ns["pred"]


IMPORTANCE = """
import numpy as np, pandas as pd
import mlops_magics as mm
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
data, target = load_breast_cancer(return_X_y=True, as_frame=True)
data = data[["worst radius", "worst texture", "worst concave points"]].copy()
data["noise"] = np.random.default_rng(0).normal(size=len(data))  # pure noise, no signal
X_train, X_test, y_train, y_test = train_test_split(data, target, test_size=0.4, random_state=0, stratify=target)
model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
"""


def test_importance_ranks_an_added_noise_feature_last(ip, client):
    from sklearn.inspection import permutation_importance

    from mlops_magics.models.importance import order_features, read_importances

    assert run(ip, IMPORTANCE).success
    res = run(ip, "%%track --name importance\nranked = mm.log_importance(model, X_test, y_test)")
    assert res.success, res.error_in_exec
    flush(ip)
    (cell_run,) = cell_runs(client)
    run_id, metrics = cell_run.info.run_id, cell_run.data.metrics

    ns = ip.user_ns
    expected = permutation_importance(ns["model"], ns["X_test"], ns["y_test"], n_repeats=5, random_state=0)
    want = dict(zip(ns["X_test"].columns, expected.importances_mean))
    for feature, value in want.items():
        assert metrics[f"importance.{feature.replace(' ', '_')}"] == pytest.approx(value, abs=1e-12)
    ranked = ns["ranked"]
    assert list(ranked.columns) == ["feature", "importance", "std", "metric"]
    assert list(ranked["feature"]) == sorted(want, key=want.get, reverse=True)
    assert ranked["feature"].iloc[-1] == "noise"
    assert min(v for k, v in want.items() if k != "noise") > want["noise"] + 0.01

    spec = json.loads(Path(client.download_artifacts(run_id, "mlops/importance.vl.json")).read_text())
    assert spec["$schema"].endswith("vega-lite/v5.json")
    assert [v["feature"] for v in spec["data"]["values"]] == list(ranked["feature"])

    back = read_importances(run_id)
    assert list(back) == list(ranked["feature"])  # original names, largest first
    assert back["worst radius"] == pytest.approx(want["worst radius"])
    assert read_importances(f"runs:/{run_id}/data") == back  # a drift reference names the run too
    assert order_features(["noise", "other", "worst radius"], back) == ["worst radius", "noise", "other"]


CHAMPION = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
import mlops_magics as mm
data, target = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_new, y_train, y_new = train_test_split(data, target, test_size=0.4, random_state=1, stratify=target)
"""


def _register(client, run_id: str, name: str, alias: str) -> None:
    """A new version of ``name`` from the run's model, as ``mlflow.register_model`` makes it:
    the run's MLflow 3 logged model (``models:/<model id>``), else its artifacts."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException:
        pass
    run = client.get_run(run_id)
    logged = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                         filter_string=f"source_run_id = '{run_id}'")
    if logged:
        model_id = logged[0].model_id
        version = client.create_model_version(name, f"models:/{model_id}", run_id=run_id, model_id=model_id)
    else:
        version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(name, alias, version.version)


def test_compare_champion_and_challenger_from_the_registry(ip, client, tracking_uri):
    from mlflow import MlflowClient
    from sklearn.metrics import accuracy_score, f1_score

    import mlops_magics as mm

    assert run(ip, CHAMPION).success
    ids = {}
    for name, fit in [("champion", "DecisionTreeClassifier(max_depth=1, random_state=0)"),
                      ("challenger", "make_pipeline(StandardScaler(), LogisticRegression())")]:
        res = run(ip, f"%%track --name {name} --log-model clf\nclf = {fit}.fit(X_train, y_train)")
        assert res.success, res.error_in_exec
        flush(ip)
        ids[name] = cell_runs(client)[-1].info.run_id
        ip.user_ns[name] = ip.user_ns["clf"]
    registry = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for name, run_id in ids.items():
        _register(registry, run_id, "cancer", name)

    res = run(ip, "%%track --name shadow\n"
                  "cmp = mm.compare_models('models:/cancer@champion', 'models:/cancer@challenger', X_new, y_new, "
                  "n_boot=200)")
    assert res.success, res.error_in_exec
    flush(ip)
    shadow = cell_runs(client)[-1]
    metrics, tags = shadow.data.metrics, shadow.data.tags

    # independently: the in-memory models, scikit-learn metrics, the documented resampling
    ns = ip.user_ns
    X_new, y = ns["X_new"], ns["y_new"].to_numpy()
    pa, pb = ns["champion"].predict(X_new), ns["challenger"].predict(X_new)
    assert metrics["compare.agreement"] == pytest.approx(np.mean(pa == pb), abs=1e-12)
    assert np.mean(pa == pb) < 1
    rng = np.random.default_rng(0)
    boots = {"accuracy": [], "f1": []}
    for _ in range(200):
        idx = rng.integers(0, len(y), len(y))
        boots["accuracy"].append(accuracy_score(y[idx], pb[idx]) - accuracy_score(y[idx], pa[idx]))
        boots["f1"].append(f1_score(y[idx], pb[idx]) - f1_score(y[idx], pa[idx]))
    for metric, fn in [("accuracy", accuracy_score), ("f1", f1_score)]:
        a, b = fn(y, pa), fn(y, pb)
        assert metrics[f"compare.{metric}.a"] == pytest.approx(a, abs=1e-12)
        assert metrics[f"compare.{metric}.b"] == pytest.approx(b, abs=1e-12)
        assert metrics[f"compare.{metric}.delta"] == pytest.approx(b - a, abs=1e-12)
        low, high = np.percentile(boots[metric], [2.5, 97.5])
        assert metrics[f"compare.{metric}.ci_low"] == pytest.approx(low, abs=1e-9)
        assert metrics[f"compare.{metric}.ci_high"] == pytest.approx(high, abs=1e-9)
        assert low <= b - a <= high
    assert metrics["compare.accuracy.delta"] > 0  # the challenger is the better model here
    assert tags["mlops.compare.a"] == "models:/cancer@champion"
    assert tags["mlops.compare.b"] == "models:/cancer@challenger"
    saved = json.loads(Path(client.download_artifacts(shadow.info.run_id, "mlops/compare.json")).read_text())
    assert saved["agreement"] == pytest.approx(np.mean(pa == pb)) and len(saved["metrics"]) == 2

    cmp = ns["cmp"]
    text, page = repr(cmp), cmp._repr_html_()
    assert text.startswith(f"b vs a on {len(y)} rows (classification): agreement ")
    assert "accuracy" in text and "95% CI" in text and "logged to the run" in text
    assert "<table>" in page and "models:/cancer@challenger" in page

    # no labels, no tracked run: agreement only, nothing logged; runs:/ URIs load too
    plain = mm.compare_models(f"runs:/{ids['champion']}/model", ns["challenger"], X_new)
    assert plain.agreement == pytest.approx(np.mean(pa == pb)) and plain.table.empty and not plain.logged
    assert "no labels: agreement only" in repr(plain) and "not logged" in repr(plain)
    # no labels inside a tracked run: the agreement only
    assert run(ip, "%%track --name unlabelled\n"
                   "mm.compare_models('models:/cancer@champion', challenger, X_new)").success
    flush(ip)
    unlabelled = cell_runs(client)[-1].data.metrics
    assert unlabelled["compare.agreement"] == pytest.approx(np.mean(pa == pb))
    assert not any(k.endswith(".delta") for k in unlabelled)


def test_compare_regressors_and_mistakes(tmp_path):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    import mlops_magics as mm
    from mlops_magics.errors import MlopsError

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    a, b = Ridge(alpha=1.0).fit(X, y), Ridge(alpha=0.01).fit(X, y)
    result = mm.compare_models(a, b, X, y, n_boot=50)
    pa, pb = a.predict(X), b.predict(X)
    assert result.task == "regression" and result.agreement is None
    assert result.correlation == pytest.approx(np.corrcoef(pa, pb)[0, 1])
    assert result.mean_abs_diff == pytest.approx(np.mean(np.abs(pb - pa)))
    table = result.table.set_index("metric")
    for metric, fn in [("r2", r2_score), ("mae", mean_absolute_error), ("rmse", root_mean_squared_error)]:
        assert table.loc[metric, "delta"] == pytest.approx(fn(y, pb) - fn(y, pa), rel=1e-9, abs=1e-12)
        assert table.loc[metric, "ci_low"] <= table.loc[metric, "delta"] <= table.loc[metric, "ci_high"]

    for call, message in [
        (lambda: mm.compare_models("champion", b, X), "is not a model URI"),
        (lambda: mm.compare_models([1], b, X), "model a is a list, with no predict"),
        (lambda: mm.compare_models(a, b, X, y[:5]), "y has 5 values for 442 rows"),
        (lambda: mm.compare_models("models:/nope@champion", b, X), "could not load model a from models:/nope@champion"),
    ]:
        with pytest.raises(MlopsError, match=message.replace("(", r"\(")):
            call()


def test_import_stays_light():
    code = ("import sys, mlops_magics as mm\n"
            "assert {'log_slices', 'log_importance', 'compare_models'} <= set(mm.__all__)\n"
            "heavy = [m for m in ('mlflow', 'sklearn', 'altair', 'mlops_magics.models.slices') if m in sys.modules]\n"
            # their own import: still no sklearn, mlflow or altair (those load inside the calls)
            "from mlops_magics.models import slices, importance, compare\n"
            "heavy += [m for m in ('mlflow', 'sklearn', 'altair') if m in sys.modules]\n"
            "print(heavy)")
    assert fresh_python(code) == "[]"
