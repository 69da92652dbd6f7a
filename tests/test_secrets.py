"""Secrets by name and by value, everywhere the package writes; private files under the journal home."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from pathlib import Path

import pytest
from conftest import cell_runs, invoke, last_bundle, one_line_error, run

from mlops_magics import locations
from mlops_magics.secrets import MaskedStream, MaskFilter, is_secret, mask_mapping, mask_source, mask_text

NOTEBOOKS = Path(__file__).parent / "notebooks"
SK = "sk-abcdefghijklmnopqrstuvwx"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PLANTED = ("hunter2", SK, AWS_ID, AWS_SECRET)


@pytest.mark.parametrize("name", ["api_token", "db_password", "secret_key", "auth_header", "AWS_SECRET_ACCESS_KEY",
                                  "AWS_ACCESS_KEY_ID", "apiKey", "accessToken", "APIKey", "x-api-key", "HF_TOKEN",
                                  "Authorization", "password1", "db_pass", "clientSecret", "dbpassword", "cookies"])
def test_secret_names_by_word(name):
    assert is_secret(name)


# max_tokens: a count of tokens is a hyperparameter (LLM generation length), so it is kept
@pytest.mark.parametrize("name", ["tokenizer", "passenger_count", "bypass_cache", "author", "max_tokens",
                                  "num_tokens", "token_count", "max_new_tokens", "sort_key", "primary_key",
                                  "pass_rate", "keys", "session", "compass", "Forest.random_state", ""])
def test_not_secret_names(name):
    assert not is_secret(name)


@pytest.mark.parametrize("text, masked", [
    ("postgresql://bob:hunter2@db/x", "postgresql://bob:***@db/x"),
    ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
    ("mysql://u:p@ss@h/x", "mysql://u:***@h/x"),
    ("Authorization: Bearer " + SK, "Authorization: Bearer ***"),
    ("auth Basic dXNlcjpwYXNz; Basic Statistics", "auth Basic ***; Basic Statistics"),
    (f"ids {AWS_ID} and ASIAY34FZKBOKMUTVV7A", "ids *** and ***"),
    ("sk-proj-Abc123def456ghi789jkl0", "***"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123 github_pat_11ABCDEFG0123456789_abcdefghij", "*** ***"),
    ("xoxb-1234-5678-abcdefgh AIzaSyA-abcdefghijklmnopqrstuvwxyz12345", "*** ***"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "***"),
    ("http://h/x?token=abc123&page=2", "http://h/x?token=***&page=2"),
    ("{'password': 'hunter2', 'user': 'me'}", "{'password': '***', 'user': 'me'}"),
    (f'os.environ["AWS_SECRET_ACCESS_KEY"] = "{AWS_SECRET}"', 'os.environ["AWS_SECRET_ACCESS_KEY"] = "***"'),
    ("tokenizer=bert max_tokens=5 passenger_count: 3", "tokenizer=bert max_tokens=5 passenger_count: 3"),
    ("token = get_token()", "token = get_token()"),
    ("dataset digest 3f2a9b1c44d0", "dataset digest 3f2a9b1c44d0"),
])
def test_values_masked_by_shape(text, masked):
    assert mask_text(text) == masked


def test_params_masked_by_name_and_inside_values():
    params = {"api_token": "abc", "headers": repr({"Authorization": "Bearer " + SK}),
              "db_url": "postgresql://bob:hunter2@db/x", "tokenizer": "bert", "passenger_count": "3"}
    assert mask_mapping(params) == {"api_token": "***", "headers": "{'Authorization': 'Bearer ***'}",
                                    "db_url": "postgresql://bob:***@db/x", "tokenizer": "bert",
                                    "passenger_count": "3"}


def test_source_masks_the_secret_literal_only():
    raw = (f'%time x = 1\nimport os\nos.environ["AWS_SECRET_ACCESS_KEY"] = "{AWS_SECRET}"\n'
           'os.environ.setdefault("API_TOKEN", "abc")\nos.putenv("DB_PASSWORD", "pw-123456")\n'
           'tokenizer = "bert"\nmodel = "bert"\nlabel = "abc"\nuser, password = "me", "hunter2"\n'
           f'headers = {{"Authorization": "Bearer {SK}"}}\nurl = "postgresql://bob:hunter2@db/x"\n')
    python = raw.replace("%time x = 1", "get_ipython().run_line_magic('time', 'x = 1')")
    masked = mask_source(raw, python)
    for secret in (*PLANTED, "pw-123456"):
        assert secret not in masked
    assert 'os.environ.setdefault("API_TOKEN", "***")' in masked
    assert 'label = "abc"' in masked  # the same short text elsewhere is not the secret
    assert 'tokenizer = "bert"\nmodel = "bert"' in masked and 'user, password = "me", "***"' in masked
    assert "%time x = 1" in masked and 'url = "postgresql://bob:***@db/x"' in masked


@pytest.mark.parametrize("uri, shown, key", [
    ("postgresql://bob:hunter2@db/x", "postgresql://bob:***@db/x", "postgresql://db/x"),
    ("https://tok3n@mlflow.example.com", "https://***@mlflow.example.com", "https://mlflow.example.com"),
    ("https://h/api?token=abc&x=1", "https://h/api?token=***&x=1", "https://h/api?token=***&x=1"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:////tmp/a@b/mlflow.db", "sqlite:////tmp/a@b/mlflow.db", "sqlite:////tmp/a@b/mlflow.db"),
])
def test_display_uri_never_shows_credentials(uri, shown, key):
    assert locations.display_uri(uri) == shown
    assert locations.uri_without_credentials(uri) == key


def test_log_filter_and_stream_mask_every_line():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskFilter())
    logger = logging.getLogger("test_secrets.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("MLflow at %s unreachable", "http://bob:hunter2@h")
        try:
            raise ConnectionError(f"refused: Bearer {SK}")
        except ConnectionError:
            logger.exception("delivery failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "http://bob:***@h unreachable" in text and "Bearer ***" in text
    assert "hunter2" not in text and SK not in text
    raw = io.StringIO()
    MaskedStream(raw).write(f"mlflow: key {AWS_ID}\n")
    assert raw.getvalue() == "mlflow: key ***\n"


def _modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [root, *root.rglob("*")]}


def test_private_helpers_tighten_what_existed(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "old.db").write_text("x")
    os.chmod(home, 0o755)
    os.chmod(home / "old.db", 0o644)
    (home / "old.db-wal").write_text("")
    os.chmod(home / "old.db-wal", 0o644)
    locations.private_file(home / "old.db")
    locations.private_file(home / "sub" / "new.db")
    assert _modes(home) == {".": "0o700", "old.db": "0o600", "old.db-wal": "0o600", "sub": "0o700",
                            "sub/new.db": "0o600"}
    locations.private_dir(home / "a" / "b")  # every folder it makes, not only the last
    (home / "a" / "b" / "model.pkl").write_bytes(b"x")
    os.chmod(home / "a" / "b" / "model.pkl", 0o644)
    locations.private_tree(home / "a")
    assert {p: m for p, m in _modes(home).items() if p.startswith("a")} == {
        "a": "0o700", "a/b": "0o700", "a/b/model.pkl": "0o600"}


def test_tracked_cell_writes_no_secret_anywhere(ip, client, tmp_path, monkeypatch):
    for var in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        monkeypatch.setenv(var, "placeholder")  # the cell sets them in this process: restored after
    home = tmp_path / ".mlops_magics"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)  # a home that existed, open to all: tightened
    cell = ("%%track --tag db=postgresql://bob:hunter2@db/x\nimport os\n"
            'db_url = "postgresql://bob:hunter2@db/x"\n'
            f'headers = {{"Authorization": "Bearer {SK}"}}\n'
            f'os.environ["AWS_SECRET_ACCESS_KEY"] = "{AWS_SECRET}"\n'
            f'os.environ.setdefault("AWS_ACCESS_KEY_ID", "{AWS_ID}")\n'
            'tokenizer = "bert"\npassenger_count = 3\nbypass_cache = True\nscore = 0.5\n')
    assert run(ip, cell).success
    shown = json.dumps(last_bundle(ip))
    failing = "%%track\nraise ConnectionError('cannot reach postgresql://bob:hunter2@db/x')"
    assert not run(ip, failing).success
    shown += json.dumps(last_bundle(ip))
    import mlops_magics as mm

    assert mm.flush(180) == 0  # a loaded machine: the delivery process's start may take a while
    ok, failed = cell_runs(client)
    assert ok.data.params["tokenizer"] == "bert" and ok.data.params["passenger_count"] == "3"
    assert ok.data.params["bypass_cache"] == "True"
    assert ok.data.params["db_url"] == "postgresql://bob:***@db/x"
    assert ok.data.params["headers"] == "{'Authorization': 'Bearer ***'}"
    assert ok.data.tags["db"] == "postgresql://bob:***@db/x"
    assert failed.data.tags["mlops.error"] == "ConnectionError: cannot reach postgresql://bob:***@db/x"
    source = Path(client.download_artifacts(ok.info.run_id, "mlops/cell.py", str(tmp_path / "dl"))).read_text()
    assert 'tokenizer = "bert"' in source and 'os.environ["AWS_SECRET_ACCESS_KEY"] = "***"' in source
    for secret in PLANTED:
        assert secret not in shown
    leaks = [(str(p.relative_to(tmp_path)), s) for p in tmp_path.rglob("*") if p.is_file()
             for s in PLANTED if s.encode() in p.read_bytes()]
    assert leaks == []
    modes = _modes(home)
    assert modes and all(m == ("0o700" if (home / p).is_dir() else "0o600") for p, m in modes.items()), modes


def _notebook_with_token(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('token = "none"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("token_length = len(token)")]
    nbformat.write(nb, path)
    return path


def test_schedule_refuses_a_secret_value_and_reads_env_references(tmp_path, monkeypatch):
    from mlops_magics.schedules.manage import resolved_parameters
    from mlops_magics.schedules.store import ScheduleStore

    nb = _notebook_with_token(tmp_path / "nb.ipynb")
    line = one_line_error(invoke("schedule", "add", "s", str(nb), "--cron", "@daily", "-p", "token", "s3cr3t-x"))
    assert "secrets are not stored" in line and "env:TOKEN" in line and "s3cr3t-x" not in line
    assert invoke("schedule", "add", "s", str(nb), "--cron", "@daily", "-p", "token", "env:TOKEN").exit_code == 0
    store = ScheduleStore()
    (s,) = store.all()
    monkeypatch.setenv("TOKEN", "s3cr3t-x")
    assert resolved_parameters(s) == [("token", "s3cr3t-x")]
    monkeypatch.delenv("TOKEN")
    with pytest.raises(Exception, match=r"\$TOKEN is not set"):
        resolved_parameters(s)
    store.close()
    db = locations.home() / "schedules.db"
    assert all(b"s3cr3t-x" not in p.read_bytes() for p in db.parent.glob("schedules.db*"))
    assert _modes(db.parent)["schedules.db"] == "0o600" and _modes(db.parent)["."] == "0o700"


def test_delivery_log_is_masked_for_every_writer(tmp_path):
    """deliver.log is the delivery process's stderr: our logs, mlflow's own handler, warnings
    and an uncaught traceback all go through the mask."""
    import subprocess
    import sys

    code = ("import logging, warnings, mlflow\n"
            "from mlops_magics.journal.deliverd import _log_masked\n"
            "_log_masked()\n"
            "logging.getLogger('mlops_magics').info('MLflow at %s unreachable', 'http://bob:hunter2@h:5000')\n"
            f"logging.getLogger('mlflow.tracking').warning('retrying with Bearer {SK}')\n"
            f"warnings.warn('key {AWS_ID} is old')\n"
            f"raise RuntimeError('gave up on postgresql://bob:hunter2@db/x, aws_secret_access_key={AWS_SECRET}')\n")
    log = tmp_path / "deliver.log"
    with open(log, "wb") as fd:
        proc = subprocess.run([sys.executable, "-c", code], stderr=fd, stdout=fd, timeout=120)
    text = log.read_text()
    assert proc.returncode != 0 and "RuntimeError: gave up on postgresql://bob:***@db/x" in text, text
    assert "http://bob:***@h:5000 unreachable" in text and "Bearer ***" in text and "key *** is old" in text
    assert not [s for s in PLANTED if s in text], text
