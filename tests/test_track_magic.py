"""%%track through the real %load_ext in a fresh in-process shell, read back from MLflow."""

from __future__ import annotations

import json
import os

import pytest
from conftest import assert_once_across_reload, cell_runs, fresh_python, last_bundle, run
from IPython.core.error import UsageError

TRAIN = """
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True, as_frame=True)
C = {C}
model = LogisticRegression(C=C, max_iter=5000).fit(X, y)
accuracy = model.score(X, y)
"""


def flush(ip):
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]


def test_cell_becomes_run_with_params_metrics_data_lineage(ip, client):
    res = run(ip, "%%track\n" + TRAIN.format(C=0.5))
    assert res.success, res.error_in_exec
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.info.status == "FINISHED"
    assert cell.data.params["C"] == "0.5"
    assert cell.data.params["max_iter"] == "5000"  # literal keyword argument
    assert "accuracy" in cell.data.metrics and 0.9 < cell.data.metrics["accuracy"] <= 1.0
    for key in ("system.cell.wall_s", "system.cell.cpu_s", "system.cell.peak_mem_mb"):
        assert key in cell.data.metrics
    tags = cell.data.tags
    assert tags["mlops.kind"] == "cell"
    assert tags["mlops.execution_count"] == str(res.execution_count)  # the cell's In[n]
    assert len(tags["mlops.cell.sha256"]) == 64 and len(tags["mlops.env.sha256"]) == 64
    parent = client.get_run(tags["mlflow.parentRunId"])
    assert parent.data.tags["mlops.kind"] == "session"
    inputs = {i.dataset.name: i for i in cell.inputs.dataset_inputs}
    assert {"X", "y"} <= set(inputs)
    assert all(len(i.dataset.digest) <= 36 for i in inputs.values())
    import mlops_magics as mm

    assert inputs["X"].dataset.digest == mm.fingerprint(ip.user_ns["X"]).digest
    assert [t.value for t in inputs["X"].tags] == ["output"]
    artifacts = {a.path for a in client.list_artifacts(cell.info.run_id, "mlops")}
    assert {"mlops/cell.py", "mlops/requirements.txt"} <= artifacts
    cell_py = client.download_artifacts(cell.info.run_id, "mlops/cell.py")
    assert "LogisticRegression(C=C, max_iter=5000)" in open(cell_py).read()
    reqs = open(client.download_artifacts(cell.info.run_id, "mlops/requirements.txt")).read()
    assert "mlflow==" in reqs and "scikit-learn==" in reqs


def test_rerun_with_new_value_is_a_new_run_under_same_session(ip, client):
    assert run(ip, "%%track\n" + TRAIN.format(C=0.5)).success
    assert run(ip, "%%track\n" + TRAIN.format(C=2.0)).success
    flush(ip)
    first, second = cell_runs(client)
    assert (first.data.params["C"], second.data.params["C"]) == ("0.5", "2.0")
    assert first.data.tags["mlflow.parentRunId"] == second.data.tags["mlflow.parentRunId"]
    count = int(first.data.tags["mlops.execution_count"])
    assert second.data.tags["mlops.execution_count"] == str(count + 1)


def test_summary_shows_run_and_what_changed(ip):
    # the same cell (a frontend's cell id) run again with another value
    ip.run_cell("%%track\n" + TRAIN.format(C=0.5), store_history=True, cell_id="train")
    ip.run_cell("%%track\n" + TRAIN.format(C=2.0), store_history=True, cell_id="train")
    bundle = last_bundle(ip, "text/html")
    text, html = bundle["text/plain"], bundle["text/html"]
    assert "C=2.0 (was 0.5)" in text and "C=2.0 (was 0.5)" in html
    assert "accuracy=" in text and ("(+" in text or "(−" in text or "(=)" in text)
    assert "X" in text and "(unchanged)" in text  # same data both times
    assert "FINISHED" in text and "<table>" in html


def test_data_read_is_input_and_data_written_is_output(ip, client):
    ip.user_ns["df"] = __import__("pandas").DataFrame({"a": [1.0, 2.0, None], "b": [1, 2, 3]})
    assert run(ip, "%%track\nclean = df.dropna()\nn_rows = len(clean)").success
    flush(ip)
    (cell,) = cell_runs(client)
    contexts = {(i.dataset.name, i.tags[0].value) for i in cell.inputs.dataset_inputs}
    assert contexts == {("df", "input"), ("clean", "output")}
    assert cell.data.metrics["n_rows"] == 2


def test_value_change_anywhere_changes_digest(ip, client):
    import numpy as np

    ip.user_ns["arr"] = np.zeros(1_000_000)
    run(ip, "%%track --name probe\ntotal = float(arr.sum())")
    ip.user_ns["arr"] = ip.user_ns["arr"].copy()
    ip.user_ns["arr"][-1] = 1.0
    run(ip, "%%track --name probe\ntotal = float(arr.sum())")
    assert "(values changed)" in last_bundle(ip)["text/plain"]
    flush(ip)
    a, b = cell_runs(client)
    assert a.inputs.dataset_inputs[0].dataset.digest != b.inputs.dataset_inputs[0].dataset.digest


def test_files_named_in_cell_are_fingerprinted(ip, client, tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n1,2\n3,4\n")
    code = "import pandas as pd\nraw = pd.read_csv('train.csv')\nraw.to_csv('clean.csv', index=False)"
    assert run(ip, "%%track\n" + code).success
    flush(ip)
    (cell,) = cell_runs(client)
    contexts = {(i.dataset.name, i.tags[0].value) for i in cell.inputs.dataset_inputs}
    assert ("train.csv", "input") in contexts and ("clean.csv", "output") in contexts


def test_dict_of_scalars_and_step_metrics(ip, client):
    code = ("import mlops_magics as mm\nscores = {'f1': round(0.8, 2), 'auc': round(0.9, 2), 'name': 'x'}\n"
            "for epoch in range(50):\n    mm.log_metric('loss', 1 / (epoch + 1))\n"
            "mm.log_metrics({'a': 1.0, 'b': 2.0}, step=3)")
    assert run(ip, "%%track\n" + code).success
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.data.metrics["scores.f1"] == 0.8 and cell.data.metrics["scores.auc"] == 0.9
    history = client.get_metric_history(cell.info.run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert history[-1].value == pytest.approx(1 / 50)
    assert "epoch" not in cell.data.metrics  # loop variables are not metrics
    assert client.get_metric_history(cell.info.run_id, "a")[0].step == 3


def test_log_metric_outside_a_run_is_one_line_error(ip):
    res = run(ip, "import mlops_magics as mm\nmm.log_metric('x', 1.0)")
    assert not res.success
    err = res.error_in_exec
    assert type(err).__name__ == "NoActiveRunError" and "%%track" in str(err)
    assert err._render_traceback_() == [f"NoActiveRunError: {err}"]


def test_nan_metric_warns_and_cell_goes_on(ip, client):
    res = run(ip, "%%track\nloss = float('nan')\nacc = round(0.5, 1)\nbig = float('inf')")
    assert res.success
    text = last_bundle(ip)["text/plain"]
    assert "metric loss is nan: not logged" in text and "metric big is inf" in text
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.data.metrics["acc"] == 0.5 and "loss" not in cell.data.metrics
    assert cell.data.tags["mlops.nonfinite"] == "big,loss"


def test_failing_cell_is_recorded_failed_then_reraised(ip, client):
    res = run(ip, "%%track\nlr = 0.1\nhalf = lr * 5\nraise ValueError('bad shape')")
    assert not res.success and isinstance(res.error_in_exec, ValueError)
    assert "FAILED" in last_bundle(ip)["text/plain"]
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.info.status == "FAILED"
    assert cell.data.tags["mlops.failure"] == "error"
    assert cell.data.tags["mlops.error"] == "ValueError: bad shape"
    assert cell.data.params["lr"] == "0.1"  # what was recorded is kept
    assert cell.data.metrics["half"] == 0.5


def test_last_expression_value_is_displayed_once(ip, capsys):
    before = len(ip.display_pub.outputs)
    res = run(ip, "%%track\nx = 21\nx * 2")
    assert res.success and res.result == 42
    shown = capsys.readouterr().out  # the displayhook's Out[n]: 42
    assert [line for line in shown.splitlines() if line.endswith(": 42")] == [f"Out[{res.execution_count}]: 42"]
    again = [o for o in ip.display_pub.outputs[before:] if o["data"].get("text/plain") == "42"]
    assert again == []  # not displayed a second time through display()


def test_misspelt_flag_is_one_line_with_suggestion(ip):
    with pytest.raises(UsageError, match=r"unknown option --parms\. Did you mean '--params'\?"):
        ip.run_cell_magic("track", "--parms a", "a = 1")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        ip.run_cell_magic("track", "--tag novalue", "a = 1")
    with pytest.raises(UsageError, match="Did you mean 'status'"):
        ip.run_line_magic("track", "stauts")


def test_secrets_are_masked_everywhere(ip, client):
    code = "api_key = 'sk-live-123'\nconn = dict(password='hunter2', user='me')\nx = 1.5"
    assert run(ip, "%%track --tag auth_token=abc --tag team=ml\n" + code).success
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.data.params["api_key"] == "***" and cell.data.params["password"] == "***"
    assert cell.data.params["user"] == "me"
    assert cell.data.tags["auth_token"] == "***" and cell.data.tags["team"] == "ml"
    source = open(client.download_artifacts(cell.info.run_id, "mlops/cell.py")).read()
    assert "sk-live-123" not in source and "hunter2" not in source and "***" in source
    assert "sk-live-123" not in json.dumps(last_bundle(ip))
    from pathlib import Path

    home = Path(os.environ["MLOPS_MAGICS_HOME"])  # the journal's own bytes, WAL included
    written = [p for p in home.rglob("*") if p.is_file()] + [p for p in Path.cwd().rglob("*") if p.is_file()]
    assert any(p.name.startswith("journal.db") for p in written)
    for path in written:
        data = path.read_bytes()
        assert b"sk-live-123" not in data and b"hunter2" not in data, path


def test_explicit_flags_and_no_auto(ip, client):
    ip.user_ns["frame"] = __import__("pandas").DataFrame({"a": [1, 2]})
    code = "lr = 0.3\nscore = 0.7\nother = 0.1\nsize = len(frame)"
    line = "--no-auto --params lr --metrics score --data frame --name explicit --experiment exp-a --tag k=v"
    assert run(ip, f"%%track {line}\n{code}").success
    flush(ip)
    (cell,) = cell_runs(client, "exp-a")
    assert cell.info.run_name == "explicit"
    assert cell.data.params == {"lr": "0.3"}
    assert {k for k in cell.data.metrics if not k.startswith("system.")} == {"score"}
    assert [i.dataset.name for i in cell.inputs.dataset_inputs] == ["frame"]
    assert cell.data.tags["k"] == "v"


def test_unhashable_data_is_noted_and_cell_goes_on(ip, client):
    ip.user_ns["thing"] = object()
    assert run(ip, "%%track --data thing\ny = 2.0").success
    assert "thing: not fingerprinted" in last_bundle(ip)["text/plain"]
    flush(ip)
    (cell,) = cell_runs(client)
    assert "thing" in cell.data.tags["mlops.unhashed"]


def test_config_trait_sets_default_experiment(ip, client):
    ip.run_line_magic("config", "TrackMagics.experiment = 'churn'")
    assert run(ip, "%%track\nm = 1.0").success
    flush(ip)
    assert len(cell_runs(client, "churn")) == 1


def test_params_keep_int_and_float_distinct(ip, client):
    run(ip, "%%track --name a\nn = 7")
    run(ip, "%%track --name b\nn = 7.0\nlayers = [64, 32]\nneg = -1")
    flush(ip)
    a, b = cell_runs(client)
    assert a.data.params["n"] == "7" and b.data.params["n"] == "7.0"
    assert b.data.params["layers"] == "[64, 32]" and b.data.params["neg"] == "-1"


def test_status_and_runs_subcommands(ip, client):
    run(ip, "%%track --name first\nm = 0.25")
    run(ip, "%track runs -n 5")
    bundle = last_bundle(ip, "text/html")
    (cell,) = cell_runs(client)
    assert "first" in bundle["text/plain"] and cell.info.run_id in bundle["text/plain"]
    run(ip, "%track status")
    text = last_bundle(ip)["text/plain"]
    assert "mlflow.db" in text and "0 pending" in text and "tracked cells" in text


def test_mm_flush_returns_zero_when_delivered(ip, client):
    run(ip, "%%track\nm = 1.0")
    import mlops_magics as mm

    assert mm.flush(30) == 0
    assert len(cell_runs(client)) == 1


def test_unreachable_server_keeps_records_waiting(ip, monkeypatch):
    ip.run_line_magic("config", "TrackMagics.tracking_uri = 'http://127.0.0.1:9'")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    assert run(ip, "%%track\nm = 1.0").success  # the cell never waits for MLflow
    run(ip, "%track flush --timeout 1")
    assert "still pending" in last_bundle(ip)["text/plain"]
    run(ip, "%track status")
    assert "127.0.0.1:9" in last_bundle(ip)["text/plain"]
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 1.0")


def test_reload_and_unload_leave_no_doubled_callbacks(ip):
    def ours():
        return [cb for cb in ip.events.callbacks["pre_run_cell"] if "TrackMagics" in repr(cb)]

    assert len(ours()) == 1
    assert ip.extension_manager.load_extension("mlops_magics") == "already loaded"
    assert_once_across_reload(ip, ours)


def test_load_ext_does_not_import_mlflow():
    code = ("import sys, time\nfrom IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\nt = time.perf_counter()\n"
            "ip.run_line_magic('load_ext', 'mlops_magics')\n"
            "heavy = [m for m in ('mlflow', 'pandas', 'sklearn', 'pyarrow', 'altair', 'ipywidgets') if m in sys.modules]\n"
            "print(heavy)")
    assert fresh_python(code) == "[]"


def test_check_metric_tags_an_alert_when_crossed(ip, client):
    code = "import mlops_magics as mm\nmm.check_metric('f1', min=0.9)\nf1 = round(0.72, 2)"
    assert run(ip, "%%track --name low\n" + code).success
    assert "alert    f1=0.72 below min 0.9" in last_bundle(ip)["text/plain"]
    assert run(ip, "%%track --name fine\n" + code.replace("0.72", "0.95")).success
    flush(ip)
    low, fine = cell_runs(client)
    assert low.data.tags["mlops.alert"] == "metric" and "below min 0.9" in low.data.tags["mlops.alert.reason"]
    assert "mlops.alert" not in fine.data.tags


def test_tracked_data_gets_a_drift_profile(ip, client):
    import pandas as pd

    ip.user_ns["frame"] = pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "city": ["a", "b", "a", "c"]})
    assert run(ip, "%%track\nrows = len(frame.dropna())").success
    flush(ip)
    (cell,) = cell_runs(client)
    path = client.download_artifacts(cell.info.run_id, "mlops/profiles/frame.json")
    from mlops_magics.monitoring.profile import Profile

    prof = Profile.from_json(open(path).read())
    assert set(prof.columns) == {"x", "city"}
    import mlops_magics as mm

    report = mm.drift(f"runs:/{cell.info.run_id}/frame", ip.user_ns["frame"])
    assert not report.drifted
