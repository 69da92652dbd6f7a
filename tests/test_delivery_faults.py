"""Nothing discarded silently, and a storage fault never breaks the user's cell.

Real faults: an HTTP endpoint answering 400 with an HTML page, a tmpfs that is full or
read-only (as root), a journal overwritten with garbage, a journal locked by another process.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import cell_runs, invoke, last_bundle, run
from servers import MlflowServer, free_port

from mlops_magics.journal.store import Journal
from mlops_magics.journal.sync import sync
from mlops_magics.journal import records

LOOP_CELL = textwrap.dedent("""\
    %%track
    import mlops_magics as mm
    lr = 0.3
    for s in range(20_000):
        mm.log_metric("loss", 1 / (s + 1))
    acc = lr * 2.5
""")


class _Html400(http.server.BaseHTTPRequestHandler):
    """What a proxy or an HTTPS port spoken to in plain HTTP answers: 400 and a web page."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"<html><body><h1>400 Bad Request</h1>The plain HTTP request was sent to HTTPS port</body></html>"
        self.send_response(400)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def html_400(port: int):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Html400)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def outputs_text(ip) -> str:
    return "\n".join(o["data"].get("text/plain", "") for o in ip.display_pub.outputs)


def cell_output(ip, source: str) -> tuple[object, str]:
    """Run a cell; return its result and the text it displayed (only its own)."""
    before = len(ip.display_pub.outputs)
    result = run(ip, source)
    text = "\n".join(o["data"].get("text/plain", "") for o in ip.display_pub.outputs[before:])
    return result, text


# -- point 3: set aside only on MLflow's own answer ----------------------------------------------
def test_an_html_400_is_an_outage_then_a_real_server_on_that_port_gets_everything(ip, tmp_path, monkeypatch):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 2.0")
    journal = Journal(tmp_path / ".mlops_magics" / "journal.db")
    with html_400(port):
        assert run(ip, "%%track\nlr = 0.3\nacc = lr * 3").success
        for _ in range(300):  # until delivery met the HTML answer
            if journal.last_error(uri):
                break
            time.sleep(0.2)
        assert "400" in (journal.last_error(uri) or "")
        _, text = cell_output(ip, "%track flush --timeout 3")
        assert "all records are in MLflow" not in text and "pending" in text
        assert journal.pending(uri) > 0 and journal.rejected_count(uri) == 0
    shutil.copy(tmp_path / "mlflow.db", tmp_path / "server.db")  # migrated already: the server starts sooner
    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path, port=port).start(timeout=240)
    try:
        _, text = cell_output(ip, "%track flush --timeout 120")
        assert "all records are in MLflow" in text
        from mlflow import MlflowClient

        runs = cell_runs(MlflowClient(uri))
        assert len(runs) == 1 and runs[0].data.params == {"lr": "0.3"}
        assert runs[0].data.metrics["acc"] == pytest.approx(0.9)
    finally:
        server.stop()


def test_mlflow_refusals_are_told_apart_from_answers_that_are_not_mlflows():
    from mlflow.exceptions import MlflowException, RestException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE
    from mlflow.utils.rest_utils import verify_rest_response

    from mlops_magics.journal.mlflow_writer import PermanentError, is_transient

    class Response:
        status_code, text = 400, "<html>Bad Request</html>"

    with pytest.raises(MlflowException) as html:
        verify_rest_response(Response(), "/api/2.0/mlflow/runs/log-batch")
    assert html.value.error_code == "BAD_REQUEST" and is_transient(html.value)
    assert not is_transient(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"}))
    assert is_transient(RestException({"message": "a proxy's JSON"}))
    assert not is_transient(MlflowException("bad key", INVALID_PARAMETER_VALUE))  # the SQL store's answer
    assert not is_transient(MlflowException("bad", BAD_REQUEST))
    assert not is_transient(PermanentError("run key k was never started"))
    for outage in (ConnectionError("refused"), TimeoutError(), ValueError("Expecting value: line 1"),
                   MlflowException("boom"), sqlite3.OperationalError("database is locked")):
        assert is_transient(outage)


def test_one_bad_item_is_set_aside_alone_and_whole(tmp_path, tracking_uri, client):
    path = tmp_path / "j.db"
    journal = Journal(path)
    key, ts = records.new_key(), records.now_ms()
    good = [("loss", 0.5 - i / 100, ts, i) for i in range(30)]
    ops = [records.start(key, experiment="Default", name="r", start_ms=ts, tags={"mlops.kind": "cell"}),
           records.log(key, params={"lr": "0.3", "../p": "1"},
                       metrics=[*good[:10], ("../x", 1.0, ts, 0), *good[10:]], tags={"team": "ml"}),
           records.end(key, status="FINISHED", end_ms=ts)]
    journal.append(tracking_uri, ops, owner="test:1:x")
    assert sync(journal_path=path, timeout=120) == {tracking_uri: 0}
    found = client.search_runs(["0"], f"tags.`mlops.run_key` = '{key}'")[0]
    assert found.data.params == {"lr": "0.3"} and found.data.tags["team"] == "ml"
    assert len(client.get_metric_history(found.info.run_id, "loss")) == 30
    assert found.info.status == "FINISHED"
    db = sqlite3.connect(path)
    aside = [(json.loads(op), error) for op, error in db.execute("SELECT op, error FROM rejected ORDER BY id")]
    db.close()
    assert len(aside) == 2
    kept = {json.dumps(op, sort_keys=True) for op, _ in aside}
    assert json.dumps(records.log(key, params={"../p": "1"}), sort_keys=True) in kept
    assert json.dumps(records.log(key, metrics=[("../x", 1.0, ts, 0)]), sort_keys=True) in kept
    assert all("INVALID_PARAMETER_VALUE" in error or "Invalid" in error for _, error in aside)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_bad_metric_key_in_a_cell_is_named_and_the_rest_arrives(ip, client):
    res, text = cell_output(ip, "%%track\nimport mlops_magics as mm\nlr = 0.3\n"
                                "for i in range(3):\n    mm.log_metric('../x', 1)\n    mm.log_metric('loss', i)\n"
                                "acc = lr + 0.2")
    assert res.success
    warnings = [line for line in text.splitlines() if "../x" in line]
    assert len(warnings) == 1 and "not recorded" in warnings[0] and "climb" in warnings[0]
    run(ip, "%track flush --timeout 120")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    found = cell_runs(client)[-1]
    assert found.data.params == {"lr": "0.3"}
    assert found.data.metrics["acc"] == pytest.approx(0.5) and found.data.metrics["loss"] == 2
    assert len(client.get_metric_history(found.info.run_id, "loss")) == 3


def test_set_aside_records_are_listed_retried_and_flush_never_says_all_in(ip, tmp_path, client):
    path = tmp_path / ".mlops_magics" / "journal.db"
    uri = os.environ["MLFLOW_TRACKING_URI"]
    exp = client.create_experiment("gone")
    client.delete_experiment(exp)
    key, ts = records.new_key(), records.now_ms()
    Journal(path).append(uri, [records.start(key, experiment="gone", name="r", start_ms=ts, tags={}),
                               records.log(key, params={"lr": "0.1"}), records.end(key, status="FINISHED", end_ms=ts)],
                         owner="test:1:x")
    first = invoke("sync", "--timeout", "120")
    assert first.exit_code == 0, first.output
    assert "3 records set aside" in first.stderr
    ip.run_line_magic("config", "TrackMagics.tracking_uri = %r" % uri)
    _, text = cell_output(ip, "%track flush --timeout 5")
    assert "all records are in MLflow" not in text and "3 set aside: see mlops-magics journal" in text
    listing = invoke("journal")
    assert listing.exit_code == 0
    assert "set aside" in listing.stdout and "deleted" in listing.stdout and "start of run 'r'" in listing.stdout
    client.restore_experiment(exp)
    again = invoke("sync", "--retry-rejected", "--timeout", "120")
    assert again.exit_code == 0, again.output
    found = client.search_runs([exp], f"tags.`mlops.run_key` = '{key}'")
    assert len(found) == 1 and found[0].data.params == {"lr": "0.1"} and found[0].info.status == "FINISHED"
    assert Journal(path).rejected_count() == 0
    _, text = cell_output(ip, "%track flush --timeout 5")
    assert "all records are in MLflow" in text


def test_journal_drop_discards_what_was_meant_for_a_mistyped_uri(tmp_path):
    path = tmp_path / ".mlops_magics" / "journal.db"
    typo = f"http://127.0.0.1:{free_port()}/mlfow"
    key = records.new_key()
    Journal(path).append(typo, [records.log(key, params={"a": "1"}), records.end(key, status="FINISHED", end_ms=1)],
                         owner="test:1:x")
    listing = invoke("journal")
    assert listing.exit_code == 0 and typo in listing.stdout and "pending" in listing.stdout
    wrong = invoke("journal", "drop", "--uri", typo[:-1])
    assert wrong.exit_code == 1 and "Did you mean" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    dropped = invoke("journal", "drop", "--uri", typo)
    assert dropped.exit_code == 0 and "dropped 2 records" in dropped.stdout
    assert "is empty" in invoke("journal").stdout
    assert "--uri" in invoke("journal", "drop", "--help").stdout


# -- point 4: storage faults ---------------------------------------------------------------------
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextlib.contextmanager
def tmpfs(folder, size="1m"):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)  # a delivery process may still have a file open there
        else:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


def _check_one_warning(ip, text: str, words: str, path) -> None:
    lines = [line for line in text.splitlines() if words in line]
    assert len(lines) == 1, text
    assert str(path) in lines[0]
    assert "could not record" not in outputs_text(ip)


@as_root
def test_a_full_disk_never_breaks_a_cell_and_its_records_wait_in_memory(ip, tmp_path, monkeypatch, client):
    home = tmp_path / "home"
    monkeypatch.setenv("MLOPS_MAGICS_HOME", str(home))
    with tmpfs(home, size="16m"):
        assert run(ip, "%%track\nwarm = 1.5 * 2").success  # the journal and its delivery exist
        run(ip, "%track flush --timeout 120")
        _fill(home)
        res, text = cell_output(ip, LOOP_CELL)
        assert res.success and ip.user_ns["s"] == 19_999 and ip.user_ns["acc"] == pytest.approx(0.75)
        _check_one_warning(ip, text, "disk is full", home / "journal.db")
        os.remove(home / "filler")
        _, text = cell_output(ip, "%track flush --timeout 120")
        assert "all records are in MLflow" in text
        found = cell_runs(client)[-1]
        assert found.data.params == {"lr": "0.3"} and found.data.metrics["acc"] == pytest.approx(0.75)
        assert len(client.get_metric_history(found.info.run_id, "loss")) == 20_000
        ip.run_line_magic("unload_ext", "mlops_magics")  # closes the journal before the unmount
        ip.run_line_magic("load_ext", "mlops_magics")


@as_root
def test_a_read_only_home_never_breaks_a_cell(ip, tmp_path, monkeypatch, client):
    home = tmp_path / "home"
    monkeypatch.setenv("MLOPS_MAGICS_HOME", str(home))
    with tmpfs(home, size="16m"):
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        res, text = cell_output(ip, "%%track\nlr = 0.3\nacc = lr + 0.2")
        assert res.success
        _check_one_warning(ip, text, "read-only", home / "journal.db")
        subprocess.run(["mount", "-o", "remount,rw", str(home)], check=True)
        _, text = cell_output(ip, "%track flush --timeout 120")
        assert "all records are in MLflow" in text
        assert cell_runs(client)[-1].data.params == {"lr": "0.3"}
        ip.run_line_magic("unload_ext", "mlops_magics")
        ip.run_line_magic("load_ext", "mlops_magics")


def test_a_journal_overwritten_with_garbage_is_set_aside_and_the_cell_records(ip, tmp_path, client):
    home = tmp_path / ".mlops_magics"
    Journal(home / "journal.db").close()
    (home / "journal.db").write_bytes(os.urandom(20_000))
    res, text = cell_output(ip, "%%track\nlr = 0.3\nacc = lr + 0.2")
    assert res.success
    aside = [p.name for p in home.iterdir() if p.name.startswith("journal.db.corrupt-")]
    assert len(aside) == 1
    lines = [line for line in text.splitlines() if "corrupt" in line]
    assert len(lines) == 1 and aside[0] in lines[0] and str(home / "journal.db") in lines[0]
    run(ip, "%track flush --timeout 120")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    assert cell_runs(client)[-1].data.params == {"lr": "0.3"}


def test_what_is_readable_in_a_corrupt_journal_is_salvaged(tmp_path, tracking_uri, client):
    path = tmp_path / "j.db"
    journal = Journal(path)
    keys = [records.new_key() for _ in range(3)]
    for key in keys:
        journal.append(tracking_uri, [records.start(key, experiment="Default", name=key[:6], start_ms=1, tags={}),
                                      records.log(key, params={"k": key[:6]})], owner="test:1:x")
    journal.close()
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'latest_metrics'").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:  # one page of garbage: the batches stay readable
        f.seek((root - 1) * page_size)
        f.write(os.urandom(page_size))
    journal = Journal(path)
    later = records.new_key()
    journal.append(tracking_uri, [records.start(later, experiment="Default", name="later", start_ms=1, tags={}),
                                  records.log(later, metrics=[("m", 1.0, 1, 0)])], owner="test:1:x")
    notice = journal.take_notice()
    assert "corrupt" in notice and "saved the 6 readable records" in notice
    assert journal.pending() == 8
    journal.close()
    assert sync(journal_path=path, timeout=120) == {tracking_uri: 0}
    names = {r.info.run_name for r in client.search_runs(["0"])}
    assert names == {k[:6] for k in keys} | {"later"}


def test_sync_on_a_corrupt_journal_prints_one_line(tmp_path):
    home = tmp_path / ".mlops_magics"
    Journal(home / "journal.db").close()
    (home / "journal.db").write_bytes(b"garbage " * 4000)
    result = invoke("sync", "--timeout", "5")
    assert result.exit_code == 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "corrupt" in lines[0] and "Traceback" not in result.output
    assert "journal.db.corrupt-" in lines[0]


def test_a_locked_journal_never_breaks_a_cell(ip, tmp_path, client):
    path = tmp_path / ".mlops_magics" / "journal.db"
    Journal(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys, time
            db = sqlite3.connect({str(path)!r}, isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            sys.stdin.readline()
            db.execute("COMMIT")
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        res, text = cell_output(ip, "%%track\nlr = 0.3\nacc = lr + 0.2")
        assert res.success
        _check_one_warning(ip, text, "locked by another process", path)
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    run(ip, "%track flush --timeout 120")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    assert cell_runs(client)[-1].data.params == {"lr": "0.3"}
