"""The Jupyter server extension, in a real ``jupyter server`` on 127.0.0.1 with a token.

The server runs in a temporary root with its own journal folder and SQLite MLflow store
(MLOPS_MAGICS_HOME, MLFLOW_TRACKING_URI); the extension is enabled the way a user's install
enables it (``etc/jupyter/jupyter_server_config.d/mlops_magics.json`` in the environment).
Every endpoint of ``/mlops/api/`` is asked over HTTP; errors are compared with what the CLI
prints for the same mistake; jobs and schedules run real kernels.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port

NOTEBOOKS = Path(__file__).parent / "notebooks"


class Server:
    """``jupyter server`` on 127.0.0.1:port; everything it writes under ``base``."""

    def __init__(self, base: Path, store_template: Path) -> None:
        self.base, self.root = base, base / "root"
        self.root.mkdir(parents=True)
        for name in ("job_params", "sched_tiny"):
            shutil.copy(NOTEBOOKS / f"{name}.ipynb", self.root / f"{name}.ipynb")
        shutil.copy(store_template, base / "mlflow.db")
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.home = base / "mlops-home"
        self.uri = f"sqlite:///{base / 'mlflow.db'}"
        self.env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
                    "JUPYTER_DATA_DIR": str(base / "jupyter-data"), "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
                    "IPYTHONDIR": str(base / "ipython"), "MLOPS_MAGICS_HOME": str(self.home),
                    "MLFLOW_TRACKING_URI": self.uri, "PYTHONUNBUFFERED": "1"}
        self.env.pop("MLFLOW_EXPERIMENT_NAME", None)
        self.log = base / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> Server:
        cmd = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
               "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(cmd, cwd=self.base, env=self.env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"jupyter server exited:\n{self.log.read_text()[-3000:]}"
            try:
                if self.call("GET", "status")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the server did not answer /mlops/api/status in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def call(self, method: str, path: str, body=None, token: bool = True) -> tuple[int, dict | None]:
        """``(status, JSON body)`` of ``method /mlops/api/<path>``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/mlops/api/{path}", data=data, method=method)
        if token:
            req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text) if text else None
            except ValueError:
                return exc.code, {"raw": text.decode(errors="replace")}

    def cli(self, *argv: str) -> subprocess.CompletedProcess:
        """``mlops-magics ...`` on the server's journal folder and store."""
        return subprocess.run([sys.executable, "-m", "mlops_magics.cli", *argv], env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def scheduler_pid(self) -> int:
        text = (self.home / "logs" / "jupyter-scheduler.log").read_text()
        return int(re.findall(r"scheduler started \(pid (\d+)\)", text)[-1])


@pytest.fixture(scope="module")
def server(tmp_path_factory, _empty_store):
    srv = Server(tmp_path_factory.mktemp("jupyter"), _empty_store).start()
    yield srv
    srv.stop()


def _error(result: subprocess.CompletedProcess) -> str:
    """The CLI's one-line error, without click's ``Error: `` and usage lines."""
    assert result.returncode != 0, result.stdout
    line = [line for line in result.stderr.splitlines() if line.startswith("Error: ")][-1][len("Error: "):]
    return re.sub(r" \(see 'mlops-magics [\w -]+ --help'\)$", "", line)  # click's pointer to the usage


def _wait(what, predicate, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout}s:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


# -- installation ------------------------------------------------------------------------
def test_jupyter_lists_the_extension_enabled(server):
    out = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"], env=server.env,
                         capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"^\s*mlops_magics enabled\s*$", text, re.M), text
    assert re.search(r"mlops_magics \S+ OK", text), text
    assert "mlops_magics | extension was successfully loaded" in server.log.read_text()


# -- authentication ----------------------------------------------------------------------
def test_requests_without_the_token_are_refused(server):
    for method, path, body in (("GET", "status", None), ("GET", "schedules", None), ("GET", "jobs", None),
                               ("GET", "runs?notebook=job_params.ipynb", None),
                               ("GET", "notebook?path=job_params.ipynb", None),
                               ("POST", "schedules", {"name": "sneaky", "notebook": "job_params.ipynb",
                                                      "cron": "0 6 * * *"}),
                               ("POST", "jobs", {"notebook": "job_params.ipynb"}),
                               ("PATCH", "schedules/sneaky", {"paused": True}),
                               ("DELETE", "schedules/sneaky", None)):
        status, _ = server.call(method, path, body, token=False)
        assert status in (401, 403), (method, path, status)
    assert server.call("GET", "schedules")[1] == {"schedules": []}
    assert server.call("GET", "jobs")[1] == {"jobs": []}


# -- status and notebooks ----------------------------------------------------------------
def test_status_says_where_records_go_and_who_delivers(server):
    status, body = server.call("GET", "status")
    assert status == 200
    assert body["journal"] == str(server.home)
    assert body["tracking_uri"] == server.uri
    assert isinstance(body["pending"], int) and isinstance(body["set_aside"], int)
    assert body["deliverer"]["state"] in ("delivering", "starting", "none")
    assert body["server_reachable"] is None  # a SQLite store is not a server
    assert body["summary"] == ("all records delivered" if body["pending"] == 0 else body["summary"])


def test_notebook_parameters_are_described_as_the_cli_does(server):
    status, body = server.call("GET", "notebook?path=job_params.ipynb")
    assert status == 200
    assert body["path"] == "job_params.ipynb"
    assert body["parameters"] == [
        {"name": "n", "default": 3, "type": "int", "help": "how many"},
        {"name": "rate", "default": 0.5, "type": "float", "help": ""},
        {"name": "label", "default": "run", "type": "str", "help": ""},
        {"name": "layers", "default": [8, 4], "type": "list", "help": ""},
        {"name": "seed", "default": 0, "type": "int", "help": ""},
    ]
    described = server.cli("run", str(server.root / "job_params.ipynb"), "--describe").stdout
    for p in body["parameters"]:
        assert re.search(rf"\b{p['name']}\b.*\b{p['type']}\b", described), described
    status, body = server.call("GET", "notebook?path=missing.ipynb")
    assert (status, body) == (404, {"message": "no notebook at missing.ipynb"})
    status, body = server.call("GET", "notebook?path=../outside.ipynb")
    assert status == 400 and "outside the Jupyter root folder" in body["message"]


# -- jobs --------------------------------------------------------------------------------
def test_bad_job_parameters_are_refused_before_any_kernel_starts(server):
    status, body = server.call("POST", "jobs", {"notebook": "job_params.ipynb", "parameters": {"nn": 3}})
    assert status == 400
    assert body == {"message": "unknown parameter 'nn' for job_params.ipynb. Did you mean 'n'? "
                               "Its parameters: n, rate, label, layers, seed"}
    cli = server.cli("run", str(server.root / "job_params.ipynb"), "-p", "nn", "3")
    assert _error(cli) == body["message"]
    status, body = server.call("POST", "jobs", {"notebook": "job_params.ipynb", "parameters": {"rate": "fast"}})
    assert (status, body) == (400, {"message": "parameter 'rate' wants a float, got 'fast'"})
    assert _error(server.cli("run", str(server.root / "job_params.ipynb"), "-p", "rate", "fast")) == body["message"]
    status, body = server.call("POST", "jobs", {"notebook": "job_params.ipynb", "parameters": {"n": 2.5}})
    assert (status, body) == (400, {"message": "parameter 'n' wants an int, got 2.5"})
    status, body = server.call("POST", "jobs", {"notebook": "missing.ipynb"})
    assert (status, body) == (404, {"message": "no notebook at missing.ipynb"})
    assert server.call("GET", "jobs")[1] == {"jobs": []}  # nothing started
    assert not list((server.home / "server-jobs").glob("*.json"))
    status, body = server.call("GET", "jobs/0123456789ab")
    assert status == 404 and body["message"].startswith("no job '0123456789ab'")


@pytest.mark.kernel
@pytest.mark.slow
def test_a_job_reaches_finished_with_its_run_in_mlflow_and_in_runs(server):
    from mlflow import MlflowClient

    status, job = server.call("POST", "jobs", {"notebook": "job_params.ipynb",
                                               "parameters": {"n": 2, "rate": "0.25", "layers": [3]}})
    assert status == 202, job
    assert job["state"] in ("queued", "running") and job["notebook"] == "job_params.ipynb"
    assert job["parameters"] == {"n": 2, "rate": 0.25, "layers": [3]}

    def ended():
        body = server.call("GET", f"jobs/{job['id']}")[1]
        return body if body["state"] in ("FINISHED", "FAILED") else None

    done = _wait("the job's end", ended, 240, server.home / "server-jobs" / f"{job['id']}.log")
    assert done["state"] == "FINISHED", done
    assert done["failure"] is None and done["error"] is None
    assert done["cell_count"] == 4 and done["current_cell"] == 4  # 3 cells + papermill's injected parameters
    assert done["output_path"] == f"jobs/job_params-{job['id']}.ipynb"
    assert (server.root / done["output_path"]).is_file()
    run = MlflowClient(tracking_uri=server.uri).get_run(done["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["n"] == "2" and run.data.params["rate"] == "0.25" and run.data.tags["mlops.kind"] == "job"
    assert server.call("GET", "jobs?notebook=job_params.ipynb")[1]["jobs"][0]["id"] == job["id"]
    assert server.call("GET", "jobs?notebook=sched_tiny.ipynb")[1] == {"jobs": []}

    # A second job with another n: newest first, with the params that changed.
    status, second = server.call("POST", "jobs", {"notebook": "job_params.ipynb", "parameters": {"n": 4}})
    assert status == 202
    second_id = second["id"]
    done2 = _wait("the second job's end", lambda: (lambda b: b if b["state"] in ("FINISHED", "FAILED") else None)(
        server.call("GET", f"jobs/{second_id}")[1]), 240, server.home / "server-jobs" / f"{second_id}.log")
    assert done2["state"] == "FINISHED", done2

    def listed():
        body = server.call("GET", "runs?notebook=job_params.ipynb")[1]
        return body if [r["run_id"] for r in body["runs"]] == [done2["run_id"], done["run_id"]] else None

    body = _wait("both runs in /runs", listed, 30, server.log)
    assert body["ui_url"] is None
    newest, oldest = body["runs"]
    assert newest["kind"] == "job" and newest["status"] == "FINISHED" and newest["failure"] is None
    assert newest["params"]["n"] == "4" and oldest["params"]["n"] == "2"
    assert newest["changed_params"] == {"layers": ["[3]", "[8, 4]"], "n": ["2", "4"], "rate": ["0.25", "0.5"]}
    assert oldest["changed_params"] == {}
    assert newest["metrics"]["loss"] == pytest.approx(0.2)
    assert newest["primary_metric"]["name"] in newest["metrics"]
    assert newest["start_time"] >= oldest["start_time"]
    assert server.call("GET", "runs?notebook=sched_tiny.ipynb")[1]["runs"] == []


# -- schedules ---------------------------------------------------------------------------
def test_schedules_are_added_paused_resumed_and_removed_with_the_clis_errors(server):
    good = {"name": "nightly", "notebook": "job_params.ipynb", "cron": "0 6 * * *", "timezone": "UTC",
            "parameters": {"n": 5, "rate": "0.125"}, "catch_up": "none", "timeout": 600, "retries": 2}
    status, body = server.call("POST", "schedules", {**good, "cron": "61 * * * *"})
    assert (status, body) == (400, {"message": "invalid cron expression '61 * * * *': '61' is not a valid minute"})
    cli = server.cli("schedule", "add", "nightly", str(server.root / "job_params.ipynb"), "--cron", "61 * * * *")
    assert _error(cli) == body["message"]
    status, body = server.call("POST", "schedules", {**good, "parameters": {"rte": 0.1}})
    assert status == 400 and body["message"].startswith("unknown parameter 'rte' for job_params.ipynb. Did you mean 'rate'?")
    status, body = server.call("POST", "schedules", {**good, "parameters": {"n": "many"}})
    assert (status, body) == (400, {"message": "parameter 'n' wants an int, got 'many'"})
    status, body = server.call("POST", "schedules", {**good, "timezone": "Europe/Pari"})
    assert status == 400 and "Did you mean 'Europe/Paris'?" in body["message"]

    status, body = server.call("POST", "schedules", good)
    assert status == 201, body
    assert body == {"name": "nightly", "notebook": "job_params.ipynb", "cron": "0 6 * * *", "timezone": "UTC",
                    "parameters": {"n": 5, "rate": 0.125}, "catch_up": "none", "timeout": 600.0, "retries": 2,
                    "on_alert": None, "paused": False, "next_run": body["next_run"], "last": None}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT06:00:00\+00:00", body["next_run"]), body["next_run"]
    status, dup = server.call("POST", "schedules", good)
    assert status == 400 and dup["message"].startswith("a schedule named 'nightly' exists already")
    listed = server.cli("schedule", "list").stdout
    assert "nightly" in listed and "0 6 * * *" in listed  # the CLI sees what the API added

    assert server.call("GET", "schedules?notebook=job_params.ipynb")[1]["schedules"][0]["name"] == "nightly"
    assert server.call("GET", "schedules?notebook=sched_tiny.ipynb")[1] == {"schedules": []}

    status, paused = server.call("PATCH", "schedules/nightly", {"paused": True})
    assert status == 200 and paused["paused"] is True and paused["next_run"] is None
    status, resumed = server.call("PATCH", "schedules/nightly", {"paused": False})
    assert status == 200 and resumed["paused"] is False and resumed["next_run"] == body["next_run"]
    status, bad = server.call("PATCH", "schedules/nightly", {"paused": "yes"})
    assert status == 400

    status, missing = server.call("PATCH", "schedules/nightli", {"paused": True})
    assert status == 404
    assert missing["message"] == "no schedule named 'nightli'. Did you mean 'nightly'? Schedules: nightly"
    assert _error(server.cli("schedule", "pause", "nightli")) == missing["message"]
    status, missing = server.call("DELETE", "schedules/nightli")
    assert status == 404 and "Did you mean 'nightly'?" in missing["message"]

    assert server.call("DELETE", "schedules/nightly") == (204, None)
    assert server.call("GET", "schedules")[1] == {"schedules": []}


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.race  # its point is the race for each slot: a pass on a re-run would hide a double run
@pytest.mark.timeout(600)
def test_a_schedule_every_minute_runs_each_slot_once_beside_mlops_magics_scheduler(server):
    """The server's schedule loop and ``mlops-magics scheduler`` race for each slot: one run each."""
    from mlflow import MlflowClient

    from mlops_magics.schedules.store import ScheduleStore

    status, body = server.call("POST", "schedules", {"name": "tick", "notebook": "sched_tiny.ipynb",
                                                     "cron": "* * * * *", "timezone": "UTC"})
    assert status == 201, body
    server_log_path, cli_log_path = server.home / "logs" / "jupyter-scheduler.log", server.base / "cli-scheduler.log"
    log = open(cli_log_path, "w")
    beside = subprocess.Popen([sys.executable, "-m", "mlops_magics.cli", "scheduler", "--interval", "1", "--grace", "60"],
                              env=server.env, cwd=server.root, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    store = ScheduleStore(server.home / "schedules.db")

    def cron_slots():
        return [s for s in store.history("tick") if s.kind == "cron"]

    def both_raced():
        """Two slots finished, and each loop went for a slot at least once (else nothing raced)."""
        slots = cron_slots()
        return (sum(s.state == "finished" for s in slots) >= 2 and "run-due started" in server_log_path.read_text()
                and "run-due started" in cli_log_path.read_text())

    try:
        _wait("two finished slots, each loop going for one", both_raced, 420, server_log_path)
        assert server.call("PATCH", "schedules/tick", {"paused": True})[0] == 200
        _wait("no slot running", lambda: not any(s.state == "running" for s in store.history("tick")), 120, server.log)
    finally:
        beside.send_signal(signal.SIGTERM)
        try:
            beside.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(beside.pid, signal.SIGKILL)
        log.close()
    slots = cron_slots()
    seen = f"slots: {[(s.slot, s.state, s.run_id) for s in slots]}\nserver loop:\n" \
           f"{server_log_path.read_text()[-2000:]}\ncli loop:\n{cli_log_path.read_text()[-2000:]}"
    finished = [s for s in slots if s.state == "finished"]
    assert len(finished) >= 2, seen
    assert len({s.slot for s in slots}) == len(slots), seen  # a slot is claimed once
    client = MlflowClient(tracking_uri=server.uri)
    exp = client.get_experiment_by_name("Default")
    ran = [s for s in slots if s.state in ("finished", "failed")]

    def runs_by_slot():
        """The schedule's runs in MLflow by slot, once every slot that ran has one (delivery is asynchronous)."""
        by_slot: dict[str, list] = {}
        for r in client.search_runs([exp.experiment_id], "tags.`mlops.schedule` = 'tick'", max_results=100):
            by_slot.setdefault(r.data.tags["mlops.schedule.slot"], []).append(r.info.run_id)
        return by_slot if len(by_slot) >= len(ran) else None

    by_slot = _wait("a run in MLflow for each slot that ran", runs_by_slot, 120, server.home / "deliver.log")
    assert all(len(ids) == 1 for ids in by_slot.values()), f"{by_slot}\n{seen}"  # exactly one run per slot
    assert len(by_slot) == len(ran), f"{by_slot}\n{seen}"
    assert {s.run_id for s in finished} <= {i for ids in by_slot.values() for i in ids}, f"{by_slot}\n{seen}"
    assert "Traceback" not in server_log_path.read_text() and "Traceback" not in cli_log_path.read_text(), seen
    last = server.call("GET", "schedules?notebook=sched_tiny.ipynb")[1]["schedules"][0]["last"]
    newest = store.last("tick")
    assert (last["status"], last["run_id"]) == (newest.state, newest.run_id), seen  # the API shows the newest record
    assert server.call("DELETE", "schedules/tick")[0] == 204


# -- lifecycle ---------------------------------------------------------------------------
def test_stopping_the_server_stops_its_schedule_loop(tmp_path, _empty_store):
    from mlops_magics.processes import alive

    srv = Server(tmp_path / "own", _empty_store).start()
    try:
        pid = _wait("the schedule loop's start", lambda: (srv.home / "logs" / "jupyter-scheduler.log").exists()
                    and "scheduler started" in (srv.home / "logs" / "jupyter-scheduler.log").read_text()
                    and srv.scheduler_pid(), 60, srv.log)
        assert alive(pid)
    finally:
        srv.stop()
    _wait("the loop's end", lambda: not alive(pid), 60, srv.home / "logs" / "jupyter-scheduler.log")
    assert "scheduler stopped" in (srv.home / "logs" / "jupyter-scheduler.log").read_text()
