"""A project's store keeps its artifacts beside it (issue 16, "one store per project").

MLflow's default artifact root for a SQLite store is ``./mlruns`` of whichever process creates
the store (its Default experiment) or an experiment. Without ``MLFLOW_TRACKING_URI`` /
``MLOPS_MAGICS_HOME`` the store is ``<root>/mlflow.db``; its artifacts must be
``<root>/mlruns/<experiment id>`` whether a kernel in ``notebooks/deep``, a job started from
``notebooks/`` or ``mlops-magics ui`` creates them. A relative ``sqlite:///mlflow.db`` the user
gives keeps meaning the file in the folder where it was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import last_bundle, run
from mlops_magics import locations, naming
from test_project_store import cli, execute, git_repo, kernel_env, no_location_env, notebook  # noqa: F401  (a fixture)

VENV_BIN = Path(sys.executable).parent


def mlruns_folders(top: Path) -> list[Path]:
    return sorted(p for p in top.rglob("*") if p.is_dir() and p.name in ("mlruns", "mlartifacts"))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- the rule ---------------------------------------------------------------------------------

def test_which_stores_keep_artifacts_beside_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert locations.project_artifacts(f"sqlite:///{tmp_path}/proj/mlflow.db") == tmp_path / "proj" / "mlruns"
    assert locations.project_artifacts(f"sqlite:///{tmp_path}/proj/mlflow.db?timeout=5") == tmp_path / "proj" / "mlruns"
    for other in (f"sqlite:///{tmp_path}/runs.db", "sqlite:///mlflow.db", "sqlite:///:memory:", "sqlite://",
                  "http://127.0.0.1:5000", "postgresql://u@h/db"):
        assert locations.project_artifacts(other) is None, other
    assert locations.absolute_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert locations.absolute_uri("sqlite:///sub/x.db?timeout=5") == f"sqlite:///{tmp_path}/sub/x.db?timeout=5"
    for kept in (f"sqlite:///{tmp_path}/a.db", "sqlite:///:memory:", "sqlite://", "http://h:1/x"):
        assert locations.absolute_uri(kept) == kept


# -- the writer, from any folder ------------------------------------------------------------

def test_the_delivery_side_creates_store_and_experiments_with_artifacts_at_the_root(tmp_path, monkeypatch,
                                                                                      no_location_env):
    """What the delivery process does, in this process working in notebooks/deep."""
    from mlflow import MlflowClient

    from mlops_magics.journal.mlflow_writer import MlflowWriter
    from mlops_magics.journal.prepare import prepare
    from mlops_magics.journal.store import Journal

    repo = git_repo(tmp_path / "proj")
    deep = repo / "notebooks" / "deep"
    monkeypatch.chdir(deep)
    uri = locations.tracking_uri()
    assert uri == f"sqlite:///{repo}/mlflow.db"
    prepare(uri)  # a new store: created here, its Default experiment with it
    journal = Journal(tmp_path / "journal.db")
    try:
        writer = MlflowWriter(uri, journal)
        later = writer.experiment_id("later")
        again = MlflowWriter(uri, journal).experiment_id("later")  # found, not made twice
    finally:
        journal.close()
    client = MlflowClient(tracking_uri=uri)
    assert again == later
    assert client.get_experiment("0").artifact_location == str(repo / "mlruns" / "0")
    made = client.get_experiment(later)
    assert made.artifact_location == str(repo / "mlruns" / later)
    assert made.tags[naming.MLFLOW_EXPERIMENT_KIND] == naming.EXPERIMENT_KIND_MODEL_TRAINING
    assert mlruns_folders(tmp_path) == []  # folders are made when an artifact comes, not before

    # Another store (not a project's mlflow.db) keeps MLflow's own default: ./mlruns here.
    other = f"sqlite:///{tmp_path}/runs.db"
    prepare(other)
    journal = Journal(tmp_path / "journal.db")
    try:
        eid = MlflowWriter(other, journal).experiment_id("elsewhere")
    finally:
        journal.close()
    assert MlflowClient(tracking_uri=other).get_experiment(eid).artifact_location == str(deep / "mlruns" / eid)


# -- real kernels and a real job --------------------------------------------------------------

@pytest.mark.kernel
@pytest.mark.slow
def test_kernel_in_a_subfolder_and_a_job_put_artifacts_at_the_project_root(tmp_path, monkeypatch, no_location_env):
    from mlflow import MlflowClient

    kernel_env(tmp_path, monkeypatch)
    repo = git_repo(tmp_path / "proj")
    deep = notebook(repo / "notebooks" / "deep" / "explore.ipynb",
                    "%%track -e deep-cells --log-model model\n"
                    "from sklearn.linear_model import LogisticRegression\n"
                    "model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])",
                    "%%track\nscore = 0.5",  # the Default experiment, made with the store
                    "import mlops_magics as mm\nassert mm.flush(60) == 0")
    notebook(repo / "notebooks" / "train.ipynb", "%%track\nf1 = n / 10", parameters="n = 1")
    monkeypatch.setenv("MLOPS_MAGICS_NOTEBOOK", str(deep))  # what JupyterLab tells a kernel
    execute(deep, cwd=deep.parent)  # a kernel working in notebooks/deep creates the store
    monkeypatch.delenv("MLOPS_MAGICS_NOTEBOOK")
    job = cli("run", "train.ipynb", "-p", "n", "3", "-e", "jobs", "--no-progress", cwd=repo / "notebooks")
    assert job.returncode == 0, job.stderr
    synced = cli("sync", cwd=repo)
    assert synced.returncode == 0, synced.stderr

    mlruns = repo / "mlruns"
    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    experiments = {e.name: e for e in client.search_experiments()}
    assert sorted(experiments) == ["Default", "deep-cells", "jobs"]
    for e in experiments.values():
        assert e.artifact_location == str(mlruns / e.experiment_id), e
    runs = client.search_runs([e.experiment_id for e in experiments.values()])
    kinds = sorted(r.data.tags.get(naming.KIND) for r in runs)
    assert naming.KIND_CELL in kinds and naming.KIND_JOB in kinds, kinds
    for r in runs:
        assert r.info.artifact_uri == str(mlruns / r.info.experiment_id / r.info.run_id / "artifacts"), r.info
    for r in runs:
        if r.data.tags.get(naming.KIND) in (naming.KIND_CELL, naming.KIND_JOB):
            logged = [a.path for a in client.list_artifacts(r.info.run_id)]
            on_disk = files_under(Path(r.info.artifact_uri))
            assert logged and on_disk, (r.data.tags.get(naming.KIND), logged)
    (model,) = client.search_logged_models(experiment_ids=[experiments["deep-cells"].experiment_id])
    assert model.artifact_location.startswith(str(mlruns / experiments["deep-cells"].experiment_id) + "/")
    assert "MLmodel" in files_under(Path(model.artifact_location))
    # nothing anywhere else: not under notebooks/, not in the folders the processes worked in
    assert mlruns_folders(tmp_path) == [mlruns]


@pytest.mark.kernel
@pytest.mark.slow
def test_a_relative_sqlite_uri_given_in_a_subfolder_still_means_that_subfolder(tmp_path, monkeypatch,
                                                                               no_location_env):
    """No change for a store the user names: ``sqlite:///mlflow.db`` from notebooks/deep is the
    file there (and its artifacts beside it, as ``mlflow`` run there would put them)."""
    from mlflow import MlflowClient

    kernel_env(tmp_path, monkeypatch)
    repo = git_repo(tmp_path / "proj")
    (repo / ".mlops_magics").mkdir(mode=0o700)  # the journal at the root: shared with default-store kernels
    deep = repo / "notebooks" / "deep"
    nb = notebook(deep / "mine.ipynb", "%%track -n mine\ny = 2", "%track status",
                  "import mlops_magics as mm\nassert mm.flush(60) == 0")
    monkeypatch.setenv(locations.TRACKING_URI_ENV, "sqlite:///mlflow.db")
    executed = execute(nb, cwd=deep)
    status = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in executed.cells[1].outputs)
    assert f"sqlite:///{deep}/mlflow.db" in status and "$MLFLOW_TRACKING_URI is set" in status, status
    assert not (repo / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{deep}/mlflow.db")
    (mine,) = client.search_runs(["0"], f"tags.`{naming.KIND}` = 'cell'")
    assert mine.info.run_name == "mine"
    assert mine.info.artifact_uri == str(deep / "mlruns" / "0" / mine.info.run_id / "artifacts")
    assert files_under(Path(mine.info.artifact_uri))
    assert mlruns_folders(tmp_path) == [deep / "mlruns"]


def test_a_relative_uri_keeps_its_folder_when_the_delivery_process_works_elsewhere(ip, tmp_path, monkeypatch,
                                                                                   no_location_env):
    """One journal at the root, its delivery process started from the root; then, from
    notebooks/deep, ``MLFLOW_TRACKING_URI=sqlite:///mlflow.db``: the records still go to
    notebooks/deep/mlflow.db (the URI is made absolute where it is given)."""
    from mlflow import MlflowClient

    repo = git_repo(tmp_path / "proj")
    deep = repo / "notebooks" / "deep"
    monkeypatch.chdir(repo)
    assert run(ip, "%%track -n first\nx = 1").success  # the default store; delivery starts here
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    monkeypatch.chdir(deep)
    monkeypatch.setenv(locations.TRACKING_URI_ENV, "sqlite:///mlflow.db")
    assert run(ip, "%%track -n mine\ny = 2").success
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    names = {where: sorted(r.info.run_name for r in MlflowClient(tracking_uri=f"sqlite:///{where}/mlflow.db")
                           .search_runs(["0"], f"tags.`{naming.KIND}` = 'cell'"))
             for where in (repo, deep)}
    assert names == {repo: ["first"], deep: ["mine"]}
    assert mlruns_folders(tmp_path) == sorted([deep / "mlruns", repo / "mlruns"])
    for where in (repo, deep):
        (r,) = MlflowClient(tracking_uri=f"sqlite:///{where}/mlflow.db").search_runs(
            ["0"], f"tags.`{naming.KIND}` = 'cell'")
        assert r.info.artifact_uri.startswith(str(where / "mlruns" / "0") + "/")


# -- mlops-magics ui ----------------------------------------------------------------------------

@pytest.mark.slow
def test_ui_from_a_subfolder_creates_experiments_at_the_root_and_serves_their_artifacts(
        ip, tmp_path, monkeypatch, no_location_env):
    from servers import free_port

    repo = git_repo(tmp_path / "proj")
    deep = repo / "notebooks" / "deep"
    monkeypatch.chdir(repo)
    assert run(ip, "%%track -n seen\nscore = 0.5").success
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(VENV_BIN / "mlops-magics"), "ui", "--port", str(port)], cwd=deep, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={k: v for k, v in os.environ.items() if k != locations.TRACKING_URI_ENV})

    def call(path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.read()

    try:
        deadline = time.monotonic() + 300  # the UI process imports mlflow and starts its server
        while True:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
            try:
                found = json.loads(call("/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"]}))
                break
            except OSError:
                assert time.monotonic() < deadline, "the UI never answered"
                time.sleep(0.3)
        (seen,) = [r for r in found["runs"] if r["info"]["run_name"] == "seen"]
        made = json.loads(call("/api/2.0/mlflow/experiments/create", {"name": "from-the-ui"}))["experiment_id"]
        got = json.loads(call(f"/api/2.0/mlflow/experiments/get?experiment_id={made}"))["experiment"]
        assert got["artifact_location"] == str(repo / "mlruns" / made)
        listed = json.loads(call(f"/ajax-api/2.0/mlflow/artifacts/list?run_uuid={seen['info']['run_id']}"))
        paths = [f["path"] for f in listed.get("files", [])]
        assert paths, listed
        folder = next(f["path"] for f in listed["files"] if f.get("is_dir"))
        inner = json.loads(call(f"/ajax-api/2.0/mlflow/artifacts/list?run_uuid={seen['info']['run_id']}&path={folder}"))
        first = next(f["path"] for f in inner["files"] if not f.get("is_dir"))
        served = call(f"/get-artifact?path={first}&run_uuid={seen['info']['run_id']}")
        on_disk = Path(seen["info"]["artifact_uri"]) / first
        assert served == on_disk.read_bytes() and served
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
    assert mlruns_folders(tmp_path) == [repo / "mlruns"]
