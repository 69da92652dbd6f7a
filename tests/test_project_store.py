"""One store per project, honest git state, stable run names, top-level await (issue 16).

A project is a real git repository in tmp_path with notebooks in ``notebooks/`` and
``notebooks/deep/`` and a script at its root. Without ``MLFLOW_TRACKING_URI`` and
``MLOPS_MAGICS_HOME`` a kernel in ``notebooks/deep``, a job started from ``notebooks/`` and
the script all record into ``<root>/mlflow.db`` through ``<root>/.mlops_magics/``.
"""

from __future__ import annotations


import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import cell_runs, invoke, last_bundle, run
from mlops_magics import locations, naming
from mlops_magics.tracking.lineage import code_tags, git_state

VENV_BIN = Path(sys.executable).parent


def flush(ip):
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def git_repo(path: Path) -> Path:
    """A repository with one commit, and the project's folders (nothing of them committed)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("a project\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "first")
    (path / "notebooks" / "deep").mkdir(parents=True)
    return path


@pytest.fixture
def no_location_env(monkeypatch, tmp_path):
    """The project rule alone: no store or journal from the environment (conftest sets both),
    and no mlflow.db in tmp_path itself (conftest copies one there)."""
    monkeypatch.delenv(locations.TRACKING_URI_ENV, raising=False)
    monkeypatch.delenv(locations.HOME_ENV, raising=False)
    (tmp_path / "mlflow.db").unlink()


def notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    cells = []
    if parameters is not None:
        cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                      "language": "python"}})
    nbformat.write(nb, path)
    return path


def kernel_env(tmp_path: Path, monkeypatch) -> None:
    """Kernels see only temporary Jupyter folders; the extension comes from the installed startup file."""
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime")):
        monkeypatch.setenv(var, str(tmp_path / ".jupyter" / sub))
    monkeypatch.delenv("MLOPS_MAGICS_NO_AUTOLOAD", raising=False)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def execute(path: Path, cwd: Path):
    """Run the notebook at ``path`` in a fresh kernel working in ``cwd`` (as JupyterLab would)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=60,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed ``mlops-magics`` command, in its own process, from ``cwd``."""
    return subprocess.run([str(VENV_BIN / "mlops-magics"), *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def text_of(cell) -> str:
    out = []
    for o in cell.outputs:
        out.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "".join(out)


# -- where the store and the journal are ---------------------------------------------------

def test_git_root_is_the_project_root_from_any_folder(tmp_path, monkeypatch, no_location_env):
    repo = git_repo(tmp_path / "proj")
    for folder in (repo, repo / "notebooks", repo / "notebooks" / "deep"):
        monkeypatch.chdir(folder)
        store, home = locations.store_choice(), locations.home_choice()
        assert store.value == f"sqlite:///{repo}/mlflow.db"
        assert locations.home() == repo / ".mlops_magics"
        assert locations.journal_path() == repo / ".mlops_magics" / "journal.db"
        assert store.reason == home.reason == f"project root {repo}: the root of the git work tree"
    # tmp_path holds an mlflow.db of its own above the repository: another project's, not taken
    (tmp_path / "mlflow.db").write_bytes(b"")
    assert locations.project().root == repo


def test_a_folder_above_holding_a_store_wins_over_the_git_root(tmp_path, monkeypatch, no_location_env):
    repo = git_repo(tmp_path / "proj")
    (repo / "notebooks" / "mlflow.db").write_bytes(b"")
    monkeypatch.chdir(repo / "notebooks" / "deep")
    store = locations.store_choice()
    assert store.value == f"sqlite:///{repo}/notebooks/mlflow.db"
    assert store.reason == f"project root {repo / 'notebooks'}: the nearest folder upwards holding mlflow.db"
    assert locations.home() == repo / "notebooks" / ".mlops_magics"
    # a journal folder made later, nearer: the cached answer sees it (the folder's mtime changed)
    (repo / "notebooks" / "deep" / ".mlops_magics").mkdir()
    assert locations.project().root == repo / "notebooks" / "deep"
    assert locations.project().reason == "it holds .mlops_magics/"
    monkeypatch.chdir(repo)  # the root itself has no marker: the git root, as before
    assert locations.project().root == repo


def test_without_git_or_markers_the_working_folder(tmp_path, monkeypatch, no_location_env):
    (tmp_path / "plain" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "plain" / "sub")
    p = locations.project()
    assert p.root == tmp_path / "plain" / "sub"
    assert p.reason.startswith("the working folder: no .mlops_magics/, mlflow.db or git work tree")


def test_environment_variables_still_win(tmp_path, monkeypatch, no_location_env):
    repo = git_repo(tmp_path / "proj")
    monkeypatch.chdir(repo / "notebooks" / "deep")
    monkeypatch.setenv(locations.TRACKING_URI_ENV, f"sqlite:///{tmp_path}/elsewhere.db")
    monkeypatch.setenv(locations.HOME_ENV, str(tmp_path / "journal-here"))
    assert locations.store_choice() == locations.Choice(f"sqlite:///{tmp_path}/elsewhere.db",
                                                        "$MLFLOW_TRACKING_URI is set")
    assert locations.home_choice() == locations.Choice(str(tmp_path / "journal-here"), "$MLOPS_MAGICS_HOME is set")
    assert locations.store_choice("http://127.0.0.1:9").value == "http://127.0.0.1:9"  # an explicit URI first
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "chosen by: $MLFLOW_TRACKING_URI is set" in result.output
    assert "chosen by: $MLOPS_MAGICS_HOME is set" in result.output


def test_track_status_says_what_was_chosen_and_why(ip, tmp_path, monkeypatch, no_location_env):
    repo = git_repo(tmp_path / "proj")
    monkeypatch.chdir(repo / "notebooks" / "deep")
    assert run(ip, "%%track\nx = 1").success
    run(ip, "%track status")
    text = last_bundle(ip)["text/plain"]
    assert f"sqlite:///{repo}/mlflow.db" in text
    assert f"{repo}/.mlops_magics/journal.db" in text
    # the journal made by the cell now marks the root too
    why = f"project root {repo}: the nearest folder upwards holding .mlops_magics/, the root of the git work tree too"
    assert text.count(why) == 2, text
    run(ip, "%track flush")
    assert [p.relative_to(repo) for p in repo.rglob("mlflow.db")] == [Path("mlflow.db")]


def test_sync_from_the_root_delivers_what_waits_from_a_subfolder(tmp_path, monkeypatch, no_location_env):
    """What the issue saw: records waiting under notebooks/ while sync at the root said "nothing"."""
    from mlops_magics.journal import records
    from mlops_magics.journal.store import Journal, new_owner

    repo = git_repo(tmp_path / "proj")
    monkeypatch.chdir(repo / "notebooks" / "deep")
    journal = Journal(locations.journal_path())  # as a kernel working here opens it
    key, now = records.new_key(), records.now_ms()
    journal.append(locations.tracking_uri(), [
        records.start(key, experiment="Default", name="waiting", start_ms=now, tags={naming.KIND: naming.KIND_CELL}),
        records.log(key, params={"n": "3"}),
        records.end(key, status="FINISHED", end_ms=now + 1)], new_owner())
    journal.close()  # nobody delivers: the records wait in the journal
    synced = cli("sync", cwd=repo)
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip() == f"sqlite:///{repo}/mlflow.db: all records delivered"
    from mlflow import MlflowClient

    (cell,) = cell_runs(MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db"))
    assert (cell.info.run_name, cell.data.params, cell.info.status) == ("waiting", {"n": "3"}, "FINISHED")
    assert [p.relative_to(repo) for p in repo.rglob("mlflow.db")] == [Path("mlflow.db")]


@pytest.mark.kernel
@pytest.mark.slow
def test_kernel_job_and_script_of_a_project_share_one_store(tmp_path, monkeypatch, no_location_env):
    kernel_env(tmp_path, monkeypatch)
    repo = git_repo(tmp_path / "proj")
    deep = notebook(repo / "notebooks" / "deep" / "explore.ipynb",
                    "%%track\nn_estimators = 100\nscore = n_estimators / 1000",
                    "%track status", "import mlops_magics as mm\nmm.flush(60)")
    notebook(repo / "notebooks" / "train.ipynb", "%%track\nf1 = n / 10", parameters="n = 1")
    (repo / "train.py").write_text(
        "import mlops_magics as mm\n"
        "result = mm.run_notebook('notebooks/train.ipynb', {'n': 5}, progress=False)\n"
        "print(result.status)\n")
    monkeypatch.setenv("MLOPS_MAGICS_NOTEBOOK", str(deep))  # what JupyterLab tells a kernel

    executed = execute(deep, cwd=deep.parent)  # a kernel working in notebooks/deep
    status = text_of(executed.cells[1])
    assert f"sqlite:///{repo}/mlflow.db" in status and f"{repo}/.mlops_magics/journal.db" in status
    assert f"project root {repo}: the nearest folder upwards holding .mlops_magics/, the root of the git work tree too" \
        in status, status
    monkeypatch.delenv("MLOPS_MAGICS_NOTEBOOK")

    job = cli("run", "train.ipynb", "-p", "n", "3", cwd=repo / "notebooks")  # a job from notebooks/
    assert job.returncode == 0, job.stderr
    script = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert script.returncode == 0 and "FINISHED" in script.stdout, script.stderr

    synced = cli("sync", cwd=repo)
    assert synced.returncode == 0, synced.stderr
    assert f"sqlite:///{repo}/mlflow.db" in synced.stdout or f"{repo}/.mlops_magics/journal.db" in synced.stdout
    statuses = [cli("status", cwd=folder) for folder in (repo, repo / "notebooks" / "deep")]
    assert all(s.returncode == 0 for s in statuses), [s.stderr for s in statuses]
    for s, why in zip(statuses, ("it holds", "the nearest folder upwards holding")):
        chosen = f"  chosen by: project root {repo}: {why} .mlops_magics/, the root of the git work tree too"
        assert s.stdout.splitlines()[:4] == [f"tracking URI: sqlite:///{repo}/mlflow.db", chosen,
                                             f"journal: {repo}/.mlops_magics/journal.db", chosen], s.stdout

    assert [p.relative_to(repo) for p in repo.rglob("mlflow.db")] == [Path("mlflow.db")]
    assert [p.relative_to(repo) for p in repo.rglob(".mlops_magics")] == [Path(".mlops_magics")]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    (cell,) = cell_runs(client)
    assert cell.data.params["n_estimators"] == "100" and cell.info.status == "FINISHED"
    assert cell.data.tags[naming.GIT_NOTEBOOK] == "untracked" and cell.data.tags[naming.GIT_DIRTY] == "true"
    jobs = client.search_runs([cell.info.experiment_id], f"tags.`{naming.KIND}` = 'job'")
    assert sorted(j.data.params["n"] for j in jobs) == ["3", "5"]
    assert {j.info.status for j in jobs} == {"FINISHED"}
    assert sorted(j.data.metrics["f1"] for j in jobs) == [0.3, 0.5]


# -- honest git state -------------------------------------------------------------------------

def test_git_state_of_an_untracked_a_modified_and_a_clean_notebook(tmp_path):
    repo = git_repo(tmp_path / "proj")
    nb = notebook(repo / "notebooks" / "a.ipynb", "x = 1")
    state = git_state(nb)
    assert (state.notebook, state.dirty) == ("untracked", True)  # git has never seen it
    assert code_tags(str(nb))[naming.GIT_NOTEBOOK] == "untracked"
    assert code_tags(str(nb))[naming.GIT_DIRTY] == "true"
    git(repo, "add", "notebooks/a.ipynb")
    git(repo, "commit", "-q", "-m", "nb")
    assert code_tags(str(nb))[naming.GIT_NOTEBOOK] == "clean"
    assert code_tags(str(nb))[naming.GIT_DIRTY] == "false"
    (repo / "other.txt").write_text("untracked, but not the notebook")
    assert git_state(nb).dirty is False
    notebook(nb, "x = 2")
    assert (git_state(nb).notebook, git_state(nb).dirty) == ("modified", True)
    git(repo, "add", "notebooks/a.ipynb")  # staged, not committed: still not what the commit holds
    assert git_state(nb).notebook == "modified"
    (repo / ".gitignore").write_text("ignored.ipynb\n")
    ignored = notebook(repo / "ignored.ipynb", "y = 1")
    assert (git_state(ignored).notebook, git_state(ignored).dirty) == ("untracked", True)
    odd = notebook(repo / "notebooks" / "[a]*.ipynb", "z = 1")  # glob characters: the name, literally
    git(repo, "add", "--", ":(literal)notebooks/[a]*.ipynb")
    git(repo, "commit", "-q", "-m", "odd")
    assert git_state(odd).notebook == "clean"


def test_a_tracked_cell_of_an_untracked_notebook_is_dirty(ip, client, tmp_path, monkeypatch):
    repo = git_repo(tmp_path / "proj")
    nb = notebook(repo / "notebooks" / "new.ipynb", "%%track\nlr = 0.1")
    monkeypatch.setenv("MLOPS_MAGICS_NOTEBOOK", str(nb))
    assert run(ip, "%%track\nlr = 0.1").success
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.data.tags[naming.GIT_NOTEBOOK] == "untracked"
    assert cell.data.tags[naming.GIT_DIRTY] == "true"


# -- stable names ---------------------------------------------------------------------------

def test_a_cell_keeps_its_name_when_rerun_with_another_value(ip, client):
    assert run(ip, "%%track\nn_estimators = 100\nscore = n_estimators / 1000").success
    assert run(ip, "x = 0").success  # the execution count moves on
    assert run(ip, "%%track\nn_estimators = 200\nscore = n_estimators / 1000").success
    assert run(ip, "%%track\n# evaluate the forest\nf1 = 0.5").success
    assert run(ip, "%%track\n# evaluate the forest\nf1 = 0.5").success
    flush(ip)
    first, second, other, again = cell_runs(client)
    assert first.data.tags[naming.EXECUTION_COUNT] != second.data.tags[naming.EXECUTION_COUNT]
    assert first.info.run_name == second.info.run_name == "n_estimators = …"
    assert other.info.run_name == again.info.run_name == "evaluate the forest"
    run(ip, "%track runs")
    lines = last_bundle(ip)["text/plain"].splitlines()
    assert lines[1].split()[:6] == ["run", "status", "run", "id", "experiment", "changed"]

    def row(r):
        return next(line for line in lines if r.info.run_id in line)

    assert "n_estimators 100->200" in row(second) and "(first run)" in row(first)
    assert "no change" in row(again) and "(first run)" in row(other)
    assert "n_estimators 100-&gt;200" in last_bundle(ip, "text/html")["text/html"]  # escaped


def test_runs_compare_the_same_frontend_cell_even_when_its_first_line_changed(ip):
    ip.run_cell("%%track\nn_estimators = 100\ndepth = 3", store_history=True, cell_id="forest")
    ip.run_cell("%%track\nmodel_depth = 4\nn_estimators = 100", store_history=True, cell_id="other")
    ip.run_cell("%%track\ntrees = 200\ndepth = 3", store_history=True, cell_id="forest")
    run(ip, "%track runs")
    lines = last_bundle(ip)["text/plain"].splitlines()
    assert lines[3].endswith("n_estimators 100->(none), trees (none)->200"), lines  # depth: unchanged
    assert "(first run)" in lines[4] and "(first run)" in lines[5]


def test_names_carry_the_notebook_and_an_explicit_name_wins(ip, client, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_MAGICS_NOTEBOOK", str(tmp_path / "my_forest.ipynb"))
    assert run(ip, "%%track\nimport math\nmodel_depth = 3").success
    assert run(ip, "%%track\nimport math\nmodel_depth = 4").success
    assert run(ip, "%%track --name fixed\nmodel_depth = 5").success
    flush(ip)
    names = [r.info.run_name for r in cell_runs(client)]
    assert names == ["my_forest: model_depth = …", "my_forest: model_depth = …", "fixed"]


# -- top-level await --------------------------------------------------------------------------

@pytest.mark.kernel
def test_top_level_await_in_a_tracked_cell_works_as_without_the_magic(tmp_path, monkeypatch, client):
    kernel_env(tmp_path, monkeypatch)
    body = ("import asyncio\nawait asyncio.sleep(0)\n"
            "value = await asyncio.sleep(0, result=41) + 1\nvalue")
    nb = notebook(tmp_path / "awaits.ipynb", body, "%%track\n" + body, "import mlops_magics as mm\nmm.flush(60)")
    executed = execute(nb, cwd=tmp_path)
    plain, tracked = executed.cells[0], executed.cells[1]
    results = [[o for o in c.outputs if o.output_type == "execute_result"] for c in (plain, tracked)]
    assert [[o["data"]["text/plain"] for o in r] for r in results] == [["42"], ["42"]]
    assert not [o for o in tracked.outputs if o.output_type == "error"]
    (cell,) = cell_runs(client)
    assert cell.info.status == "FINISHED" and cell.data.metrics["value"] == 42
