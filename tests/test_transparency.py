"""A ``%%track`` cell behaves exactly as the same cell without it: ``;``, ``Out[]``, warnings
shown once, top-level ``await``, traceback frames, execution counts. Each equality is checked
by running the same code untracked and tracked, in-process and in a real kernel."""

from __future__ import annotations

import re
import threading
import warnings

import nbformat
import pytest
from conftest import assert_once_across_reload, cell_runs, last_bundle, run
from IPython.core.error import UsageError

FIT = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
m = LogisticRegression(max_iter=500)
"""
# A library's warning: its registry is the library module's (IPython clears the notebook's own
# before every cell, so a function defined in a cell warns every time, tracked or not).
NOISY_LIB = "import warnings\n\ndef noisy(tag):\n    warnings.warn(f'noisy {tag}', UserWarning)\n"
NOISY = "from noisy_lib import noisy\n"
FAILING = "def inner(v):\n    return 1 / v\n\nrate = 0.5\ninner(0)\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def both(ip, body: str):
    """The results of ``body`` run untracked, then tracked, as notebook cells."""
    return run(ip, body), run(ip, "%%track\n" + body)


def drain(ip) -> None:
    """Wait until the session's background work for the cells so far has run."""
    ip.magics_manager.registry["TrackMagics"].session.defer(lambda: None).result(timeout=60)


def frames(text: str) -> list[str]:
    """A traceback's frame headers, with their line numbers, without the prompt number."""
    text = re.sub(r"<ipython-input-[^>]*>", "<cell>", ANSI.sub("", text))
    heads = re.findall(r"^(?:Cell In\[\d+\], line \d+|File [^\n]*)", text, re.M)
    return [re.sub(r"In\[\d+\]|ipykernel_\d+/\d+", "N", h) for h in heads]


# -- in-process shell ---------------------------------------------------------------
def test_semicolon_hides_the_value_and_the_value_is_the_same(ip):
    for body in ("x = [1]; x;", FIT + "m.fit(X, y);"):
        plain, tracked = both(ip, body)
        assert plain.success and tracked.success, tracked.error_in_exec
        assert plain.result is None and tracked.result is None, body
    plain, tracked = both(ip, "x = [1, 2]\nx")
    assert plain.result == tracked.result == [1, 2]
    assert ip.user_ns["Out"][tracked.execution_count] == [1, 2]


@pytest.fixture
def noisy_lib(tmp_path, monkeypatch):
    (tmp_path / "noisy_lib.py").write_text(NOISY_LIB)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "noisy_lib", raising=False)


def test_a_warning_from_the_same_line_shows_once_in_three_cells(ip, noisy_lib):
    assert run(ip, NOISY).success
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for tag in ("plain", "plain", "plain"):
            assert run(ip, f"noisy('{tag}')").success
        for tag in ("tracked", "tracked", "tracked"):
            code = f"import pandas as pd\nframe = pd.DataFrame({{'a': [1.0, 2.0]}})\nnoisy('{tag}')"
            assert run(ip, "%%track\n" + code).success
            drain(ip)  # git, profiles: whatever runs in the background between cells has run
    shown = [str(w.message) for w in seen if str(w.message).startswith("noisy")]
    assert shown == ["noisy plain", "noisy tracked"]


def test_background_work_never_touches_the_warnings_state(ip, monkeypatch):
    touched: list[str] = []
    real = warnings._filters_mutated  # what catch_warnings, simplefilter, filterwarnings all call

    def recording():
        if threading.current_thread() is not threading.main_thread():
            import traceback

            touched.append(threading.current_thread().name + "\n" + "".join(traceback.format_stack(limit=8)))
        return real()

    monkeypatch.setattr(warnings, "_filters_mutated", recording)
    code = ("import numpy as np, pandas as pd\n"
            "frame = pd.DataFrame({'a': np.r_[np.arange(49.0), np.nan], 'b': ['x', 'y'] * 25, 'i': np.arange(50),\n"
            "                      'd': pd.date_range('2024-01-01', periods=50), 'flag': [True, False] * 25})\n"
            "wide = np.ones((20, 100))\nn = len(frame)")
    assert run(ip, "%%track\n" + code).success
    assert run(ip, "%%track\nm2 = frame.a.mean()").success
    drain(ip)
    run(ip, "%track flush")
    assert touched == [], "\n\n".join(touched)


def test_top_level_await(ip):
    plain, tracked = both(ip, "import asyncio\nawait asyncio.sleep(0)\nwaited = 'yes'\nwaited")
    assert plain.success and tracked.success, tracked.error_in_exec
    assert plain.result == tracked.result == "yes"


def test_traceback_has_the_same_frames(ip, capsys, client):
    import mlops_magics as mm

    capsys.readouterr()
    plain = run(ip, FAILING)
    plain_text = capsys.readouterr().out
    tracked = run(ip, "%%track\n" + FAILING)
    tracked_text = capsys.readouterr().out
    assert isinstance(plain.error_in_exec, ZeroDivisionError) and isinstance(tracked.error_in_exec, ZeroDivisionError)
    assert frames(plain_text) and frames(plain_text) == frames(tracked_text)
    assert "run_cell_magic" not in tracked_text and "skipping hidden" not in tracked_text
    assert "----> 5 inner(0)" in ANSI.sub("", plain_text)
    assert "----> 5 inner(0)" in ANSI.sub("", tracked_text)  # numbered as the same cell without the magic
    assert mm.flush(60) == 0
    (failed,) = cell_runs(client)
    assert failed.info.status == "FAILED" and failed.data.tags["mlops.error"] == "ZeroDivisionError: division by zero"


def test_execution_counts_are_the_same(ip, client):
    counts = []
    for body in ("a = 1", "%%track\nb = 2", "c = 3", "%%track\nd = 4\nd"):
        res = run(ip, body)
        counts.append(res.execution_count)
    assert counts == list(range(counts[0], counts[0] + 4))
    assert ip.execution_count == counts[-1] + 1
    run(ip, "%track flush")
    assert [r.data.tags["mlops.execution_count"] for r in cell_runs(client)] == [str(counts[1]), str(counts[3])]


def test_magics_shell_commands_and_cell_magics_in_the_body(ip):
    res = run(ip, "%%track\n%time t = 1\nlines = !echo hi\nlines[0]")
    assert res.success and res.result == "hi"
    res = run(ip, "%%track\n%%capture captured\nprint('quiet')")
    assert res.success and "quiet" in ip.user_ns["captured"].stdout


def test_nested_and_silent_cells_keep_begin_and_finish_paired(ip, client):
    code = ("inner = get_ipython().run_cell('%%track --name inner\\nk = 7')\n"
            "plain = get_ipython().run_cell('j = 1')\nouter_value = 3\nouter_value")
    plain = run(ip, code.replace("--name inner", "--name inner0"))
    res = run(ip, "%%track --name outer\n" + code)
    assert plain.success and res.success and res.result == plain.result  # (None: IPython's nested run_cell resets it)
    assert ip.run_cell("%%track --name silent\ns = 1", silent=True).success  # runs, untracked: no hooks
    assert run(ip, "%%track --name after\nz = 0.5").success
    run(ip, "%track flush")
    by_name = {r.info.run_name: r for r in cell_runs(client)}
    assert set(by_name) == {"inner0", "inner", "outer", "after"}
    assert by_name["inner"].data.params["k"] == "7" and by_name["after"].data.params["z"] == "0.5"
    assert all(r.info.status == "FINISHED" for r in by_name.values())
    from mlops_magics import _current

    assert _current.active_run() is None


def test_bad_options_stay_one_line_errors_and_help_works(ip):
    res = run(ip, "%%track --parms a\na = 1")
    assert isinstance(res.error_in_exec, UsageError)
    assert "unknown option --parms. Did you mean '--params'?" in str(res.error_in_exec)
    assert "a" not in ip.user_ns  # the cell did not run
    with pytest.raises(UsageError, match="must be one line"):
        ip.run_cell_magic("track", "--name 'two\nlines'", "a = 1")
    with pytest.raises(UsageError, match="No closing quotation"):
        ip.run_cell_magic("track", "--name 'open", "a = 1")
    assert run(ip, "%%track?").success


def test_quoted_options_are_split_as_a_shell_would(ip, client):
    assert run(ip, "%%track --name 'my run' --tag 'team=ml ops' --tag \"k=v w\"\nq = 1").success
    run(ip, "%track flush")
    (cell,) = cell_runs(client)
    assert cell.info.run_name == "my run"
    assert cell.data.tags["team"] == "ml ops" and cell.data.tags["k"] == "v w"


def test_log_model_error_shows_under_the_cell_and_the_cell_succeeds(ip, client):
    assert run(ip, FIT).success
    res = run(ip, "%%track --log-model m\nm2 = 1")  # m is not fitted
    assert res.success
    bundle = last_bundle(ip)
    assert "is not fitted" in bundle["text/plain"] and "\n" not in bundle["text/plain"].strip()
    run(ip, "%track flush")
    assert cell_runs(client)[0].info.status == "FINISHED"


def test_without_the_transformer_the_magic_runs_the_cell(ip, client):
    magics = ip.magics_manager.registry["TrackMagics"]
    ip.input_transformers_cleanup.remove(magics.transformer)
    try:
        res = run(ip, "%%track --name direct\nv = 2\nv * 3")
        assert res.success and res.result == 6
    finally:
        ip.input_transformers_cleanup.append(magics.transformer)
    run(ip, "%track flush")
    (cell,) = cell_runs(client)
    assert cell.info.run_name == "direct" and cell.data.params["v"] == "2"


def test_reload_and_unload_add_and_remove_exactly_one_transformer(ip):
    def ours():
        return [t for t in ip.input_transformers_cleanup if getattr(t, "__name__", "") == "track_cell"]

    assert_once_across_reload(ip, ours)


def test_flush_reports_the_time_it_really_waited(ip, monkeypatch):
    import time

    ip.run_line_magic("config", "TrackMagics.tracking_uri = 'http://127.0.0.1:9'")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    assert run(ip, "%%track\nm = 1.0").success
    started = time.monotonic()
    run(ip, "%track flush")  # 30 s allowed; it stops early once MLflow has failed for a while
    elapsed = time.monotonic() - started
    text = last_bundle(ip)["text/plain"]
    waited = float(re.search(r"still pending after ([\d.]+)s", text).group(1))
    assert waited <= elapsed + 0.05, text  # what it waited, not the 30 s it was allowed
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 1.0")


# -- a real kernel ---------------------------------------------------------------------
PAIRS = [  # (label, code): each runs untracked, then tracked
    ("semicolon", "x = [1]; x;"),
    ("fit semicolon", "m.fit(X, y);"),
    ("value", "x = [1, 2]\nx"),
    ("await", "import asyncio\nawait asyncio.sleep(0)\n'awaited'"),
    ("failing", FAILING),
]


@pytest.fixture(scope="module")
def kernel_nb(tmp_path_factory, _empty_store):
    """One notebook of untracked/tracked pairs, run once in a real kernel."""
    import shutil

    from mlflow import MlflowClient
    from nbclient import NotebookClient
    from test_kernel import kernel_env

    tmp = tmp_path_factory.mktemp("transparency")
    (tmp / "noisy_lib.py").write_text(NOISY_LIB)
    shutil.copy(_empty_store, tmp / "mlflow.db")
    cells = [nbformat.v4.new_code_cell(FIT + NOISY)]
    labels = []
    for label, code in PAIRS:
        for prefix in ("", "%%track\n"):
            cell = nbformat.v4.new_code_cell(prefix + code)
            if label == "failing":
                cell.metadata["tags"] = ["raises-exception"]
            cells.append(cell)
            labels.append((label, prefix))
    for prefix, tag in (("", "plain"), ("%%track\n", "tracked")):
        cells += [nbformat.v4.new_code_cell(f"{prefix}noisy('{tag}')") for _ in range(3)]
    cells.append(nbformat.v4.new_code_cell("import mlops_magics as mm\nmm.flush(60)"))
    nb = nbformat.v4.new_notebook(cells=cells)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
        mp.setenv("IPYTHONDIR", str(tmp / ".ipython"))
        mp.setenv("MLOPS_MAGICS_HOME", str(tmp / ".mlops_magics"))
        for var in ("MLFLOW_EXPERIMENT_NAME", "MLOPS_MAGICS_NOTEBOOK", "JPY_SESSION_NAME"):
            mp.delenv(var, raising=False)
        kernel_env(tmp, mp)
        NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=60,
                       resources={"metadata": {"path": str(tmp)}}).execute()
    return nb, MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")


def seen(cell) -> list:
    """What a reader sees of a cell, our run summary (display_data) aside."""
    out = []
    for o in cell.outputs:
        if o.output_type == "execute_result":
            out.append(("value", o.data["text/plain"]))
        elif o.output_type == "stream":
            out.append((o.name, o.text))
        elif o.output_type == "error":
            out.append(("error", o.ename, o.evalue, frames("\n".join(o.traceback))))
    return out


@pytest.mark.kernel
def test_kernel_pairs_look_the_same(kernel_nb):
    nb, _ = kernel_nb
    for i, (label, _) in enumerate(PAIRS):
        plain, tracked = nb.cells[1 + 2 * i], nb.cells[2 + 2 * i]
        assert seen(plain) == seen(tracked), label
        if label == "failing":
            assert seen(tracked)[0][1] == "ZeroDivisionError" and len(seen(tracked)[0][3]) == 2
            text = "\n".join(t for o in tracked.outputs if o.output_type == "error" for t in o.traceback)
            assert "run_cell_magic" not in text and "skipping hidden" not in text
    assert seen(nb.cells[1]) == [] and seen(nb.cells[3]) == []  # the `;` cells
    assert seen(nb.cells[5])[0][0] == "value"


@pytest.mark.kernel
def test_kernel_warning_shows_once_and_counts_run_in_order(kernel_nb):
    nb, _ = kernel_nb
    first = 1 + 2 * len(PAIRS)
    plain, tracked = nb.cells[first:first + 3], nb.cells[first + 3:first + 6]
    assert ["noisy plain" in "".join(o.get("text", "") for o in c.outputs) for c in plain] == [True, False, False]
    assert ["noisy tracked" in "".join(o.get("text", "") for o in c.outputs) for c in tracked] == [True, False, False]
    counts = [c.execution_count for c in nb.cells]
    assert counts == list(range(1, len(nb.cells) + 1))


@pytest.mark.kernel
def test_kernel_tracked_runs_recorded_and_failing_one_failed(kernel_nb):
    nb, client = kernel_nb
    runs = cell_runs(client)
    assert len(runs) == len(PAIRS) + 3
    tracked_cells = [c for c in nb.cells if c.source.startswith("%%track")]
    assert [r.data.tags["mlops.execution_count"] for r in runs] == [str(c.execution_count) for c in tracked_cells]
    statuses = {r.data.tags["mlops.execution_count"]: r.info.status for r in runs}
    failing = tracked_cells[[label for label, _ in PAIRS].index("failing")]
    assert statuses.pop(str(failing.execution_count)) == "FAILED"
    assert set(statuses.values()) == {"FINISHED"}
