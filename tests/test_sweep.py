"""Sweeps in real kernels on real Dask workers: child job runs, failing points, the best tagged."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_magics.cli import cli
from mlops_magics.runner.fanout import dask_points as _fanout
from mlops_magics.runner.parameters import ParameterError
from mlops_magics.runner.sweep import parse_grid, pick_metric, run_sweep

pytestmark = [pytest.mark.kernel, pytest.mark.slow]
NOTEBOOKS = Path(__file__).parent / "notebooks"


def job_runs(client, sweep_key, experiment="Default"):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], f"tags.`mlops.sweep` = '{sweep_key}'")


def test_a_grid_is_one_sweep_run_with_a_child_job_run_per_point(client):
    result = run_sweep(NOTEBOOKS / "job_params.ipynb", {"n": ["1", "2"], "rate": [0.1, 0.9]}, workers=2,
                       progress=False)
    assert result.status == "FINISHED" and result.finished == 4 and result.metric == "score"
    sweep = client.get_run(result.run_id)
    assert sweep.info.status == "FINISHED" and sweep.data.tags["mlops.kind"] == "sweep"
    runs = job_runs(client, result.key)
    assert len(runs) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {result.run_id}
    assert {(r.data.params["n"], r.data.params["rate"]) for r in runs} == {
        ("1", "0.1"), ("1", "0.9"), ("2", "0.1"), ("2", "0.9")}
    assert all(r.info.status == "FINISHED" and r.data.tags["mlops.kind"] == "job" for r in runs)
    scores = {r.info.run_id: r.data.metrics["score"] for r in runs}
    best = max(scores, key=scores.get)
    assert sweep.data.tags["mlops.sweep.best_run"] == best == result.best.job.run_id
    assert sweep.data.tags["mlops.sweep.metric"] == "score" and sweep.data.tags["mlops.sweep.goal"] == "max"
    assert [p.value for p in result.points] == sorted(scores.values(), reverse=True)
    assert result.points[0].parameters == {"n": 1, "rate": 0.9}  # typed: "1" became the int 1
    text = repr(result)
    assert "sorted by score" in text and text.splitlines()[3].startswith("*")
    assert not _kernels_left()


def test_every_point_runs_in_a_fresh_kernel_of_its_own(client, tmp_path, monkeypatch):
    """The kernels are forked from one process that has imported ipykernel: each point's is
    new (its own process, random reseeded), works in the sweep's folder with the sweep's
    environment (not what Dask sets for its workers), and one that dies fails only its point."""
    shutil.copy(NOTEBOOKS / "sweep_kernel_facts.ipynb", tmp_path / "facts.ipynb")
    (tmp_path / "helper.py").write_text("HELPER = 42\n")
    monkeypatch.chdir(tmp_path)
    since = time.time()
    result = run_sweep(tmp_path / "facts.ipynb", {"x": [0, 1, 2, 3, 4, 5]}, workers=2, progress=False)
    assert result.finished == 5
    died, = [p for p in result.points if p.job.status == "FAILED"]
    assert died.parameters == {"x": 3} and died.job.failure == "kernel_died"
    facts = [r.data.metrics for r in job_runs(client, result.key) if r.info.status == "FINISHED"]
    assert len(facts) == 5
    assert len({m["pid"] for m in facts}) == 5  # never one kernel for two points
    assert len({m["draw"] for m in facts}) == 5  # each kernel's random is its own
    assert all(m["helped"] == 42 for m in facts)  # imports from the working folder
    assert {m["hash_seed_set"] for m in facts} == {float("PYTHONHASHSEED" in os.environ)}
    assert {m["threads_env"] for m in facts} == {float("OMP_NUM_THREADS" in os.environ)}
    parents = {m["parent"] for m in facts}
    assert len(parents) == 1 and os.getpid() not in parents  # all forked by one server, not by the workers
    assert not _kernels_left(since)


def test_the_sweeps_own_process_never_loads_mlflow(client):
    """One delivery process loads it; the points are ranked from what the journal kept."""
    code = ("import sys\nfrom mlops_magics.runner.sweep import run_sweep\n"
            f"r = run_sweep({str(NOTEBOOKS / 'job_params.ipynb')!r}, {{'seed': [1, 2, 3]}}, workers=2, progress=False)\n"
            "print(r.finished, r.metric, r.best.job.run_id, 'mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    finished, metric, best, loaded = out.stdout.split()[-4:]
    assert (finished, metric, loaded) == ("3", "score", "False")
    sweep = client.get_run(client.get_run(best).data.tags["mlflow.parentRunId"])
    runs = job_runs(client, sweep.data.tags["mlops.run_key"])
    assert len(runs) == 3 and best == max(runs, key=lambda r: r.data.metrics["score"]).info.run_id
    assert sweep.data.tags["mlops.sweep.best_run"] == best


def test_failing_points_do_not_stop_the_others(client, tmp_path):
    out = subprocess.run([sys.executable, "-m", "mlops_magics.cli", "sweep", str(NOTEBOOKS / "sweep_some_fail.ipynb"),
                          "--grid", "x=1,2,3", "--workers", "2", "--no-progress"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if "FINISHED" in line or "FAILED" in line]
    assert rows[0].startswith("*") and " 1 " in rows[0] and "FAILED (error: ValueError: x=2" in rows[-1]
    exp = client.get_experiment_by_name("Default")
    sweep, = client.search_runs([exp.experiment_id], "tags.`mlops.kind` = 'sweep'")
    assert sweep.info.status == "FINISHED" and sweep.data.tags["mlops.sweep.failed"] == "1"
    runs = {r.data.params["x"]: r for r in job_runs(client, sweep.data.tags["mlops.run_key"])}
    assert {x: r.info.status for x, r in runs.items()} == {"1": "FINISHED", "2": "FAILED", "3": "FINISHED"}
    assert runs["2"].data.tags["mlops.failure"] == "error"
    assert runs["2"].data.tags["mlops.error"].startswith("ValueError: x=2 fails")
    assert sweep.data.tags["mlops.sweep.best_run"] == runs["1"].info.run_id


def test_the_sweep_run_fails_only_when_every_point_fails(client):
    result = run_sweep(NOTEBOOKS / "sweep_some_fail.ipynb", {"x": [2], "fail_on": [2]}, workers=1, progress=False)
    assert result.status == "FAILED" and result.best is None
    sweep = client.get_run(result.run_id)
    assert sweep.info.status == "FAILED" and sweep.data.tags["mlops.failure"] == "error"
    assert "every point failed" in sweep.data.tags["mlops.error"]
    assert CliRunner().invoke(cli, ["sweep", str(NOTEBOOKS / "sweep_some_fail.ipynb"), "--grid", "x=2",
                                    "--no-progress"]).exit_code == 1


@pytest.mark.parametrize("grid, message", [
    ({"nn": ["1", "2"]}, r"unknown parameter 'nn' for job_params.ipynb. Did you mean 'n'\?"),
    ({"n": ["1", "x"]}, r"parameter 'n' wants an int, got 'x'"),
    ({"n": []}, r"grid 'n' has no values"),
    ({}, r"the grid is empty"),
])
def test_a_bad_grid_is_refused_before_any_kernel_starts(grid, message, monkeypatch, tmp_path):
    monkeypatch.setattr(_fanout, "Dask", None)  # any attempt to start a cluster would fail differently
    with pytest.raises(ParameterError, match=message):
        run_sweep(NOTEBOOKS / "job_params.ipynb", grid, progress=False)
    assert not (tmp_path / ".mlops_magics" / "jobs").exists()


@pytest.mark.parametrize("argv, expected", [
    (["--grid", "nn=1,2"], "Error: unknown parameter 'nn' for job_params.ipynb. Did you mean 'n'?"),
    (["--grid", "n"], "Error: --grid wants NAME=V1,V2, got 'n'"),
    (["--grid", "n=1", "--grid", "n=2"], "Error: --grid n given twice"),
    ([], "Error: Missing option '--grid'"),
    (["--grid", "n=1", "--workers", "0"], "Error: Invalid value for '--workers'"),
    (["--grid", "n=1", "--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "Error: --workers sizes the local"),
])
def test_bad_flags_are_one_line_usage_errors(argv, expected):
    out = CliRunner().invoke(cli, ["sweep", str(NOTEBOOKS / "job_params.ipynb"), *argv], prog_name="mlops-magics")
    assert out.exit_code == 2
    assert out.output.startswith(expected) and len(out.output.strip().splitlines()) == 1


def test_grid_text_keeps_commas_in_brackets_and_quotes():
    assert parse_grid(["layers=[1, 2],[3]", "label='a,b', c", "n=1"]) == {
        "layers": ["[1, 2]", "[3]"], "label": ["a,b", "c"], "n": ["1"]}
    assert pick_metric([{"loss": 1.0, "f1": 0.5, "acc": 1.0}, {"f1": 0.1, "loss": 2.0}]) == "f1"
    assert pick_metric([{"loss": 1.0, "score": 2.0}], greater_is_better=False) == "loss"
    assert pick_metric([{"b": 1.0, "a": 2.0, "system.cell.wall_s": 0.1}]) == "a"


@pytest.fixture
def dask_cluster(tmp_path):
    """A real Dask scheduler and one worker, as processes on 127.0.0.1, without our environment."""
    exe = Path(sys.executable).with_name("dask")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_MAGICS_HOME", "MLFLOW_TRACKING_URI")}
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    started = [[exe, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
               [exe, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]]
    procs = [subprocess.Popen(argv, env=env, cwd=elsewhere, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for argv in started]
    yield address
    for proc in reversed(procs):  # each in its own session: the worker's nanny and process go together
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def test_cluster_runs_the_points_on_a_dask_scheduler(dask_cluster, client, monkeypatch, tmp_path):
    monkeypatch.setattr(_fanout, "_local_cluster", None)  # the points must run on the scheduler's worker
    result = run_sweep(NOTEBOOKS / "job_params.ipynb", {"seed": ["1", "2"]}, cluster=dask_cluster, progress=False)
    assert result.status == "FINISHED" and result.finished == 2 and result.best is not None
    runs = job_runs(client, result.key)
    assert {r.data.params["seed"] for r in runs} == {"1", "2"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {result.run_id}
    assert all("score" in r.data.metrics for r in runs)
    outputs = {Path(r.data.tags["mlops.job.output"]).parent for r in runs}
    assert outputs == {tmp_path / ".mlops_magics" / "jobs"}  # the sweep's folder, not the worker's cwd


def _kernels_left(since: float = 0.0) -> list[int]:
    """Kernels this test left running: started by it, or forked by a sweep's kernel fork server
    (whose children outlive it as orphans if it fails to stop them)."""
    import psutil

    mine = [p.pid for p in psutil.Process().children(recursive=True) if "ipykernel_launcher" in " ".join(p.cmdline())]
    forked = []
    for p in psutil.process_iter(["cmdline", "create_time"]):
        if "mlops_magics.runner.kernels.fork_server" in " ".join(p.info["cmdline"] or []) \
                and (p.info["create_time"] or 0) >= since - 1:
            forked.append(p.pid)
    return mine + forked
