"""The journal: records durable before the cell returns, delivered exactly once, through outages."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import cell_runs, invoke, last_bundle, run
from servers import MlflowServer, free_port

from mlops_magics.journal.store import Journal
from mlops_magics.journal.sync import sync
from mlops_magics.journal import records


def journal_rows(tmp_path):
    db = sqlite3.connect(tmp_path / ".mlops_magics" / "journal.db")
    try:
        return db.execute("SELECT COALESCE(SUM(n_ops - done), 0) FROM batches").fetchone()[0]
    finally:
        db.close()


def test_records_are_in_the_journal_before_the_cell_returns(ip, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody there
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 0.5")
    assert run(ip, "%%track\nlr = 0.1\nacc = lr * 9").success
    path = tmp_path / ".mlops_magics" / "journal.db"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert journal_rows(tmp_path) >= 5  # session start, cell start, log, artifact, end
    text = last_bundle(ip)["text/plain"]
    assert "FINISHED" in text
    for _ in range(100):  # the flusher's first try (it imports mlflow first) fails
        run(ip, "%track status")
        if "not reachable" in last_bundle(ip)["text/plain"]:
            break
        time.sleep(0.2)
    status = last_bundle(ip)["text/plain"]
    assert "pending" in status and "not reachable" in status
    run(ip, "%%track\nb = 2.5 * 2")
    assert "earlier records wait for http://127.0.0.1" in last_bundle(ip)["text/plain"]


@pytest.mark.race
def test_server_killed_and_restarted_loses_and_duplicates_nothing(ip, tmp_path, monkeypatch):
    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path).start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 2.0")  # teardown runs after the server stops
    try:
        step_cell = "import mlops_magics as mm\nfor s in range(300):\n    mm.log_metric('loss', 1 / (s + 1))\nacc = {i} / 10"
        for i in range(3):
            assert run(ip, "%%track\n" + step_cell.format(i=i)).success
        server.stop()
        for i in range(3, 6):  # the server is down: cells still run and return
            assert run(ip, "%%track\n" + step_cell.format(i=i)).success
        assert journal_rows(tmp_path) > 0
        server.start()
        run(ip, "%track flush --timeout 60")
        assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
        from mlflow import MlflowClient

        client = MlflowClient(server.uri)
        runs = cell_runs(client)
        assert sorted(r.data.metrics["acc"] for r in runs) == [i / 10 for i in range(6)]
        for r in runs:
            history = client.get_metric_history(r.info.run_id, "loss")
            assert len(history) == 300 and len({m.step for m in history}) == 300
        assert all(r.info.status == "FINISHED" for r in runs)
    finally:
        server.stop()


@pytest.mark.race
def test_replay_after_crash_creates_no_duplicate_run(tmp_path, tracking_uri, client):
    journal = Journal(tmp_path / "j.db")
    key = records.new_key()
    ops = [records.start(key, experiment="Default", name="r", start_ms=records.now_ms(), tags={"mlops.kind": "cell"}),
           records.log(key, params={"a": "1"}, metrics=[("m", 1.0, records.now_ms(), 0)]),
           records.end(key, status="FINISHED", end_ms=records.now_ms())]
    journal.append(tracking_uri, ops, owner="test:1:x")
    from mlops_magics.journal.mlflow_writer import MlflowWriter

    MlflowWriter(tracking_uri, journal).apply(ops[0])  # created, then the process "crashed"
    journal._write("DELETE FROM runs")  # ... before the mapping was committed
    journal._write("UPDATE batches SET attempts = 1")
    assert sync(journal_path=tmp_path / "j.db", timeout=60) == {tracking_uri: 0}
    found = client.search_runs(["0"], f"tags.`mlops.run_key` = '{key}'")
    assert len(found) == 1
    assert found[0].data.params == {"a": "1"} and found[0].info.status == "FINISHED"
    assert sync(journal_path=tmp_path / "j.db", timeout=10) == {}
    assert len(client.search_runs(["0"], f"tags.`mlops.run_key` = '{key}'")) == 1


def test_rejected_record_is_set_aside_and_the_rest_arrives(ip, client):
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)  # MLflow refuses runs in a deleted experiment, for good
    assert run(ip, "%%track --experiment gone\nok = 0.5 + 0.25").success
    assert run(ip, "%%track\nnext_one = 1.0 + 1").success
    run(ip, "%track flush --timeout 60")
    assert "set aside" in last_bundle(ip)["text/plain"]  # never "all records are in MLflow"
    runs = cell_runs(client)
    assert runs[-1].data.metrics["next_one"] == 2.0
    listed = invoke("journal")  # the refused records are kept, set aside, with MLflow's reason
    assert listed.exit_code == 0, listed.output
    aside = [line for line in listed.stdout.splitlines() if "set aside" in line]
    assert any("experiment 'gone' is deleted" in line for line in aside), listed.stdout
    assert any("metric ok" in line for line in aside), listed.stdout  # what the refused run held, kept


def test_step_metrics_outside_a_cell_say_how_to_start_a_run(ip):
    res = run(ip, "import mlops_magics as mm\nmm.log_metrics({'a': 1.0})")
    assert "inside a %%track cell" in str(res.error_in_exec)


@pytest.mark.race
def test_many_processes_into_one_sqlite_store(tmp_path, tracking_uri, client):
    script = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "mlops_magics")
        worker = int(sys.argv[1])
        for i in range(4):
            r = ip.run_cell(f"%%track --name w{worker}-{i}\\nworker = {worker}\\nscore = {worker} * 10 + {i} + 0.0", store_history=True)
            assert r.success
        import mlops_magics as mm
        left = mm.flush(120)
        ip.run_line_magic("unload_ext", "mlops_magics")
        print("left", left)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for w in range(8)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
        assert "left 0" in out and "database is locked" not in out
    runs = cell_runs(client)
    assert len(runs) == 32
    assert sorted(r.data.metrics["score"] for r in runs) == sorted(w * 10 + i for w in range(8) for i in range(4))
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.kernel
def test_kernel_killed_after_a_cell_then_sync_delivers(tmp_path):
    from jupyter_client.manager import start_new_kernel

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        reply = kc.execute_interactive("%%track --name doomed\nlr = 0.01\nimport mlops_magics as mm\n"
                                       "for s in range(100):\n    mm.log_metric('loss', 1 / (s + 1))\nacc = 0.75 + 0",
                                       timeout=120)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # no atexit, no flush
        km.shutdown_kernel(now=True)
    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path, port=port).start()
    try:
        out = subprocess.run([sys.executable, "-m", "mlops_magics.cli", "sync"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout + out.stderr
        from mlflow import MlflowClient

        client = MlflowClient(server.uri)
        (cell,) = cell_runs(client)
        assert cell.info.run_name == "doomed" and cell.data.params["lr"] == "0.01"
        assert cell.data.metrics["acc"] == 0.75
        assert len(client.get_metric_history(cell.info.run_id, "loss")) == 100
        session = client.get_run(cell.data.tags["mlflow.parentRunId"])
        assert session.info.status == "KILLED" and session.data.tags["mlops.failure"] == "kernel_died"
        again = subprocess.run([sys.executable, "-m", "mlops_magics.cli", "sync"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=180)
        assert again.returncode == 0
        assert len(client.search_runs(["0"])) == 2  # nothing new: one cell run, one session run
    finally:
        server.stop()


def test_journal_holds_no_credentials(tmp_path):
    journal = Journal(tmp_path / "j.db")
    journal.append("http://alice:s3cret@127.0.0.1:5000", [records.end("k", status="FINISHED", end_ms=1)], "o:1:x")
    raw = (tmp_path / "j.db").read_bytes() + (tmp_path / "j.db-wal").read_bytes()
    assert b"s3cret" not in raw and b"alice" not in raw
    assert json.dumps(journal.uris()) == '["http://127.0.0.1:5000"]'


def test_the_users_process_never_imports_mlflow(tmp_path, tracking_uri, client):
    """Delivery runs in its own process: importing mlflow in a thread of the kernel left
    half-imported modules (polars) in sys.modules, and scikit-learn's probes of them failed."""
    script = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "mlops_magics")
        assert ip.run_cell("%%track\\nimport numpy as np\\nx = np.arange(10.0)\\nm = float(x.mean())", store_history=True).success
        import mlops_magics as mm
        print("left", mm.flush(120))
        print("mlflow imported:", "mlflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "left 0" in out.stdout and "mlflow imported: False" in out.stdout
    assert cell_runs(client)[0].data.metrics["m"] == 4.5


def test_the_journal_keeps_each_runs_latest_metrics_as_mlflow_shows_them(tmp_path, tracking_uri, client):
    """What a sweep ranks by, without loading mlflow: MLflow's latest value is the largest
    (step, timestamp, value), whatever order the points came in."""
    journal = Journal(tmp_path / "j.db")
    key, t = records.new_key(), records.now_ms()
    journal.append(tracking_uri, [
        records.start(key, experiment="Default", name="r", start_ms=t, tags={"mlops.kind": "cell"}),
        records.log(key, metrics=[("loss", 0.5, t, 3), ("loss", 0.9, t + 5, 1), ("acc", 0.7, t, 0)]),
    ], owner="test:1:x")
    journal.append(tracking_uri, [
        records.log(key, metrics=[("loss", 0.7, t - 10, 3), ("acc", 0.6, t + 1, 0), ("f1", 0.2, t, 0)]),
        records.log(key, metrics=[("f1", 0.1, t, 0)]),  # a tie on step and time: the larger value stays
        records.end(key, status="FINISHED", end_ms=t + 20),
    ], owner="test:1:x")
    kept = journal.latest_metrics(tracking_uri, [key, "no-such-key"])
    assert kept == {key: {"loss": 0.5, "acc": 0.6, "f1": 0.2}, "no-such-key": {}}
    assert sync(journal_path=tmp_path / "j.db", timeout=60) == {tracking_uri: 0}
    run, = client.search_runs(["0"], f"tags.`mlops.run_key` = '{key}'")
    assert run.data.metrics == kept[key]
    assert journal.latest_metrics(tracking_uri, [key]) == {key: kept[key]}  # delivered, still there to rank by
