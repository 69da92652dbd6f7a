"""One delivery process per journal, on real processes: many kernels on a fresh SQLite store, a
delivery process killed with records pending, a server that comes back, a zombie kernel, a
URI with credentials handed to a delivery process that another kernel started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import cell_runs, last_bundle, run
from servers import MlflowServer, free_port

from mlops_magics.journal import deliverer
from mlops_magics.processes import alive

KERNEL = textwrap.dedent("""
    import os, sys, time
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlops_magics")
    worker, cells = int(sys.argv[1]), int(sys.argv[2])
    for i in range(cells):
        r = ip.run_cell(f"%%track --name w{worker}-{i}\\nworker = {worker}\\nscore = {worker} * 100 + {i} + 0.0",
                        store_history=True)
        assert r.success
    import mlops_magics as mm
    print("left", mm.flush(float(os.environ.get("FLUSH_S", "600"))), flush=True)
    print("mlflow imported:", "mlflow" in sys.modules, flush=True)
    barrier = os.environ.get("BARRIER")
    if barrier:  # stay open until every kernel is done: the delivery process must serve them all
        open(os.path.join(barrier, f"done-{worker}"), "w").close()
        deadline = time.monotonic() + 600
        while len(os.listdir(barrier)) < int(os.environ["KERNELS"]) and time.monotonic() < deadline:
            time.sleep(0.1)
    if os.environ.get("DIE"):
        os._exit(0)  # no atexit: the session run stays open, as when a kernel is killed
    ip.run_line_magic("unload_ext", "mlops_magics")
""")


def _kernels(tmp_path: Path, n: int, cells: int, env: dict | None = None, first: int = 0) -> list[subprocess.Popen]:
    env = {**os.environ, **(env or {})}
    return [subprocess.Popen([sys.executable, "-c", KERNEL, str(w), str(cells)], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for w in range(first, first + n)]


def _delivery_pids(home: Path) -> set[int]:
    """Every process that ever delivered this journal, from its log."""
    text = (home / "deliver.log").read_text() if (home / "deliver.log").exists() else ""
    return {int(p) for p in re.findall(r"delivery process (\d+) delivers journal", text)}


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _delivery_processes(journal: Path) -> list[int]:
    """Live delivery processes started for ``journal`` (a spare one started in a race waits a
    moment for the lock before it hands over and exits)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mlops_magics.journal.deliverd" in cmd and str(journal).encode() in cmd and alive(int(pid)):
            found.append(int(pid))
    return found


def _deliverer(journal: Path, timeout: float = 120) -> deliverer.Deliverer:
    """The journal's delivery process, once it has said who it is."""
    try:
        return _wait(lambda: (d := deliverer.who(journal)) is not None and d.pid and d, timeout, "a delivery process")
    except AssertionError:
        raise AssertionError(f"timed out waiting for a delivery process; {_lock_holders(journal)}") from None


def _lock_holders(journal: Path) -> str:
    """Who holds the delivery lock (from /proc/locks), what the pid file says, the delivery log's tail."""
    inode = os.stat(deliverer.lock_path(journal)).st_ino
    holders = [line.split()[4] for line in Path("/proc/locks").read_text().splitlines()
               if line.split()[5].endswith(f":{inode}")]
    described = []
    for pid in holders:
        try:
            described.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ')[:150]!r}")
        except OSError:
            described.append(f"{pid}: gone")
    info = deliverer.info_path(journal)
    log = journal.parent / "deliver.log"
    return (f"lock held by {described or 'nobody'}; pid file {info.read_text() if info.exists() else 'missing'}; "
            f"log tail {log.read_text()[-600:] if log.exists() else ''!r}")


def test_eight_kernels_on_a_fresh_sqlite_store_deliver_everything_through_one_process(tmp_path):
    store = tmp_path / "fresh" / "mlflow.db"  # does not exist: the first delivery creates and migrates it
    home, barrier = tmp_path / ".mlops_magics", tmp_path / "barrier"
    barrier.mkdir()
    procs = _kernels(tmp_path, 8, 20, {"MLFLOW_TRACKING_URI": f"sqlite:///{store}", "BARRIER": str(barrier),
                                       "KERNELS": "8"})
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
        assert "left 0" in out and "mlflow imported: False" in out, out
    from mlflow import MlflowClient

    runs = cell_runs(MlflowClient(f"sqlite:///{store}"))
    assert len(runs) == 160
    assert sorted(r.data.metrics["score"] for r in runs) == sorted(w * 100 + i for w in range(8) for i in range(20))
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len(_delivery_pids(home)) == 1, (home / "deliver.log").read_text()[-3000:]
    assert "already exists" not in (home / "deliver.log").read_text()


def test_a_killed_delivery_process_is_reported_and_replaced(ip, tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")  # the server comes later
    assert run(ip, "%%track --name before\nlr = 0.1\nacc = 0.5 + 0").success
    journal = tmp_path / ".mlops_magics" / "journal.db"
    from mlops_magics import _current

    _current.session()._drain(120)  # the cell's background records are in: nothing else starts delivery
    first = _deliverer(journal)
    assert oct(os.stat(deliverer.info_path(journal)).st_mode & 0o777) == "0o600"
    _wait(lambda: _delivery_processes(journal) == [first.pid], 60, "a spare delivery process to hand over")
    os.kill(first.pid, signal.SIGKILL)
    _wait(lambda: not alive(first.pid), 30, "the delivery process to die")  # a zombie counts as dead

    run(ip, "%track status")
    status = last_bundle(ip)["text/plain"]
    assert f"pid {first.pid}" not in status  # the dead one is never reported as delivering
    # replaced here, or (when a retry of the kernel's own got there first) already starting
    assert ("nobody delivers" in status and "started a delivery process" in status
            or "a delivery process is starting" in status), status
    second = _deliverer(journal)
    assert second.pid != first.pid
    run(ip, "%track status")
    assert f"pid {second.pid} since" in last_bundle(ip)["text/plain"]

    os.kill(second.pid, signal.SIGKILL)  # killed again: this time the flush replaces it
    _wait(lambda: not alive(second.pid), 30, "the delivery process to die")
    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path, port=port).start(timeout=300)
    try:
        run(ip, "%track flush --timeout 300")
        assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
        from mlflow import MlflowClient

        (cell,) = cell_runs(MlflowClient(server.uri))
        assert cell.info.run_name == "before" and cell.data.metrics["acc"] == 0.5
        assert deliverer.who(journal).pid not in (first.pid, second.pid)
    finally:
        server.stop()


def test_sync_wakes_the_delivery_process_out_of_its_back_off(ip, tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    assert run(ip, "%%track --name waited\nacc = 0.25 + 0").success
    log = tmp_path / ".mlops_magics" / "deliver.log"
    # Failing attempts double the wait up to 30 s; by 8 s the process sleeps longer than sync waits to retry.
    _wait(lambda: log.exists() and re.search(r"retrying in (8|16|30)\.0s", log.read_text()), 240, "a long back-off")
    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path, port=port).start(timeout=300)
    try:
        out = subprocess.run([sys.executable, "-m", "mlops_magics.cli", "sync", "--timeout", "300"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "all records delivered" in out.stdout
        from mlflow import MlflowClient

        (cell,) = cell_runs(MlflowClient(server.uri))
        assert cell.info.run_name == "waited" and cell.data.metrics["acc"] == 0.25
    finally:
        server.stop()


def _zombie(proc: subprocess.Popen) -> bool:
    stat = Path(f"/proc/{proc.pid}/stat").read_bytes()
    return stat[stat.rfind(b")") + 2:][:1] == b"Z"


def test_a_zombie_counts_as_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        _wait(lambda: _zombie(proc), 60, "the child to exit")  # exited, not reaped: a zombie
        assert not alive(proc.pid)
    finally:
        proc.wait()
    assert alive(os.getpid())


def test_runs_of_a_dead_unreaped_kernel_end_kernel_died(tmp_path, tracking_uri, client):
    (proc,) = _kernels(tmp_path, 1, 1, {"DIE": "1"})
    try:
        _wait(lambda: _zombie(proc), 300, "the kernel to exit")  # dead, and its parent has not reaped it
        out = subprocess.run([sys.executable, "-m", "mlops_magics.cli", "sync", "--timeout", "300"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, out.stdout + out.stderr
        (cell,) = cell_runs(client)
        assert cell.info.status == "FINISHED"
        session = client.get_run(cell.data.tags["mlflow.parentRunId"])
        assert session.info.status == "KILLED" and session.data.tags["mlops.failure"] == "kernel_died"
    finally:
        proc.stdout.close()
        proc.wait()


def test_a_uri_with_credentials_is_handed_to_a_running_delivery_process(tmp_path):
    admin, password = "admin", "Handover-S3cret-pass!"
    auth = tmp_path / "auth.ini"
    auth.write_text("[mlflow]\ndefault_permission = READ\n"
                    f"database_uri = sqlite:///{tmp_path}/basic_auth.db\n"
                    f"admin_username = {admin}\nadmin_password = {password}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    server = MlflowServer(f"sqlite:///{tmp_path}/server.db", tmp_path, app="basic-auth",
                          env={"MLFLOW_AUTH_CONFIG_PATH": str(auth),
                               "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key"}).start(timeout=300)
    home, barrier = tmp_path / ".mlops_magics", tmp_path / "barrier"
    barrier.mkdir()
    try:
        # A kernel without credentials starts the delivery process and keeps it...
        (plain,) = _kernels(tmp_path, 1, 1, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/local.db",
                                              "BARRIER": str(barrier), "KERNELS": "2"})
        _deliverer(home / "journal.db", 300)
        # ... then a kernel whose URI carries them records to the server: it must hand them over.
        uri = f"http://{admin}:{password}@127.0.0.1:{server.port}"
        (secret,) = _kernels(tmp_path, 1, 1, {"MLFLOW_TRACKING_URI": uri, "BARRIER": str(barrier), "KERNELS": "2"},
                             first=1)
        outs = [p.communicate(timeout=600)[0] for p in (plain, secret)]
        assert all("left 0" in o for o in outs), outs
        assert len(_delivery_pids(home)) == 1
        from mlflow import MlflowClient

        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = admin, password
        try:
            (cell,) = cell_runs(MlflowClient(server.uri))
        finally:
            del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
        assert cell.data.metrics["score"] == 100.0
        for f in home.iterdir():  # the journal, its log, the lock and pid files
            assert password.encode() not in f.read_bytes(), f
        assert json.loads(deliverer.info_path(home / "journal.db").read_text())["pid"] in _delivery_pids(home)
    finally:
        server.stop()


def test_a_half_migrated_store_gets_a_one_line_diagnosis(ip, tmp_path):
    import sqlite3

    store = tmp_path / "mlflow.db"
    db = sqlite3.connect(store)  # what an interrupted schema upgrade leaves behind
    db.execute("CREATE TABLE _alembic_tmp_latest_metrics (x INTEGER)")
    db.commit()
    db.close()
    assert run(ip, "%%track\nacc = 0.5 + 0").success
    run(ip, "%track flush")  # MLflow failing every attempt for 5 s ends the wait
    flushed = last_bundle(ip)["text/plain"]
    assert f"MLflow store {store} is half-migrated" in flushed, flushed
    assert "DROP TABLE _alembic_tmp_latest_metrics in it" in flushed and "mlflow db upgrade" in flushed
    run(ip, "%track status")
    (line,) = [x for x in last_bundle(ip)["text/plain"].splitlines() if x.startswith("store")]
    assert "half-migrated" in line and str(store) in line


def test_an_unreachable_server_shows_on_the_first_tracked_cell(tmp_path):
    script = textwrap.dedent("""
        import time
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "mlops_magics")
        time.sleep(0.5)  # a person types the first cell
        print("--- first cell")
        assert ip.run_cell("%%track\\nacc = 0.5 + 0", store_history=True).success
        print("--- done")
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    first = out.stdout.split("--- first cell", 1)[1].split("--- done", 1)[0]
    assert "not reachable (connection refused)" in first, first
