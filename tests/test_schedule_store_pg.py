"""The schedule store in a real PostgreSQL ($MLOPS_MAGICS_SCHEDULES_URI), shared by "hosts" (here:
processes with their own working and journal folders): the CLI against it, racing claimers,
racing `run-due` processes and `scheduler` daemons running each slot once, and a URI's password
that never shows. The server is the throwaway cluster test_team_mode.py starts; the store is
reached as a role that logs in with a password (scram-sha-256) and owns its database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import invoke, one_line_error, skip_or_fail
from servers import Postgres, free_port, postgres_missing

from mlops_magics import locations
from mlops_magics.schedules import cron
from mlops_magics.schedules.cron import ScheduleError
from mlops_magics.schedules.store import ScheduleStore

NOTEBOOKS = Path(__file__).parent / "notebooks"
DAY = datetime(2030, 1, 1, tzinfo=timezone.utc)
USER, PASSWORD = "scheduler", "Sched-S3cret-pw-71"
CLI = [sys.executable, "-m", "mlops_magics.cli"]


@pytest.fixture(scope="module")
def pg():
    """One cluster for the module; the role USER logs in with PASSWORD (trust for postgres only)."""
    missing = postgres_missing()
    if missing:
        skip_or_fail(missing)
    import psycopg

    server = Postgres().start()
    try:
        with psycopg.connect(server.uri, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
            hba = Path(admin.execute("SHOW hba_file").fetchone()[0])
            hba.write_text(f"host all {USER} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
            admin.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while _logs_in(server.port, "not-the-password"):  # until the reload took: a wrong password is refused
            assert time.monotonic() < deadline, "pg_hba.conf reload not taken"
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def _logs_in(port: int, password: str) -> bool:
    import psycopg

    try:
        psycopg.connect(f"postgresql://{USER}:{password}@127.0.0.1:{port}/mlflow", connect_timeout=5).close()
        return True
    except psycopg.OperationalError:
        return False


def _uri(pg, password: str = PASSWORD, db: str = "mlflow") -> str:
    return f"postgresql://{USER}:{password}@127.0.0.1:{pg.port}/{db}"


@pytest.fixture
def store_uri(pg, monkeypatch):
    """A fresh database owned by USER (no superuser right needed), selected through the env var."""
    import psycopg

    db = f"sched_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.uri, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db} OWNER {USER}")
    uri = _uri(pg, db=db)
    monkeypatch.setenv(locations.SCHEDULES_URI_ENV, uri)
    return uri


def ok(*argv: str):
    result = invoke(*argv)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result


def add(name: str, *extra: str, notebook: str = "sched_tiny"):
    return ok("schedule", "add", name, str(NOTEBOOKS / f"{notebook}.ipynb"), "--timezone", "UTC", *extra)


def rows_in_postgres(uri: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(uri) as conn:
        return conn.execute(sql).fetchall()


def scheduled_runs(client, schedule: str) -> list:
    exp = client.get_experiment_by_name("Default")
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], f"tags.`mlops.schedule` = '{schedule}'", max_results=1000))


def host_env(tmp_path: Path, host: str, uri: str) -> tuple[Path, dict]:
    """A working folder and environment standing for one host: its own journal folder, the
    shared MLflow store and the shared schedule store."""
    folder = tmp_path / host
    folder.mkdir(exist_ok=True)
    env = {**os.environ, locations.HOME_ENV: str(folder / ".mlops_magics"), locations.SCHEDULES_URI_ENV: uri}
    return folder, env


def no_password_under(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), f"the store's password is in {path}"


def test_the_cli_keeps_schedules_in_postgres_for_every_host(store_uri, tmp_path, monkeypatch):
    add("nightly", "--cron", "0 2 * * *", "-p", "n", "3", "--start", DAY.isoformat())
    add("monitor", "--cron", "0 * * * *", "--on-alert", "nightly", "--start", DAY.isoformat())
    assert "exists already" in one_line_error(invoke("schedule", "add", "nightly", str(NOTEBOOKS / "sched_tiny.ipynb"),
                                                     "--cron", "* * * * *"))

    listed = ok("schedule", "list").stdout
    assert f"schedules in postgresql://{USER}:***@127.0.0.1:" in listed and PASSWORD not in listed
    [row] = [line for line in listed.splitlines() if line.startswith("nightly")]
    assert "0 2 * * *" in row and "active" in row and "never ran" in row
    assert not (locations.home() / "schedules.db").exists()  # nothing in the local file
    assert rows_in_postgres(store_uri, "SELECT name, cron, parameters, on_alert FROM mlops_magics.schedules"
                                       " ORDER BY name") == [("monitor", "0 * * * *", "[]", "nightly"),
                                                             ("nightly", "0 2 * * *", '[["n", "3"]]', None)]

    for target in ("crontab", "systemd"):  # cron must be told where the schedules are, never the password
        exported = ok("schedule", "export", "nightly", "--to", target).stdout
        assert f"${locations.SCHEDULES_URI_ENV}" in exported and PASSWORD not in exported

    assert "paused" in ok("schedule", "pause", "nightly").stdout
    monkeypatch.setenv(locations.HOME_ENV, str(tmp_path / "other-host" / ".mlops_magics"))  # another host sees it
    [row] = [line for line in ok("schedule", "list").stdout.splitlines() if line.startswith("nightly")]
    assert "paused" in row
    assert "resumed" in ok("schedule", "resume", "nightly").stdout
    assert ScheduleStore().get("nightly").paused is False

    removed = ok("schedule", "remove", "nightly")
    assert "schedule nightly removed" in removed.stdout and "monitor runs nightly on alert" in removed.stderr
    assert "no schedule named 'nightly'" in one_line_error(invoke("schedule", "pause", "nightly"))
    assert [s.name for s in ScheduleStore().all()] == ["monitor"]
    no_password_under(tmp_path)


def test_the_jupyter_extension_state_uses_the_shared_store(store_uri, tmp_path):
    import shutil

    from mlops_magics.jupyter.app import ExtensionState
    from mlops_magics.jupyter.places import Places

    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "sched_tiny.ipynb", root / "tiny.ipynb")
    state = ExtensionState(Places.from_server(str(root)))
    try:
        view = state.add_schedule({"name": "from-lab", "notebook": "tiny.ipynb", "cron": "0 6 * * *",
                                   "timezone": "UTC", "parameters": {"n": 4}})
        assert view["name"] == "from-lab"
        assert [v["name"] for v in state.schedules("tiny.ipynb")] == ["from-lab"]
        state.set_paused("from-lab", True)
    finally:
        state.stop()
    [row] = [line for line in ok("schedule", "list").stdout.splitlines() if line.startswith("from-lab")]
    assert "paused" in row
    assert rows_in_postgres(store_uri, "SELECT name, paused, parameters FROM mlops_magics.schedules") == [
        ("from-lab", 1, '[["n", "4"]]')]


def test_a_cut_connection_is_one_failed_call_then_the_store_reconnects(pg, store_uri):
    import psycopg

    add("nightly", "--cron", "0 2 * * *")
    store = ScheduleStore()
    assert [s.name for s in store.all()] == ["nightly"]
    with psycopg.connect(pg.uri, autocommit=True) as admin:  # what a server restart or a failover does
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (USER,))
    with pytest.raises(ScheduleError) as caught:
        store.all()
    assert "\n" not in str(caught.value) and PASSWORD not in str(caught.value)
    assert [s.name for s in store.all()] == ["nightly"]  # a new connection


CLAIMER = """
import os, sys, time
from datetime import datetime, timedelta, timezone
from mlops_magics.journal.store import new_owner
from mlops_magics.schedules.store import ScheduleStore

go, minutes = sys.argv[1], int(sys.argv[2])
store, owner = ScheduleStore(), new_owner()
while not os.path.exists(go):
    time.sleep(0.002)
start, ran = datetime(2030, 1, 1, tzinfo=timezone.utc), 0
for m in range(minutes):
    for name in ("a", "b"):
        decision, slot = store.claim(name, start + timedelta(minutes=m), owner)
        if decision.state == "running":
            ran += 1
            store.finish(slot.id, "finished", run_id=owner + "/" + name + str(m))
print(ran)
"""


@pytest.mark.race
def test_claimers_racing_on_one_postgres_store_take_each_slot_once(store_uri, tmp_path):
    """Four processes (two per "host") claim the same 60 minutes of two schedules at once:
    every slot is recorded once, each run claimed by one of them, and none hits the unique
    constraint (the lock made them wait for each other instead)."""
    for name in ("a", "b"):
        add(name, "--cron", "* * * * *", "--start", DAY.isoformat())
    minutes, go = 60, tmp_path / "go"
    procs = []
    for i in range(4):
        folder, env = host_env(tmp_path, f"host{i % 2}", store_uri)
        procs.append(subprocess.Popen([sys.executable, "-c", CLAIMER, str(go), str(minutes)], cwd=folder, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(1.0)  # let them connect, then release them together
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outs]
    ran = sum(int(out.strip()) for out, _ in outs)

    rows = rows_in_postgres(store_uri, "SELECT schedule, slot, state, run_id FROM mlops_magics.slots")
    expected = {cron.key(DAY + timedelta(minutes=m)) for m in range(minutes)}
    for name in ("a", "b"):
        slots = [slot for schedule, slot, _, _ in rows if schedule == name]
        assert sorted(slots) == sorted(expected)  # each minute once, none missing
    finished = [r for r in rows if r[2] == "finished"]
    assert len(finished) == ran and len({r[3] for r in finished}) == ran
    assert {r[2] for r in rows} <= {"finished", "skipped"}


@pytest.mark.kernel
@pytest.mark.race
def test_run_due_on_two_hosts_racing_on_one_store_runs_each_slot_once(store_uri, client, tmp_path):
    for name in ("alpha", "beta"):
        add(name, "--cron", "0 6 * * *", "--start", DAY.isoformat())
    moments = [DAY + timedelta(hours=6), DAY + timedelta(days=1, hours=6)]
    outputs = []
    for moment in moments:
        procs = []
        for host in ("host-a", "host-b"):
            folder, env = host_env(tmp_path, host, store_uri)
            procs.append(subprocess.Popen([*CLI, "schedule", "run-due", "--at", moment.isoformat()], cwd=folder,
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        outputs += [out + err for out, err in outs]

    keys = sorted(m.isoformat() for m in moments)
    for name in ("alpha", "beta"):
        runs = scheduled_runs(client, name)
        assert sorted(r.data.tags["mlops.schedule.slot"] for r in runs) == keys
        assert all(r.info.status == "FINISHED" for r in runs)
    assert sum(out.count(": finished, run ") for out in outputs) == 4
    history = ScheduleStore().history()
    assert sorted((s.schedule, s.state) for s in history) == [("alpha", "finished")] * 2 + [("beta", "finished")] * 2
    assert all(PASSWORD not in out for out in outputs)
    no_password_under(tmp_path)


@pytest.mark.kernel
@pytest.mark.race
def test_two_scheduler_daemons_on_two_hosts_run_each_slot_once(store_uri, client, tmp_path):
    start = cron.now() - timedelta(minutes=3)  # missed slots: a catch-up run is due at once, for both daemons
    add("tick", "--cron", "* * * * *", "--start", start.isoformat())
    daemons = []
    try:
        for host in ("host-a", "host-b"):
            folder, env = host_env(tmp_path, host, store_uri)
            log = open(folder / "scheduler.log", "w")
            daemons.append((folder, subprocess.Popen([*CLI, "scheduler", "--interval", "1", "--grace", "60"],
                                                     cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)))
        store = ScheduleStore()
        deadline = time.monotonic() + 180
        while not any(s.state == "finished" for s in store.history("tick")):
            assert time.monotonic() < deadline and all(d.poll() is None for _, d in daemons), \
                [(f / "scheduler.log").read_text() for f, _ in daemons]
            time.sleep(0.3)
        for _, d in daemons:
            d.send_signal(signal.SIGTERM)
        assert [d.wait(timeout=120) for _, d in daemons] == [0, 0]
    finally:
        for _, d in daemons:
            if d.poll() is None:
                d.kill()
    logs = [(f / "scheduler.log").read_text() for f, _ in daemons]
    for text in logs:
        assert "scheduler started" in text and "scheduler stopped" in text and "Traceback" not in text, text
        assert f"postgresql://{USER}:***@127.0.0.1" in text and PASSWORD not in text
    assert sum(text.count("run-due started") for text in logs) >= 1

    slots = store.history("tick")
    ran = [s for s in slots if s.state == "finished"]
    runs = scheduled_runs(client, "tick")
    assert len(runs) == len(ran) >= 1
    assert sorted(r.data.tags["mlops.schedule.slot"] for r in runs) == \
        sorted(cron.local_iso(s.time, "UTC") for s in ran)  # one run per slot that ran, none twice
    assert {s.run_id for s in ran} == {r.info.run_id for r in runs}
    no_password_under(tmp_path)


def test_a_wrong_password_is_one_line_without_it(pg, store_uri, tmp_path):
    wrong = "Wrong-S3cret-pw-42"
    bad = _uri(pg, password=wrong, db=store_uri.rsplit("/", 1)[1])
    env = {**os.environ, locations.SCHEDULES_URI_ENV: bad}
    for argv in (["schedule", "list"], ["schedule", "run-due"], ["scheduler", "--interval", "1"]):
        out = subprocess.run([*CLI, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and out.stdout == "", out
        [line] = out.stderr.strip().splitlines()
        assert line.startswith(f"Error: schedule store postgresql://{USER}:***@127.0.0.1:{pg.port}/"), line
        assert f'password authentication failed for user "{USER}"' in line, line
        assert f"${locations.SCHEDULES_URI_ENV}" in line
        assert wrong not in out.stderr and PASSWORD not in out.stderr

    with pytest.raises(ScheduleError) as caught:  # nobody listening: one line too
        ScheduleStore(f"postgresql://{USER}:{wrong}@127.0.0.1:{free_port()}/nowhere")
    assert "\n" not in str(caught.value) and wrong not in str(caught.value) and "***@127.0.0.1" in str(caught.value)

    other = {**os.environ, locations.SCHEDULES_URI_ENV: f"mysql://{USER}:{wrong}@127.0.0.1/db"}
    out = subprocess.run([*CLI, "schedule", "list"], env=other, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    [line] = out.stderr.strip().splitlines()
    assert out.returncode == 1 and "give a postgresql://" in line and wrong not in line, out
