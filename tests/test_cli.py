"""``mlops-magics`` commands against a real temporary MLflow store."""

from __future__ import annotations

import os

import pytest
from conftest import cell_runs, invoke, last_bundle, one_line_error, run



def test_runs_lists_a_tracked_cell(ip, client, tracking_uri):
    assert run(ip, "%%track --name fit\nalpha = 0.3\nloss = alpha * 5").success
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    [cell] = cell_runs(client)

    result = invoke("runs", "--tracking-uri", tracking_uri)

    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if cell.info.run_id in line]
    assert row.split()[:2] == ["fit", "FINISHED"]
    assert "loss=1.5" in row and " cell " in row
    assert "session" not in result.stdout  # the session run only groups cells
    assert invoke("runs").stdout == result.stdout  # $MLFLOW_TRACKING_URI is the default
    assert invoke("runs", "-n", "1", "--experiment", "Default").exit_code == 0


def test_runs_on_an_empty_store_says_so():
    result = invoke("runs")

    assert result.exit_code == 0
    assert "no tracked runs yet in experiment 'Default'" in result.stdout


@pytest.mark.parametrize(("argv", "expected"), [
    (["runs", "--experiement", "x"], "No such option '--experiement'. Did you mean '--experiment'?"),
    (["runs", "-n", "0"], "Invalid value for '-n': 0 is not in the range x>=1."),
    (["runs", "-n"], "Option '-n' requires an argument."),
    (["rusn"], "No such command 'rusn'. (Did you mean one of: 'run', 'runs'?)"),
    (["runs", "extra"], "Got unexpected extra argument (extra)"),
])
def test_bad_flags_are_one_line_usage_errors(argv, expected):
    result = invoke(*argv)

    assert result.exit_code == 2
    line = one_line_error(result)
    assert line.startswith(f"Error: {expected}")
    assert "--help" in line


def test_unknown_experiment_suggests_the_closest(ip, client):
    assert run(ip, "%%track --experiment churn\nalpha = 0.3").success
    run(ip, "%track flush")

    line = one_line_error(invoke("runs", "--experiment", "chrun"))

    assert line == ("Error: no experiment named 'chrun'. Did you mean 'churn'? "
                    "Experiments here: Default, churn")


def test_missing_store_is_an_error_not_a_new_store(tmp_path):
    missing = tmp_path / "elsewhere" / "mlflow.db"

    line = one_line_error(invoke("runs", "--tracking-uri", f"sqlite:///{missing}"))

    assert line.startswith(f"Error: no MLflow store at {missing}")
    assert not missing.parent.exists()


def test_unreachable_server_is_one_line_and_quick(monkeypatch):
    import socket
    import time

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()

    line = one_line_error(invoke("runs", "--tracking-uri", f"http://127.0.0.1:{port}"))

    assert line == f"Error: cannot reach MLflow at http://127.0.0.1:{port}: is the server running?"
    assert time.monotonic() - started < 20  # not MLflow's default minutes of retries
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the tweak was only for the call


def test_ui_starts_mlflow_ui_on_the_resolved_store(monkeypatch, tracking_uri):
    started = []

    def execv(path, argv):  # stands in for the process replacement only
        started.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    result = invoke("ui", "--port", "5123")

    assert result.exit_code == 0
    [argv] = started
    assert os.path.basename(argv[0]) in ("mlflow", "python", "python3") or argv[1:3] == ["-m", "mlflow"]
    assert argv[-7:] == ["ui", "--backend-store-uri", tracking_uri, "--host", "127.0.0.1", "--port", "5123"]
    assert "http://127.0.0.1:5123" in result.stdout


