"""Honest data records, "what changed" against the same cell only, bounded profiles.

In-process shell through the real %load_ext, read back from a real MLflow SQLite store;
and pure library tests of the notebook-cell identity and of profile bounds.
"""

from __future__ import annotations

import json
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import cell_runs, last_bundle, run

import mlops_magics as mm
from mlops_magics.fingerprints import fingerprint


def flush(ip):
    ip.run_line_magic("config", "TrackMagics.flush_timeout = 180")  # a shared, loaded machine
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]


def datasets(cell) -> list[tuple[str, str, str]]:
    """(name, context, digest) of a run's dataset inputs, sorted."""
    return sorted((i.dataset.name, i.tags[0].value, i.dataset.digest) for i in cell.inputs.dataset_inputs)


def summary(ip) -> str:
    return last_bundle(ip)["text/plain"]


# -- a failed cell records only what it bound ------------------------------------------

def test_a_cell_failing_on_line_one_records_no_output_bound_earlier(ip, client):
    ip.user_ns["yfit"] = np.arange(10.0)
    res = run(ip, "%%track\nmodel.fit(X)\nyfit = model.predict(X)")
    assert isinstance(res.error_in_exec, NameError)
    assert "out yfit" not in summary(ip)
    flush(ip)
    (cell,) = cell_runs(client)
    assert cell.info.status == "FAILED" and datasets(cell) == []


def test_what_a_failed_cell_bound_before_failing_is_recorded(ip, client):
    ip.user_ns["yfit"] = np.arange(10.0)
    res = run(ip, "%%track\nscaled = yfit * 2\nraise ValueError('late')\nnever = yfit + 1")
    assert isinstance(res.error_in_exec, ValueError)
    flush(ip)
    (cell,) = cell_runs(client)
    names = {(n, c) for n, c, _ in datasets(cell)}
    assert names == {("yfit", "input"), ("scaled", "output")}


def test_assignments_that_never_ran_record_nothing(ip, client):
    ip.user_ns["stale"] = np.ones(5)
    assert run(ip, "%%track\nif False:\n    stale = np.zeros(3)\nn = 3").success
    assert "stale" not in summary(ip)
    flush(ip)
    (cell,) = cell_runs(client)
    assert datasets(cell) == []


# -- in-place changes are outputs with their new fingerprint ---------------------------

@pytest.mark.parametrize("code", [
    "df['x'] = 1",
    "df.drop(columns=['b'], inplace=True)",
    "df.loc[0, 'a'] = 99.0",
])
def test_frame_changed_in_place_is_an_output_with_its_new_digest(ip, client, code):
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]})
    before = fingerprint(df).digest
    ip.user_ns["df"] = df
    assert run(ip, "%%track\n" + code).success
    assert ip.user_ns["df"] is df
    flush(ip)
    (cell,) = cell_runs(client)
    assert datasets(cell) == sorted([("df", "input", before), ("df", "output", fingerprint(df).digest)])
    assert before != fingerprint(df).digest


@pytest.mark.parametrize("code", ["arr[0] = 5", "arr += 1", "for _ in range(2):\n    arr *= 2"])
def test_array_changed_in_place_is_an_output(ip, client, code):
    arr = np.arange(6.0)
    before = fingerprint(arr).digest
    ip.user_ns["arr"] = arr
    assert run(ip, "%%track\n" + code).success
    assert "out arr" in summary(ip)
    flush(ip)
    (cell,) = cell_runs(client)
    assert ("arr", "output", fingerprint(arr).digest) in datasets(cell)
    assert ("arr", "input", before) in datasets(cell)


def test_data_only_read_is_an_input_only(ip, client):
    ip.user_ns["arr"] = np.arange(6.0)
    assert run(ip, "%%track\ntotal = float(arr.sum())").success
    flush(ip)
    (cell,) = cell_runs(client)
    assert [(n, c) for n, c, _ in datasets(cell)] == [("arr", "input")]


# -- objects without a content fingerprint are skipped quietly -------------------------

AXES = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nfig, axes = plt.subplots(2, 2)\n"


def test_axes_arrays_and_figures_are_skipped_quietly(ip, client):
    assert run(ip, "%%track\n" + AXES + "axes[0, 0].plot([1, 2, 3])").success
    text = summary(ip)
    assert "not fingerprinted" not in text and "axes" not in text
    flush(ip)
    (cell,) = cell_runs(client)
    assert "mlops.unhashed" not in cell.data.tags


def test_a_named_object_without_fingerprint_is_still_reported(ip, client):
    assert run(ip, "%%track --data axes\n" + AXES).success
    assert "axes: not fingerprinted" in summary(ip)
    flush(ip)
    (cell,) = cell_runs(client)
    assert "axes" in cell.data.tags["mlops.unhashed"]


# -- "what changed" compares a cell only with itself -----------------------------------

PCA = ("from sklearn.datasets import load_digits\nfrom sklearn.decomposition import PCA\n"
       "X = load_digits().data[:300]\npca = PCA(n_components={n})\nprojected = pca.fit_transform(X)\n")
GMM = ("from sklearn.datasets import load_digits\nfrom sklearn.mixture import GaussianMixture\n"
       "X = load_digits().data[:300]\ngmm = GaussianMixture(n_components={n}, random_state=0)\n"
       "labels = gmm.fit(projected).predict(projected)\n")


def write_notebook(path, *sources: str, ids: bool = False) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Digits"]}]
    for i, src in enumerate(sources):
        cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                "source": src.splitlines(keepends=True)}
        if ids:
            cell["id"] = f"cell-{i}"
        cells.append(cell)
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5 if ids else 4}
    path.write_text(json.dumps(nb))


@pytest.mark.parametrize("ids", [False, True])
def test_a_similar_different_cell_is_not_compared_but_the_same_cell_is(ip, tmp_path, monkeypatch, ids):
    nb = tmp_path / "digits.ipynb"
    write_notebook(nb, "%%track\n" + PCA.format(n=2), "%%track\n" + GMM.format(n=3), ids=ids)
    monkeypatch.setenv("MLOPS_MAGICS_NOTEBOOK", str(nb))
    assert run(ip, "%%track\n" + PCA.format(n=2)).success
    assert run(ip, "%%track\n" + GMM.format(n=3)).success
    text = summary(ip)
    assert "(was" not in text and "(new)" not in text and "removed" not in text
    assert run(ip, "%%track\n" + PCA.format(n=5)).success  # edited, not yet saved
    assert "(was 2)" in summary(ip)


def test_without_a_notebook_only_identical_code_is_compared(ip):
    assert run(ip, "%%track\n" + PCA.format(n=2)).success
    assert run(ip, "%%track\n" + GMM.format(n=3)).success
    assert "(was" not in summary(ip) and "(new)" not in summary(ip)
    assert run(ip, "%%track\n" + PCA.format(n=4)).success
    assert "(was" not in summary(ip)  # unsure: say nothing
    assert run(ip, "%%track\n" + PCA.format(n=4)).success
    assert "(unchanged)" in summary(ip)  # the same code again: compared


def test_frontend_cell_ids_identify_the_cell(ip):
    ip.run_cell("%%track\n" + PCA.format(n=2), store_history=True, cell_id="a")
    ip.run_cell("%%track\n" + GMM.format(n=3), store_history=True, cell_id="b")
    assert "(was" not in summary(ip)
    ip.run_cell("%%track\n" + PCA.format(n=7), store_history=True, cell_id="a")
    assert "(was 2)" in summary(ip)


def test_notebook_cells_locate_only_clear_matches(tmp_path):
    from mlops_magics.tracking.identity import NotebookCells

    nb = tmp_path / "n.ipynb"
    write_notebook(nb, PCA.format(n=2), GMM.format(n=3), "x = 1", "x = 1")
    cells = NotebookCells()
    pca, gmm = cells.locate(str(nb), "%%track\n" + PCA.format(n=2)), cells.locate(str(nb), GMM.format(n=3))
    assert pca and gmm and pca != gmm
    assert cells.locate(str(nb), PCA.format(n=9)) == pca  # an edit of that cell
    assert cells.locate(str(nb), "x = 1") is None  # two identical cells: which one is unknown
    assert cells.locate(str(nb), "print('something else entirely')") is None
    assert cells.locate(str(tmp_path / "missing.ipynb"), "x = 1") is None
    (tmp_path / "bad.ipynb").write_text("{not json")
    assert cells.locate(str(tmp_path / "bad.ipynb"), "x = 1") is None


# -- bounded cost ----------------------------------------------------------------------

def test_a_wide_matrix_used_in_five_cells_is_profiled_once_and_small(ip, client):
    from mlops_magics import _current

    rng = np.random.default_rng(0)
    ip.user_ns["dist"] = rng.random((1000, 1000))
    for i in range(5):
        assert run(ip, f"%%track\nnearest_{i} = dist.argmin(axis=1)").success
    flush(ip)
    cells = cell_runs(client)
    assert len(cells) == 5
    for cell in cells:
        path = client.download_artifacts(cell.info.run_id, "mlops/profiles/dist.json")
        text = open(path).read()
        assert len(text.encode()) < 64 * 1024
    data = json.loads(text)
    assert list(data["columns"]) == ["values"] and "1,000 x 1,000" in data["columns"]["values"]["note"]
    assert data["rows"] == 1_000_000
    cache = _current.session().profiles._texts  # one profile per content digest: dist and the equal nearest_i
    assert list(cache) == [fingerprint(ip.user_ns["dist"]).digest, fingerprint(ip.user_ns["nearest_0"]).digest]
    report = mm.drift(f"runs:/{cells[0].info.run_id}/dist", ip.user_ns["dist"])
    assert not report.drifted
    assert mm.drift(ip.user_ns["dist"], ip.user_ns["dist"] + 0.5).drifted


def test_a_wide_table_keeps_its_first_columns_and_says_so():
    from mlops_magics.monitoring.profile import MAX_COLUMNS, Profile

    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(2000, 400)), columns=[f"f{i}" for i in range(400)])
    prof = mm.profile(df)
    text = prof.to_json()
    data = json.loads(text)
    assert len(text) < 1024 * 1024 and data["columns_total"] == 400
    assert 0 < len(data["columns"]) <= MAX_COLUMNS and "of 400 columns" in data["note"]
    assert "of 400 columns" in repr(prof)
    back = Profile.from_json(text)
    assert back.capped and back.total == 400
    report = mm.drift(back, df)  # compares the columns the profile has, nothing flagged as new
    assert list(report.table["feature"]) == list(data["columns"]) and not report.drifted
    shifted = df.copy()
    shifted["f0"] += 3
    drifted = mm.drift(back, shifted).table.set_index("feature")["drifted"]
    assert drifted["f0"] and drifted.sum() == 1
    assert "of 400 columns" in report.reference


def test_a_narrow_array_keeps_one_profile_column_per_array_column():
    prof = mm.profile(np.random.default_rng(2).normal(size=(500, 3)))
    assert list(prof) == ["0", "1", "2"] and not prof.capped


def _kinds_frame(n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "s": rng.choice(list("abc"), n), "b": rng.integers(0, 2, n).astype(bool),
        "c": pd.Categorical(rng.choice(list("xy"), n)),
        "str": pd.Series(rng.choice(["a", "b", None], n), dtype="string"),
        "o": pd.Series(rng.choice(["a", "b", None], n), dtype=object),
        "lists": pd.Series([[i % 2] for i in range(n)], dtype=object),
        "f": rng.normal(size=n), "d": pd.date_range("2020", periods=n, freq="min"),
        "i": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
        "nb": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
    })


def test_profiling_in_a_background_thread_keeps_warnings_shown_once():
    """catch_warnings in another thread resets which warnings were shown (issue 13)."""
    df = _kinds_frame()

    def warn():
        warnings.warn("shown once", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        warn()
        worker = threading.Thread(target=mm.profile, args=(df,))
        worker.start()
        worker.join()
        warn()
    assert [str(w.message) for w in seen] == ["shown once"]


def test_categorical_profiles_keep_their_counts():
    df = _kinds_frame()
    prof = mm.profile(df)
    assert prof["s"].counts.to_dict() == df["s"].value_counts().to_dict()
    assert prof["str"].missing == df["str"].isna().sum() and prof["str"].counts.sum() == df["str"].count()
    assert prof["c"].counts.to_dict() == df["c"].value_counts().to_dict()
    assert set(prof["b"].counts.index) == {"True", "False"}
    assert prof["i"].missing == df["i"].isna().sum() and prof["i"].max == df["i"].max()
    assert prof["nb"].counts.to_dict() == {str(k): v for k, v in df["nb"].value_counts().items()}
    assert prof["lists"].counts.to_dict() == {"[0]": 2500, "[1]": 2500}
    mixed = mm.profile(pd.Series([1, "1", "a", None], dtype=object))["value"]
    assert mixed.counts.to_dict() == {"1": 2, "a": 1} and mixed.missing == 1
