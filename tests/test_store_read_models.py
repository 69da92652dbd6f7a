"""``store_read``'s reads for ``promote``: a run's logged models, the versions registered from a
run, a version's download URI. The SQLite store (SQL), MLflow's client in a helper process and a
real ``mlflow server`` (REST) must give the same answers as MLflow's own client, deleted models
and versions left out as MLflow leaves them out.
"""

from __future__ import annotations

import pytest

from mlops_magics.store_read import LoggedModel, NoRun, Store


def make_models(client) -> dict:
    """A run with two logged models named ``model`` (the newer wins), one deleted, one of another
    name; a registered model with two versions from the run (one deleted) and one from elsewhere."""
    exp = client.create_experiment("models")
    run = client.create_run(exp).info.run_id
    other = client.create_run(exp).info.run_id
    old = client.create_logged_model(exp, name="model", source_run_id=run)
    new = client.create_logged_model(exp, name="model", source_run_id=run)
    gone = client.create_logged_model(exp, name="model", source_run_id=run)
    client.delete_logged_model(gone.model_id)
    client.create_logged_model(exp, name="scaler", source_run_id=run)
    client.create_logged_model(exp, name="model", source_run_id=other)
    client.create_registered_model("it's")  # a quote in the name: the filters must escape it
    first = client.create_model_version("it's", f"runs:/{run}/model", run_id=run)
    deleted = client.create_model_version("it's", f"runs:/{run}/other", run_id=run)
    client.delete_model_version("it's", deleted.version)
    elsewhere = client.create_model_version("it's", f"runs:/{other}/model", run_id=other)
    return {"run": run, "old": old, "new": new, "first": first, "elsewhere": elsewhere}


def check(store: Store, client, made: dict) -> None:
    run = store.get_run(made["run"])
    found = store.logged_model(run, "model")
    assert isinstance(found, LoggedModel) and found.model_id == made["new"].model_id != made["old"].model_id
    assert found.artifact_location == made["new"].artifact_location
    assert store.logged_model(run, "scaler").name == "scaler"
    assert store.logged_model(run, "nothing") is None

    versions = store.model_versions("it's", made["run"])
    assert [(v.version, v.run_id, v.source) for v in versions] == [("1", made["run"], f"runs:/{made['run']}/model")]
    assert store.model_versions("nobody", made["run"]) == []
    for v in ("1", "3"):
        assert store.model_version_uri("it's", v) == client.get_model_version_download_uri("it's", v)
    assert store.model_version_uri("it's", "2") is None  # deleted
    with pytest.raises(NoRun, match="no run nope at"):
        store.get_run("nope")


def test_sqlite_and_helper_process_read_models_as_mlflow_does(client, tracking_uri):
    made = make_models(client)
    check(Store(tracking_uri), client, made)

    from mlops_magics.store_read.process_source import ProcessSource

    src = ProcessSource(tracking_uri)  # the path of a store read no other way
    run = Store(tracking_uri).get_run(made["run"])
    ids = {m.model_id for m in src.logged_models(run.run_id, run.experiment_id) if m.name == "model"}
    assert ids == {made["old"].model_id, made["new"].model_id}
    assert [v.source for v in src.model_versions("it's", made["run"])] == [f"runs:/{made['run']}/model"]
    assert src.model_version_uri("it's", "1") == client.get_model_version_download_uri("it's", "1")
    assert src.model_version_uri("it's", "2") is None


def test_rest_reads_models_as_mlflow_does(client, tracking_uri, tmp_path):
    from servers import MlflowServer

    made = make_models(client)
    server = MlflowServer(tracking_uri, tmp_path).start()
    try:
        check(Store(server.uri), client, made)
    finally:
        server.stop()
