"""Models: ``%%track --log-model`` and ``mm.log_model`` create MLflow 3 logged models (linked to the
run, its metrics and datasets) with signature and input example; ``eval=`` / ``--eval`` log the
model's score next to a dummy baseline's; ``promote`` checks baseline, a fresh-process load and
the signature before it moves the alias, and only for a better run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import run

from mlops_magics.cli import cli

NOTEBOOKS = Path(__file__).parent / "notebooks"

SETUP = """
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "noise": rng.normal(size=60)})
df["y"] = (df.a > 0).astype(int)
"""

# Real data: scikit-learn's breast cancer set (569 rows, 30 features; 63% of labels are 1).
CANCER = """
import numpy as np, pandas as pd
import mlops_magics as mm
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
data = load_breast_cancer(as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.3, random_state=0)
shuffled = pd.Series(np.random.default_rng(1).permutation(y_train.to_numpy()), index=y_train.index)
"""


def invoke(*argv: str):
    return CliRunner().invoke(cli, list(argv), prog_name="mlops-magics")


def tracked(ip, source: str) -> str:
    """Run a %%track cell, deliver it, return its MLflow run id."""
    res = run(ip, source)
    assert res.success, res.error_in_exec
    assert ip.run_line_magic("track", "flush") is None
    session = ip.magics_manager.registry["TrackMagics"].session
    assert session.flush(60) == 0
    key = session.history[-1].key
    return session.journal().run_id(session.history[-1].uri, key)


def logged_models(client, run_id: str) -> list:
    import mlflow

    exp = client.get_run(run_id).info.experiment_id
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        found = mlflow.search_logged_models(experiment_ids=[exp], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    return [m for m in found if m.source_run_id == run_id]


def test_track_log_model_is_an_mlflow3_logged_model_linked_to_run_metrics_and_data(ip, client):
    import mlflow.pyfunc

    assert run(ip, CANCER).success
    run_id = tracked(ip, "%%track --log-model clf --eval X_test,y_test\nC = 0.5\n"
                         "clf = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X_train, y_train)\n"
                         "acc = float(clf.score(X_test, y_test))")

    [model] = logged_models(client, run_id)
    assert model.name == "model" and model.status.to_int() == 2  # READY (LoggedModelStatus.READY)
    r = client.get_run(run_id)
    assert [o.model_id for o in r.outputs.model_outputs] == [model.model_id]  # the run's "Logged models"
    assert r.data.tags["mlops.model"] == "model" and model.params["C"] == "0.5"
    # The model's score and the dummy's, on the run and on the model, measured on X_test.
    f1, base = r.data.metrics["f1"], r.data.metrics["baseline.f1"]
    assert f1 > 0.95 and 0.7 < base < 0.8, (f1, base)  # most-frequent class: F1 of always saying 1
    x_test = {d.dataset.name: d.dataset for d in r.inputs.dataset_inputs}["X_test"]
    on_model = {m.key: m for m in model.metrics}
    assert on_model["f1"].value == f1 and on_model["baseline.f1"].value == base and "acc" in on_model
    assert (on_model["f1"].dataset_name, on_model["f1"].dataset_digest) == ("X_test", x_test.digest)
    assert len(client.get_metric_history(run_id, "f1")) == 1  # linking the model added no second point
    # The saved folder: signature and input example of X_test's columns, the model's identity stamped.
    mlmodel = Path(mlflow.artifacts.download_artifacts(f"{model.artifact_location}/MLmodel")).read_text()
    assert "mean radius" in mlmodel and f"model_id: {model.model_id}" in mlmodel and f"run_id: {run_id}" in mlmodel
    loaded = mlflow.pyfunc.load_model(f"models:/{model.model_id}")
    assert list(loaded.predict(ip.user_ns["X_test"].head(3))) == list(ip.user_ns["clf"].predict(ip.user_ns["X_test"].head(3)))
    assert len(mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(ip.user_ns["X_test"].head(2))) == 2


def test_log_model_eval_scores_a_regressor_against_the_mean(ip, client):
    setup = ("import mlops_magics as mm\nfrom sklearn.datasets import load_diabetes\n"
             "from sklearn.linear_model import Ridge\nfrom sklearn.model_selection import train_test_split\n"
             "d = load_diabetes(as_frame=True)\n"
             "X_tr, X_te, y_tr, y_te = train_test_split(d.data, d.target, random_state=0)")
    assert run(ip, setup).success
    run_id = tracked(ip, "%%track --experiment diabetes\nreg = Ridge(alpha=0.1).fit(X_tr, y_tr)\n"
                         "logged = mm.log_model(reg, 'ridge', eval=(X_te, y_te))")
    created = client.get_experiment_by_name("diabetes")  # made by delivery: tagged for the model-training view
    assert created.tags["mlflow.experimentKind"] == "custom_model_development"
    metrics = client.get_run(run_id).data.metrics
    assert 0.3 < metrics["r2"] < 0.7 and -0.1 < metrics["baseline.r2"] <= 0.0, metrics
    assert "r2=" in repr(ip.user_ns["logged"]) and "beats its baseline" in repr(ip.user_ns["logged"])
    [model] = logged_models(client, run_id)
    assert model.name == "ridge" and model.model_type == "regressor"
    on_model = {m.key: m for m in model.metrics}
    assert on_model["r2"].dataset_name == "X_te"  # the data the cell read, found by its fingerprint


def test_model_mistakes_are_one_line_errors(ip):
    from mlops_magics.errors import MlopsError

    assert run(ip, SETUP).success
    for source, message in [  # --log-model: the cell succeeds, the one-line error shows under it
        ("%%track --log-model clf\nclf = LogisticRegression()", "is not fitted: call .fit(X, y)"),
        ("%%track --log-model clf\nclf = [1, 2]", "is a list, not a scikit-learn estimator"),
        ("%%track --log-model nope\nx = 1", "no variable named 'nope'"),
        ("%%track --log-model clf --eval Xe,ye\nclf = LogisticRegression().fit(df[['a']], df.y)",
         "--eval: no variable named 'Xe'"),
    ]:
        res = run(ip, source)
        assert res.success, (source, res.error_in_exec)
        shown = ip.display_pub.outputs[-1]["data"]["text/plain"]
        assert message in shown and "\n" not in shown.strip(), (source, shown)
    for source, message in [  # mm.log_model in the user's code raises there
        ("%%track\nimport mlops_magics as mm\nmm.log_model(LogisticRegression())", "is not fitted"),
        ("import mlops_magics as mm\nmm.log_model(LogisticRegression().fit(df[['a']], df.y))", "no run to log the model"),
        ("%%track\nmm.log_model(LogisticRegression().fit(df[['a']], df.y), eval=df)", "eval= wants a pair (X, y)"),
        ("%%track\nmm.log_model(LogisticRegression().fit(df[['a']], df.y), eval=(df[['a', 'b']], df.y))",
         "the model cannot predict on X"),
    ]:
        res = run(ip, source)
        err = res.error_in_exec
        assert isinstance(err, MlopsError) and message in str(err), (source, err)
        assert err._render_traceback_() == [f"{type(err).__name__}: {err}"]  # one line, no traceback
    for line, message in [("--eval X,y", "--eval scores the model of --log-model VAR"),
                          ("--log-model clf --eval X", "--eval wants two variable names X,Y")]:
        res = run(ip, f"%%track {line}\nx = 1")
        assert message in str(res.error_in_exec), (line, res.error_in_exec)


def test_promote_refuses_a_model_no_better_than_its_baseline_and_accepts_a_good_one(ip, client):
    assert run(ip, CANCER).success
    fit = "clf = DecisionTreeClassifier(random_state=0).fit(X_train, {labels})"
    assert run(ip, "from sklearn.tree import DecisionTreeClassifier").success
    noise = tracked(ip, "%%track --log-model clf --eval X_test,y_test\n" + fit.format(labels="shuffled"))
    good = tracked(ip, "%%track --log-model clf --eval X_test,y_test\n" + fit.format(labels="y_train"))
    m = client.get_run(noise).data.metrics
    assert m["f1"] <= m["baseline.f1"], m  # labels shuffled: no better than always saying 1

    refused = invoke("promote", noise, "--model", "cancer")
    assert refused.exit_code == 1 and refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"Error: refused: baseline: f1={m['f1']:.4g} does not beat its baseline "
                           f"baseline.f1={m['baseline.f1']:.4g}") and "--force" in line, line
    tags = client.get_run(noise).data.tags
    assert tags["mlops.promotion"] == "refused" and tags["mlops.promotion.check.baseline"].startswith("failed: ")
    assert tags["mlops.promotion.check.loads"].startswith("passed")
    assert tags["mlops.promotion.check.signature"].startswith("skipped: no alias holder")
    assert client.search_model_versions("name = 'cancer'") == []  # refused: nothing registered

    import mlops_magics as mm

    accepted = mm.promote(good, "cancer")
    assert accepted.promoted and accepted.version == "1" and not accepted.forced
    assert [c.passed for c in accepted.checks] == [True, True, None]
    version = client.get_model_version("cancer", "1")
    [model] = logged_models(client, good)
    assert version.source == f"models:/{model.model_id}" and version.run_id == good
    tags = client.get_run(good).data.tags
    assert tags["mlops.promotion"] == "promoted" and "mlops.promotion.forced" not in tags
    assert tags["mlops.promotion.check.loads"] == \
        "passed: loads in a fresh process and predicts 5 rows of its input example"

    forced = invoke("promote", noise, "--model", "cancer", "--force")  # checks overridden, comparison kept
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.startswith("kept (forced past failed checks: baseline: f1=")
    tags = client.get_run(noise).data.tags
    assert tags["mlops.promotion.forced"].startswith("true: baseline: ") and tags["mlops.promotion"] == "kept"
    assert tags["mlops.promotion.check.signature"] == "passed: same inputs and outputs as 'champion' (version 1 of 'cancer')"
    assert str(client.get_model_version_by_alias("cancer", "champion").version) == "1"


BROKEN = '''
from sklearn.linear_model import LogisticRegression


class CachedLookup(LogisticRegression):
    """Predicts from a cache built at fit time that pickling leaves out: fine in the kernel only."""

    def fit(self, X, y):
        super().fit(X, y)
        self.cache_ = {"ready": True}
        return self

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("cache_", None)
        return state

    def predict(self, X):
        assert self.cache_["ready"]
        return super().predict(X)
'''


def test_promote_refuses_a_model_that_fails_to_predict_in_a_fresh_process(ip, client, tmp_path, monkeypatch):
    (tmp_path / "cached_lookup.py").write_text(BROKEN)  # importable here and in the fresh process (cwd)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run(ip, CANCER + "from cached_lookup import CachedLookup").success
    broken = tracked(ip, "%%track --log-model clf --eval X_test,y_test\n"
                         "clf = CachedLookup(max_iter=5000).fit(X_train, y_train)")
    assert client.get_run(broken).data.metrics["f1"] > 0.9  # it predicts in the kernel

    result = invoke("promote", broken, "--model", "cancer")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "refused: loads: loads but fails to predict on its input example: AttributeError: " in line, line
    assert "cache_" in line, line
    tags = client.get_run(broken).data.tags
    assert tags["mlops.promotion.check.loads"].startswith("failed: loads but fails to predict")
    assert tags["mlops.promotion.check.baseline"].startswith("passed")
    assert client.search_model_versions("name = 'cancer'") == []


def test_promote_refuses_a_signature_unlike_the_champions(ip, client):
    import mlops_magics as mm
    from mlops_magics.models.promote import PromotionRefused

    assert run(ip, CANCER + "few = ['mean radius', 'mean texture']").success
    champion = tracked(ip, "%%track --log-model clf --eval X_test,y_test\n"
                           "clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)")
    narrow = tracked(ip, "%%track\nclf = LogisticRegression().fit(X_train[few], y_train)\n"
                         "mm.log_model(clf, eval=(X_test[few], y_test))")
    assert mm.promote(champion, "cancer").promoted
    with pytest.raises(PromotionRefused) as refused:
        mm.promote(narrow, "cancer")
    assert str(refused.value).startswith("refused: signature: inputs differ from 'champion' (version 1 of "
                                         "'cancer')'s: missing mean perimeter, mean area")
    assert [c.name for c in refused.value.checks if c.failed] == ["signature"]
    assert client.get_run(narrow).data.tags["mlops.promotion.check.signature"].startswith("failed: inputs differ")


def test_promote_moves_the_alias_only_for_the_better_run(ip, client):
    import mlops_magics as mm

    assert run(ip, SETUP + "\nimport mlops_magics as mm\nX = df[['a', 'b']]").success
    ids = {}
    estimators = {"first": "LogisticRegression()", "worse": "LogisticRegression()",
                  "better": "DecisionTreeClassifier(max_depth=2)"}  # trees need skops' trusted types
    for name, quality in (("first", 0.7), ("worse", 0.6), ("better", 0.9)):
        assert run(ip, f"quality = {quality}").success
        ids[name] = tracked(ip, f"%%track --name {name}\nfrom sklearn.tree import DecisionTreeClassifier\n"
                                f"clf = {estimators[name]}.fit(X, df.y)\n"
                                "f1 = quality * 1.0\nmm.log_model(clf, input_example=X)")

    first = mm.promote(ids["first"], "churn")
    assert first.promoted and first.version == "1" and "nobody held 'champion'" in repr(first)
    assert client.get_run(ids["first"]).data.tags["mlops.promotion.check.baseline"].startswith(
        "skipped: no baseline.f1 on the run")  # logged without eval=: nothing to compare with
    worse = mm.promote(ids["worse"], "churn")
    assert not worse.promoted and worse.version == "2" and worse.holder_version == "1"
    assert client.get_model_version_by_alias("churn", "champion").run_id == ids["first"]
    tags = client.get_run(ids["worse"]).data.tags
    assert tags["mlops.promotion"] == "kept" and tags["mlops.promotion.value"] == "0.6"
    assert tags["mlops.promotion.holder_value"] == "0.7" and tags["mlops.promotion.holder_version"] == "1"

    result = invoke("promote", ids["better"], "--model", "churn")
    assert result.exit_code == 0, result.output
    assert "f1=0.9 beats 'champion' (version 1, f1 0.7): 0.9 > 0.7; version 3 of 'churn' is now 'champion'" \
        in result.stdout
    assert client.get_model_version_by_alias("churn", "champion").run_id == ids["better"]
    import mlflow.pyfunc

    champion = mlflow.pyfunc.load_model("models:/churn@champion")
    assert len(champion.predict(ip.user_ns["X"].head(2))) == 2
    assert client.get_run(ids["better"]).data.tags["mlops.promotion"] == "promoted"
    again = mm.promote(ids["better"], "churn")  # no second version for the same run
    assert again.version == "3" and not again.promoted and "is 'champion' already" in repr(again)

    low = invoke("promote", ids["worse"], "--model", "churn", "--alias", "lowest", "--lower-is-better")
    assert low.exit_code == 0 and "is now 'lowest'" in low.stdout
    assert invoke("promote", ids["first"], "--model", "churn", "--alias", "lowest",
                  "--lower-is-better").stdout.startswith("kept:")


def test_promote_refuses_a_run_without_model_or_metric(ip, client):
    plain = tracked(ip, "%%track\nscore = float(0.5)")
    result = invoke("promote", plain, "--model", "churn", "--metric", "score")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: run {plain} has no logged model: log one with %%track --log-model VAR or mm.log_model(model) "
        "(and let MLflow take it: mm.flush())"]
    result = invoke("promote", plain, "--model", "churn", "--metric", "scor")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "has no metric 'scor'. Did you mean 'score'?" in result.stderr
    assert "no run 'nope'" in invoke("promote", "nope", "--model", "churn").stderr


@pytest.mark.kernel
def test_a_job_logs_its_models_and_the_cli_promotes_one(client):
    from mlops_magics.runner.run import run_notebook

    result = run_notebook(NOTEBOOKS / "model_train.ipynb", {"C": 0.5}, progress=False)
    assert result.status == "FINISHED", result.error
    r = client.get_run(result.run_id)
    assert r.data.tags["mlops.model"] == "model,tree" and r.data.tags["mlops.kind"] == "job"
    models = {m.name: m for m in logged_models(client, result.run_id)}  # a %%track cell's, a plain cell's
    assert set(models) == {"model", "tree"} and models["model"].params["C"] == "0.5"
    assert {"f1", "baseline.f1"} <= {m.key for m in models["tree"].metrics}
    assert r.data.metrics["baseline.f1"] < r.data.metrics["f1"]
    out = invoke("promote", result.run_id, "--model", "job-model")
    assert out.exit_code == 0, out.output
    assert "version 1 of 'job-model' is now 'champion'" in out.stdout
    assert client.get_model_version("job-model", "1").source == f"models:/{models['tree'].model_id}"  # the newest


def test_ui_opens_the_runs_in_the_model_training_view_with_useful_columns(ip, client, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    assert run(ip, CANCER).success
    tracked(ip, "%%track --log-model clf --eval X_test,y_test\nC = 0.5\n"
                "clf = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X_train, y_train)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlops_magics.cli", "ui", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/#/experiments/0/runs?workflowType=machine_learning&viewStateShareKey=mlops-magics"
        assert line.strip() == f"MLflow UI for sqlite:///{tmp_path}/mlflow.db, runs of 'Default': {url} (Ctrl-C stops it)"
        body = None
        for _ in range(240):  # the real MLflow server answers what the UI asks for
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get"
                                            "?experiment_id=0", timeout=5) as answer:
                    body = json.loads(answer.read())
                break
            except OSError:
                assert proc.poll() is None, "mlflow ui exited"
                time.sleep(0.5)
        assert body is not None
        tags = {t["key"]: t["value"] for t in body["experiment"]["tags"]}
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        view = json.loads(tags["mlflow.sharedViewState.mlops-magics"])
        assert view["searchFilter"] == "tags.`mlops.kind` != 'session'"
        assert view["selectedColumns"][:3] == ["attributes.`Duration`", "attributes.`Models`", "attributes.`Dataset`"]
        assert {"metrics.`f1`", "metrics.`baseline.f1`", "params.`C`"} <= set(view["selectedColumns"])
        assert "system.cell.wall_s" not in json.dumps(view)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            assert b"<html" in answer.read().lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
