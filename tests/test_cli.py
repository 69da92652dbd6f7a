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


def test_unreachable_server_is_one_line(monkeypatch):
    import socket

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    line = one_line_error(invoke("runs", "--tracking-uri", f"http://127.0.0.1:{port}"))

    assert line == f"Error: cannot reach MLflow at http://127.0.0.1:{port}: is the server running?"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the tweak was only for the call
    # How quickly (not MLflow's default minutes of retries): bench/cli_errors.py.


def test_ui_serves_the_resolved_store(ip, tracking_uri, tmp_path):
    """A real ``mlops-magics ui`` process: the MLflow UI answers on 127.0.0.1 with this store's runs."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    from servers import free_port

    assert run(ip, "%%track --name seen-in-ui\nscore = 0.5").success
    run(ip, "%track flush")
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "mlops-magics")
    proc = subprocess.Popen([exe, "ui", "--port", str(port)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body = None
        deadline = time.monotonic() + 300  # the UI process imports mlflow and starts its server
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search",
                                             data=json.dumps({"experiment_ids": ["0"]}).encode(),
                                             headers={"Content-Type": "application/json"})
                body = json.load(urllib.request.urlopen(req, timeout=5))
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "the UI never answered"
        assert [r["info"]["run_name"] for r in body["runs"] if r["info"]["run_name"] == "seen-in-ui"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read(2048).lower()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
    assert f"http://127.0.0.1:{port}" in proc.stdout.read()



