"""``store_read``: MLflow's runs read without mlflow, against real stores made by mlflow itself.

The SQLite store (read with SQL) and a real ``mlflow server`` (read over REST) must give the
frame ``mlflow.search_runs`` gives; the cache must pick up new runs and new metric values
without reading everything again; a fresh process reading history must never import mlflow.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_magics import locations, naming
from mlops_magics.store_read import NoExperiment, ReadError, Store

DIGEST = "xx3v1:0123456789abcdef0123"


def _input(name: str, digest: str, context: str = "input"):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return DatasetInput(Dataset(name=name, digest=digest, source_type="code", source="{}"),
                        tags=[InputTag(naming.DATASET_CONTEXT_TAG, context)])


def make_runs(client) -> dict[str, str]:
    """churn: three finished runs, a running one, a deleted one, a session container; other: one run."""
    churn = client.create_experiment("churn")
    other = client.create_experiment("other")
    ids = {}
    for i, kind in enumerate(["cell", "job", "cell"]):
        run = client.create_run(churn, run_name=f"fit {i}", tags={naming.KIND: kind, "team": "a" if i else "b"})
        client.log_param(run.info.run_id, "alpha", str(0.1 * (i + 1)))
        if i == 1:
            client.log_param(run.info.run_id, "n_estimators", "200")
        client.log_metric(run.info.run_id, "f1", 0.5 + i / 10, step=0)
        client.log_metric(run.info.run_id, "f1", 0.6 + i / 10, step=1)  # the latest is what is read
        client.log_metric(run.info.run_id, naming.SYSTEM_WALL, 1.5)
        client.log_inputs(run.info.run_id, [_input("X_train", DIGEST), _input("preds", "ffff", "output")])
        client.set_terminated(run.info.run_id)
        ids[f"fit{i}"] = run.info.run_id
    nan = client.create_run(churn, run_name="nan", tags={naming.KIND: "cell"})
    client.log_metric(nan.info.run_id, "f1", float("nan"))
    ids["running"] = nan.info.run_id  # never terminated: RUNNING
    gone = client.create_run(churn, run_name="gone")
    client.log_metric(gone.info.run_id, "f1", 0.99)
    client.delete_run(gone.info.run_id)
    ids["deleted"] = gone.info.run_id
    session = client.create_run(churn, run_name="session", tags={naming.KIND: naming.KIND_SESSION})
    client.set_terminated(session.info.run_id)
    ids["session"] = session.info.run_id
    ids["other"] = client.create_run(other, run_name="elsewhere").info.run_id
    return ids


def search_runs(uri: str, experiment: str) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(experiment_names=[experiment])
    finally:
        mlflow.set_tracking_uri(None)


def same_frame(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert sorted(ours.columns) == sorted(theirs.columns)
    pd.testing.assert_frame_equal(ours[sorted(ours.columns)], theirs[sorted(theirs.columns)])


def test_sqlite_frame_equals_search_runs(client, tracking_uri):
    ids = make_runs(client)

    ours = Store().runs_frame("churn")

    same_frame(ours, search_runs(tracking_uri, "churn"))
    assert set(ours["run_id"]) == {ids["fit0"], ids["fit1"], ids["fit2"], ids["running"], ids["session"]}
    row = ours.set_index("run_id").loc[ids["fit1"]]
    assert row["metrics.f1"] == pytest.approx(0.7) and row["params.n_estimators"] == "200"
    assert row["tags.mlops.kind"] == "job" and row["status"] == "FINISHED"
    assert pd.isna(ours.set_index("run_id").loc[ids["running"], "metrics.f1"])
    assert ours.set_index("run_id").loc[ids["running"], "status"] == "RUNNING"


def test_history_frame_is_flat_oldest_first_without_containers(client):
    ids = make_runs(client)

    frame = Store().history_frame("churn")

    assert list(frame["run_id"]) == [ids["fit0"], ids["fit1"], ids["fit2"], ids["running"]]
    first = frame.iloc[1]
    assert (first["run_name"], first["kind"], first["params"]) == ("fit 1", "job", "alpha=0.2 n_estimators=200")
    assert first["data"] == "X_train 0123456789ab" and first["inputs"] == ("X_train",)  # outputs left out
    assert first["metrics.f1"] == pytest.approx(0.7) and first[f"metrics.{naming.SYSTEM_WALL}"] == 1.5
    assert first["start_time"] > 1_600_000_000_000  # ms since the epoch, as MLflow keeps it


def test_refresh_reads_new_runs_and_new_values_only(client, tracking_uri):
    ids = make_runs(client)
    day_ago = int(time.time() * 1000) - 86_400_000
    with sqlite3.connect(tracking_uri[len("sqlite:///"):]) as db:  # fit0 ran yesterday: outside any slack
        db.execute("UPDATE runs SET start_time = ?, end_time = ? WHERE run_uuid = ?", (day_ago, day_ago + 1, ids["fit0"]))
        db.execute("UPDATE latest_metrics SET timestamp = ? WHERE run_uuid = ?", (day_ago, ids["fit0"]))
    store = Store()
    store.runs("churn")
    cache = locations.runs_cache_path(tracking_uri, client.get_experiment_by_name("churn").experiment_id)
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    # Mark an unchanged finished run in the cache: a full read would lose the mark.
    state = json.loads(cache.read_text())
    for row in state["runs"]:
        if row[0] == ids["fit0"]:
            row[8]["marker"] = "from the cache"
    cache.write_text(json.dumps(state))
    new = client.create_run(client.get_experiment_by_name("churn").experiment_id, run_name="new")
    client.log_metric(new.info.run_id, "f1", 0.42)
    client.log_metric(ids["running"], "f1", 0.77)
    client.delete_run(ids["fit2"])

    runs = {r.run_id: r for r in store.runs("churn")}

    assert runs[new.info.run_id].metrics == {"f1": 0.42}
    assert runs[ids["running"]].metrics["f1"] == 0.77
    assert ids["fit2"] not in runs
    assert runs[ids["fit0"]].params.get("marker") == "from the cache"  # not read again
    assert "marker" not in {r.run_id: r for r in store.runs("churn", full=True)}[ids["fit0"]].params
    same_frame(store.runs_frame("churn", full=True), search_runs(tracking_uri, "churn"))


def test_unknown_experiment_names_the_closest(client):
    make_runs(client)

    with pytest.raises(NoExperiment) as info:
        Store().experiment("chrun")

    assert str(info.value) == "no experiment named 'chrun'. Did you mean 'churn'? Experiments here: Default, churn, other"


def test_a_missing_store_is_an_error_and_stays_missing(tmp_path):
    missing = tmp_path / "elsewhere" / "mlflow.db"

    with pytest.raises(ReadError, match=f"no MLflow store at {missing}: set MLFLOW_TRACKING_URI"):
        Store(f"sqlite:///{missing}")
    assert not missing.parent.exists()


def test_champions_profiles_and_artifacts_on_sqlite(client):
    ids = make_runs(client)
    client.log_text(ids["fit1"], '{"rows": 3}', naming.artifact_profile("X_train"))
    client.create_registered_model("churn-model")
    version = client.create_model_version("churn-model", f"runs:/{ids['fit1']}/model", run_id=ids["fit1"])
    client.set_registered_model_alias("churn-model", "champion", version.version)
    store = Store()

    assert store.champions([ids["fit0"], ids["fit1"]]) == {ids["fit1"]: "champion: churn-model v1"}
    assert store.alias_holder("churn-model", "champion").run_id == ids["fit1"]
    assert store.profile_names(ids["fit1"]) == ["X_train"] and store.profile_names(ids["fit0"]) == []
    assert store.read_artifact_text(ids["fit1"], naming.artifact_profile("X_train")) == '{"rows": 3}'
    assert store.get_run(ids["fit1"]).inputs[0].digest == DIGEST
    with pytest.raises(ReadError, match="no run nope at sqlite:///"):
        store.get_run("nope")


def test_an_unknown_schema_reads_through_mlflow_in_a_helper_process(client, tracking_uri):
    make_runs(client)
    path = Path(tracking_uri[len("sqlite:///"):])
    with sqlite3.connect(path) as db:  # a column this package does not know how to read: not SQL then
        db.execute("UPDATE experiments SET workspace = 'team-b' WHERE name = 'other'")
    from mlops_magics.store_read.sqlite_source import SchemaSurprise, SqliteSource

    with pytest.raises(SchemaSurprise, match="several workspaces"):
        SqliteSource(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE experiments SET workspace = 'default' WHERE name = 'other'")
        db.execute("CREATE TABLE t (x)")  # harmless, then a revision the installed mlflow does not know
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    expected = search_runs(tracking_uri, "churn")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    with pytest.raises(ReadError, match="MLflow could not read sqlite:///.*ffffffffffff"):
        Store().runs_frame("churn")  # the helper process's mlflow says what is wrong
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    from mlops_magics.store_read.process_source import ProcessSource

    found = ProcessSource(tracking_uri).read_runs(client.get_experiment_by_name("churn").experiment_id)
    from mlops_magics.store_read.frames import search_runs_frame

    same_frame(search_runs_frame(found), expected)


def test_rest_reads_give_the_same_frame(client, tracking_uri, tmp_path):
    from servers import MlflowServer

    ids = make_runs(client)
    server = MlflowServer(tracking_uri, tmp_path).start()
    try:
        store = Store(server.uri)
        same_frame(store.runs_frame("churn"), search_runs(tracking_uri, "churn"))
        with pytest.raises(NoExperiment, match="Did you mean 'churn'"):
            store.experiment("chrun")
        from mlflow import MlflowClient

        remote = MlflowClient(tracking_uri=server.uri)
        new = remote.create_run(client.get_experiment_by_name("churn").experiment_id, run_name="over rest")
        remote.log_metric(new.info.run_id, "f1", 0.31)
        remote.log_text(new.info.run_id, '{"rows": 5}', naming.artifact_profile("X_train"))
        remote.log_metric(ids["running"], "f1", 0.88)

        runs = {r.run_id: r for r in store.runs("churn")}  # incremental over REST

        assert runs[new.info.run_id].metrics == {"f1": 0.31}
        assert runs[ids["running"]].metrics["f1"] == 0.88
        assert store.profile_names(new.info.run_id) == ["X_train"]
        assert store.read_artifact_text(new.info.run_id, naming.artifact_profile("X_train")) == '{"rows": 5}'
        same_frame(store.runs_frame("churn"), search_runs(tracking_uri, "churn"))
    finally:
        server.stop()
    with pytest.raises(ReadError, match=f"cannot reach MLflow at {server.uri}: is the server running"):
        Store(server.uri).runs_frame("churn")


FRESH = """
import sys
from IPython.testing.globalipapp import start_ipython
from mlops_magics.store_read import Store
store = Store()
frame = store.history_frame("churn")
assert len(frame) == 4, frame
store.runs_frame("churn"); store.champions(frame["run_id"]); store.profile_names(frame["run_id"][0])
assert "mlflow" not in sys.modules, "store_read imported mlflow"
ip = start_ipython()
ip.run_line_magic("load_ext", "mlops_magics")
ip.run_line_magic("history", "--experiment churn --metric f1")
from mlops_magics.widgets import HistoryWidget
w = HistoryWidget("churn", "f1")
assert len(w.runs) == 4 and w.runs["metrics.f1"].notna().sum() == 3, w.runs
w.refresh()
bad = sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))
print("MLFLOW-MODULES", bad)
"""


def test_history_in_a_fresh_process_never_imports_mlflow(client, tmp_path):
    make_runs(client)

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FRESH)], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "IPYTHONDIR": str(tmp_path / ".ipython")}, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "MLFLOW-MODULES []" in done.stdout, done.stdout[-2000:]
