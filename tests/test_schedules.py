"""Schedules: cron slots run exactly once as notebook jobs, catch-up, overlap, alert-triggered
retraining, the scheduler daemon and the OS exports. Time is simulated with ``run-due --at``;
jobs run in real kernels against the test's SQLite MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_magics.cli import cli
from mlops_magics.schedules import cron
from mlops_magics.schedules.store import ScheduleStore

NOTEBOOKS = Path(__file__).parent / "notebooks"
DAY = datetime(2030, 1, 1, tzinfo=timezone.utc)


def invoke(*argv: str):
    return CliRunner().invoke(cli, list(argv), prog_name="mlops-magics")


def ok(*argv: str):
    result = invoke(*argv)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result


def add(name: str, notebook: str, *extra: str):
    return ok("schedule", "add", name, str(NOTEBOOKS / f"{notebook}.ipynb"), "--timezone", "UTC", *extra)


def at(moment: datetime) -> str:
    return moment.isoformat()


def scheduled_runs(client, schedule: str) -> list:
    exp = client.get_experiment_by_name("Default")
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], f"tags.`mlops.schedule` = '{schedule}'",
                                   order_by=["attributes.start_time ASC"], max_results=1000))


def slots_of(runs) -> list[str]:
    return sorted(r.data.tags["mlops.schedule.slot"] for r in runs)


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.kernel
def test_a_simulated_day_runs_every_hourly_slot_once_and_skips_the_paused_schedule(client):
    add("hourly", "sched_tiny", "--cron", "0 * * * *", "-p", "n", "5", "--start", at(DAY))
    add("quiet", "sched_tiny", "--cron", "0 * * * *", "--start", at(DAY))
    assert "paused" in ok("schedule", "pause", "quiet").stdout

    lines = []
    for half_hours in range(48):  # a run-due every 30 minutes for a day; slots are on the hour
        lines += ok("schedule", "run-due", "--at", at(DAY + timedelta(minutes=30 * half_hours))).stdout.splitlines()
    assert "nothing due" in ok("schedule", "run-due", "--at", at(DAY)).stdout  # the same moment again: done

    runs = scheduled_runs(client, "hourly")
    expected = [(DAY + timedelta(hours=h)).isoformat() for h in range(24)]
    assert slots_of(runs) == expected
    assert all(r.info.status == "FINISHED" and r.data.tags["mlops.kind"] == "job" for r in runs)
    assert {r.data.params["n"] for r in runs} == {"5"}
    assert scheduled_runs(client, "quiet") == []
    assert sum("hourly @" in line and ": finished, run " in line for line in lines) == 24

    listed = ok("schedule", "list").stdout
    [row] = [line for line in listed.splitlines() if line.startswith("hourly")]
    assert "finished 2030-01-01 23:00 UTC" in row and "2030-01-02 00:00 UTC" in row and runs[-1].info.run_id in row
    [row] = [line for line in listed.splitlines() if line.startswith("quiet")]
    assert "paused" in row and "never ran" in row
    assert "resumed" in ok("schedule", "resume", "quiet").stdout
    assert "active" in [line for line in ok("schedule", "list").stdout.splitlines() if line.startswith("quiet")][0]


@pytest.mark.kernel
@pytest.mark.race
def test_two_racing_run_due_processes_run_each_slot_once(client, tmp_path):
    moment = DAY + timedelta(hours=6)
    for name in ("alpha", "beta"):
        add(name, "sched_tiny", "--cron", "0 6 * * *", "--start", at(DAY))
    argv = [sys.executable, "-m", "mlops_magics.cli", "schedule", "run-due", "--at", at(moment)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for name in ("alpha", "beta"):
        assert slots_of(scheduled_runs(client, name)) == [moment.isoformat()]
    assert sum(out.count(": finished, run ") for out in outputs) == 2
    history = ScheduleStore().history()
    assert sorted((s.schedule, s.state) for s in history) == [("alpha", "finished"), ("beta", "finished")]


@pytest.mark.kernel
def test_missed_slots_are_caught_up_by_one_run_or_skipped_with_catch_up_none(client):
    start = DAY + timedelta(minutes=30)
    add("one", "sched_tiny", "--cron", "0 * * * *", "--start", at(start))
    add("none", "sched_tiny", "--cron", "0 * * * *", "--start", at(start), "--catch-up", "none")

    out = ok("schedule", "run-due", "--at", at(DAY + timedelta(hours=5, minutes=30))).stdout
    assert "none @ 2030-01-01T05:00:00+00:00: missed; 5 slots missed (2030-01-01 01:00 to 2030-01-01 05:00)" in out
    assert "catch-up run for 5 slots missed" in out
    [caught] = scheduled_runs(client, "one")
    assert caught.data.tags["mlops.schedule.slot"] == "2030-01-01T05:00:00+00:00"
    assert caught.data.tags["mlops.schedule.caught_up"] == "5"
    assert scheduled_runs(client, "none") == []

    ok("schedule", "run-due", "--at", at(DAY + timedelta(hours=6)))  # both on time again
    assert slots_of(scheduled_runs(client, "one")) == ["2030-01-01T05:00:00+00:00", "2030-01-01T06:00:00+00:00"]
    assert slots_of(scheduled_runs(client, "none")) == ["2030-01-01T06:00:00+00:00"]


@pytest.mark.kernel
def test_a_slot_that_comes_while_the_last_run_is_still_going_is_skipped(client, tmp_path):
    add("slow", "sched_slow", "--cron", "* * * * *", "-p", "seconds", "3", "--start", at(DAY))
    first = subprocess.Popen([sys.executable, "-m", "mlops_magics.cli", "schedule", "run-due", "--at", at(DAY)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    store = ScheduleStore()
    deadline = time.monotonic() + 60
    while not any(s.state == "running" for s in store.history("slow")):
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.1)

    result = ok("schedule", "run-due", "--at", at(DAY + timedelta(minutes=1)))

    assert "slow @ 2030-01-01T00:01:00+00:00: skipped; the run for 2030-01-01T00:00:00+00:00 was still going" \
        in result.stdout
    assert first.wait(timeout=60) == 0
    assert slots_of(scheduled_runs(client, "slow")) == ["2030-01-01T00:00:00+00:00"]
    assert [(s.slot, s.state) for s in store.history("slow")] == [
        ("2030-01-01T00:01:00+00:00", "skipped"), ("2030-01-01T00:00:00+00:00", "finished")]


@pytest.mark.kernel
def test_an_alert_from_the_monitor_triggers_exactly_one_retrain(client):
    add("retrain", "sched_retrain", "--cron", "0 0 1 1 *", "--start", at(DAY + timedelta(minutes=1)))
    add("monitor", "sched_monitor", "--cron", "0 * * * *", "-p", "shift", "3.0", "--on-alert", "retrain",
        "--start", at(DAY))
    add("calm", "sched_monitor", "--cron", "0 * * * *", "--on-alert", "retrain", "--start", at(DAY))

    out = ok("schedule", "run-due", "--at", at(DAY + timedelta(hours=1))).stdout
    assert "nothing due" in ok("schedule", "run-due", "--at", at(DAY + timedelta(hours=1))).stdout

    [monitor] = scheduled_runs(client, "monitor")
    [calm] = scheduled_runs(client, "calm")
    assert monitor.data.tags.get("mlops.alert") == "metric", _diagnose(monitor)
    assert "mean_gap" in monitor.data.tags["mlops.alert.reason"]
    assert "mlops.alert" not in calm.data.tags
    [retrain] = scheduled_runs(client, "retrain")
    assert retrain.data.tags["mlops.triggered_by"] == monitor.info.run_id
    assert retrain.data.params["trigger_run_id"] == monitor.info.run_id
    assert retrain.data.tags["mlops.kind"] == "job" and retrain.info.status == "FINISHED"
    assert f"retrain @ 2030-01-01T01:00:00+00:00: finished (alert of run {monitor.info.run_id})" in out
    assert "alert=metric" in out


@pytest.mark.kernel
def test_the_scheduler_daemon_runs_what_is_due_and_stops_cleanly_on_sigterm(client, tmp_path):
    start = cron.now() - timedelta(minutes=3)  # missed slots: the catch-up run is due at once
    add("tick", "sched_tiny", "--cron", "* * * * *", "--start", at(start))
    log = open(tmp_path / "scheduler.log", "w+")
    daemon = subprocess.Popen([sys.executable, "-m", "mlops_magics.cli", "scheduler", "--interval", "1",
                               "--grace", "30"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        store = ScheduleStore()
        deadline = time.monotonic() + 90
        while not any(s.state == "finished" for s in store.history("tick")):
            assert time.monotonic() < deadline and daemon.poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    text = (tmp_path / "scheduler.log").read_text()
    assert "scheduler started" in text and "SIGTERM received, stopping" in text and "scheduler stopped" in text
    assert "tick slot" in text and "run-due started" in text
    runs = scheduled_runs(client, "tick")
    assert runs and all(r.info.status == "FINISHED" for r in runs)
    assert "Traceback" not in text


def test_export_to_crontab_and_systemd_calls_run_due(tmp_path):
    ok("schedule", "add", "nightly", str(NOTEBOOKS / "sched_tiny.ipynb"), "--cron", "30 2 * * mon-fri")
    local = cron.local_zone_name()

    line = [x for x in ok("schedule", "export", "nightly", "--to", "crontab").stdout.splitlines()
            if not x.startswith("#")]
    assert len(line) == 1 and line[0].startswith("30 2 * * mon-fri cd ")
    assert "schedule run-due nightly" in line[0] and f"MLOPS_MAGICS_HOME={tmp_path / '.mlops_magics'}" in line[0]

    units = ok("schedule", "export", "nightly", "--to", "systemd").stdout
    assert "[Timer]" in units and f"OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00 {local}" in units
    assert "[Service]" in units and "Type=oneshot" in units and "schedule run-due nightly" in units
    written = ok("schedule", "export", "nightly", "--to", "systemd", "-o", str(tmp_path / "units")).stdout
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["mlops-magics-nightly.service",
                                                                      "mlops-magics-nightly.timer"]
    assert "wrote" in written

    other = "Asia/Tokyo" if local != "Asia/Tokyo" else "Europe/Paris"
    ok("schedule", "add", "tokyo", str(NOTEBOOKS / "sched_tiny.ipynb"), "--cron", "0 9 * * *", "--timezone", other)
    text = ok("schedule", "export", "tokyo", "--to", "crontab").stdout
    assert "* * * * * cd " in text and "run-due runs the slot when it is due" in text  # cron has no time zones
    assert f"OnCalendar=*-*-* 09:00:00 {other}" in ok("schedule", "export", "tokyo", "--to", "systemd").stdout


def test_bad_schedules_are_refused_with_one_line(tmp_path):
    nb = str(NOTEBOOKS / "sched_tiny.ipynb")
    assert "'61' is not a valid minute" in one_line_error(invoke("schedule", "add", "x", nb, "--cron", "61 * * * *"))
    assert "cron wants 5" in one_line_error(invoke("schedule", "add", "x", nb, "--cron", "* * *"))
    err = one_line_error(invoke("schedule", "add", "x", nb, "--cron", "@daily", "--timezone", "Europe/Pari"))
    assert "unknown time zone 'Europe/Pari'. Did you mean 'Europe/Paris'?" in err
    err = one_line_error(invoke("schedule", "add", "x", nb, "--cron", "@daily", "-p", "nn", "3"))
    assert "unknown parameter 'nn'" in err and "Did you mean 'n'?" in err
    assert "wants an int" in one_line_error(invoke("schedule", "add", "x", nb, "--cron", "@daily", "-p", "n", "three"))
    ok("schedule", "add", "daily", nb, "--cron", "@daily")
    assert "Did you mean 'daily'?" in one_line_error(invoke("schedule", "add", "x", nb, "--cron", "@daily",
                                                             "--on-alert", "dayly"))
    assert "exists already" in one_line_error(invoke("schedule", "add", "daily", nb, "--cron", "@daily"))
    assert "Did you mean 'daily'?" in one_line_error(invoke("schedule", "pause", "dialy"))
    assert "Did you mean 'daily'?" in one_line_error(invoke("schedule", "run-due", "dail"))
    assert "ISO 8601" in one_line_error(invoke("schedule", "run-due", "--at", "tomorrow"))
    assert ScheduleStore().history() == []  # nothing ran


def test_slots_are_read_in_the_schedules_time_zone():
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer (CEST from 31 March 2030).
    winter = cron.latest_slot("0 9 * * *", "Europe/Paris", datetime(2030, 3, 30, 12, tzinfo=timezone.utc))
    summer = cron.latest_slot("0 9 * * *", "Europe/Paris", datetime(2030, 3, 31, 12, tzinfo=timezone.utc))
    assert (winter.hour, summer.hour) == (8, 7)
    assert cron.local_iso(summer, "Europe/Paris") == "2030-03-31T09:00:00+02:00"
    exact = datetime(2030, 1, 1, 6, tzinfo=timezone.utc)
    assert cron.latest_slot("0 6 * * *", "UTC", exact) == exact  # a slot is due at its own moment
    assert list(cron.slots("0 * * * *", "UTC", exact, exact + timedelta(hours=3))) == [
        exact + timedelta(hours=1), exact + timedelta(hours=2)]
    assert cron.parse_time("2030-01-01T06:00Z") == exact


def _diagnose(run) -> str:
    """What a failing alert test needs to be understood: the run, the journal, the executed notebook."""
    import json
    import sqlite3

    import nbformat

    home = Path(os.environ["MLOPS_MAGICS_HOME"])
    db = sqlite3.connect(home / "journal.db")
    rejected = db.execute("SELECT op, error FROM rejected").fetchall()
    pending = db.execute("SELECT uri, n_ops, done, last_error FROM batches").fetchall()
    outputs = []
    output = run.data.tags.get("mlops.job.output")
    if output and Path(output).exists():
        nb = nbformat.read(output, as_version=4)
        outputs = [o.get("text") or o.get("data", {}).get("text/plain") for c in nb.cells for o in c.get("outputs", [])]
    log = (home / "deliver.log").read_text()[-2000:] if (home / "deliver.log").exists() else ""
    return json.dumps({"tags": run.data.tags, "metrics": run.data.metrics, "params": run.data.params,
                       "rejected": rejected, "pending": pending, "outputs": outputs, "deliver.log": log},
                      default=str)[:6000]
