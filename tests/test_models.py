"""Models: ``%%track --log-model`` and ``mm.log_model`` log a servable scikit-learn model with
signature and input example; ``promote`` moves the alias only for a better run."""

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


def invoke(*argv: str):
    return CliRunner().invoke(cli, list(argv), prog_name="mlops-magics")


def tracked(ip, source: str) -> str:
    """Run a %%track cell, deliver it, return its MLflow run id."""
    res = run(ip, source)
    assert res.success, res.error_in_exec
    assert ip.run_line_magic("track", "flush") is None
    session = ip.magics_manager.registry["TrackMagics"].session
    assert session.flush(30) == 0
    key = session.history[-1].key
    return session.journal().run_id(session.history[-1].uri, key)


def test_track_log_model_logs_a_servable_model_with_signature_and_example(ip, client):
    import mlflow.pyfunc

    assert run(ip, SETUP).success
    run_id = tracked(ip, '%%track --log-model clf\nclf = LogisticRegression().fit(df[["a", "b"]], df.y)\n'
                         'acc = float(clf.score(df[["a", "b"]], df.y))')

    r = client.get_run(run_id)
    assert r.data.tags["mlops.model"] == "model" and "acc" in r.data.metrics
    files = {a.path for a in client.list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/input_example.json"} <= files
    mlmodel = Path(client.download_artifacts(run_id, "model/MLmodel")).read_text()
    assert '"name": "a"' in mlmodel and '"name": "b"' in mlmodel and "noise" not in mlmodel  # signature
    example = json.loads(Path(client.download_artifacts(run_id, "model/input_example.json")).read_text())
    assert example["columns"] == ["a", "b"] and len(example["data"]) == 5
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert len(model.predict(ip.user_ns["df"][["a", "b"]].head(3))) == 3


def test_model_mistakes_are_one_line_errors(ip):
    from mlops_magics.errors import MlopsError

    assert run(ip, SETUP).success
    for source, message in [  # --log-model: the cell succeeds, the one-line error shows under it
        ("%%track --log-model clf\nclf = LogisticRegression()", "is not fitted: call .fit(X, y)"),
        ("%%track --log-model clf\nclf = [1, 2]", "is a list, not a scikit-learn estimator"),
        ("%%track --log-model nope\nx = 1", "no variable named 'nope'"),
    ]:
        res = run(ip, source)
        assert res.success, (source, res.error_in_exec)
        shown = ip.display_pub.outputs[-1]["data"]["text/plain"]
        assert message in shown and "\n" not in shown.strip(), (source, shown)
    for source, message in [  # mm.log_model in the user's code raises there
        ("%%track\nimport mlops_magics as mm\nmm.log_model(LogisticRegression())", "is not fitted"),
        ("import mlops_magics as mm\nmm.log_model(LogisticRegression().fit(df[['a']], df.y))", "no run to log the model"),
    ]:
        res = run(ip, source)
        err = res.error_in_exec
        assert isinstance(err, MlopsError) and message in str(err), (source, err)
        assert err._render_traceback_() == [f"{type(err).__name__}: {err}"]  # one line, no traceback


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
def test_a_job_logs_its_model_and_the_cli_promotes_it(client):
    from mlops_magics.runner.execute import run_notebook

    result = run_notebook(NOTEBOOKS / "model_train.ipynb", {"C": 0.5}, progress=False)
    assert result.status == "FINISHED", result.error
    r = client.get_run(result.run_id)
    assert r.data.tags["mlops.model"] == "model,tree" and r.data.tags["mlops.kind"] == "job"
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(result.run_id, "model")}  # %%track cell
    assert "tree/model.skops" in {a.path for a in client.list_artifacts(result.run_id, "tree")}  # plain cell
    out = invoke("promote", result.run_id, "--model", "job-model")
    assert out.exit_code == 0 and "version 1 of 'job-model' is now 'champion'" in out.stdout
