"""Team mode for real: an `mlflow server` with a PostgreSQL backend store and MLflow's basic-auth app."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import cell_runs, last_bundle, run, skip_or_fail
from servers import MlflowServer, Postgres, postgres_missing

ADMIN, PASSWORD = "admin", "Team-mode-S3cret-pass!"


@pytest.fixture
def team_server(tmp_path, monkeypatch):
    missing = postgres_missing()
    if missing:
        skip_or_fail(missing)
    pg = Postgres().start()
    auth = tmp_path / "auth.ini"
    auth.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{tmp_path}/basic_auth.db\n"
        f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    server = MlflowServer(pg.uri, tmp_path, app="basic-auth", env={"MLFLOW_AUTH_CONFIG_PATH": str(auth),
                                                                      "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key"})
    try:
        server.start(timeout=180)
        yield server
    finally:
        server.stop()
        pg.stop()


def test_tracked_cells_reach_a_postgres_backed_server_with_basic_auth(team_server, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="mlops_magics")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    from conftest import _Publisher  # noqa: F401  (same fixtures as the other shell tests)
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    ip = InteractiveShell(config=cfg, display_pub_class=CapturingDisplayPublisher)
    ip.run_line_magic("load_ext", "mlops_magics")
    try:
        ip.user_ns["frame"] = __import__("pandas").DataFrame({"x": range(100)})
        for c in (0.1, 1.0):
            assert run(ip, f"%%track --experiment team\nC = {c}\nrows = len(frame)\n"
                           "import mlops_magics as mm\nfor s in range(20):\n    mm.log_metric('loss', 1 / (s + 1))").success
        run(ip, "%track flush --timeout 120")
        assert "all records are in MLflow" in last_bundle(ip)["text/plain"]
        from mlflow import MlflowClient

        client = MlflowClient(team_server.uri)
        runs = cell_runs(client, "team")
        assert [r.data.params["C"] for r in runs] == ["0.1", "1.0"]
        assert all(r.data.metrics["rows"] == 100 for r in runs)
        assert len(client.get_metric_history(runs[0].info.run_id, "loss")) == 20
        assert [i.dataset.name for i in runs[0].inputs.dataset_inputs] == ["frame"]
        assert client.list_artifacts(runs[0].info.run_id, "mlops")  # proxied artifacts, authenticated
        shown = json.dumps(ip.display_pub.outputs)
    finally:
        ip.run_line_magic("unload_ext", "mlops_magics")
    journal = b"".join(p.read_bytes() for p in (tmp_path / ".mlops_magics").glob("journal.db*"))
    assert PASSWORD.encode() not in journal
    assert PASSWORD not in shown and PASSWORD not in caplog.text


def test_wrong_password_keeps_records_waiting(team_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell(display_pub_class=CapturingDisplayPublisher)
    ip.run_line_magic("load_ext", "mlops_magics")
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 5")
    try:
        assert run(ip, "%%track\nC = 1.0").success
        run(ip, "%track flush --timeout 5")
        assert "still pending" in last_bundle(ip)["text/plain"]
    finally:
        ip.run_line_magic("unload_ext", "mlops_magics")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    from mlops_magics.journal.sync import sync

    assert sync(timeout=120) == {team_server.uri: 0}
