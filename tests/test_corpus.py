"""Real teaching notebooks, untracked and tracked, compared cell by cell in real kernels.

The corpus in tests/notebooks/corpus/ is written in the style of public tutorials (model
validation, grid search, pipelines, PCA, clustering, mixtures, KDE): cells ending in ``;``,
bare-expression scores, in-place DataFrame edits, a warning from one helper in several cells,
top-level ``await``, cells that raise. Each notebook runs twice in fresh kernels with the same
environment: as written, and with ``%%track`` on every code cell that has no cell magic. A
reader must see the same thing both times (the tracking summary aside); then the runs in
MLflow must hold the scores and hyperparameters a reader would write down.
"""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import cell_runs
from test_kernel import kernel_env

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

CORPUS = Path(__file__).parent / "notebooks" / "corpus"
NOTEBOOKS = sorted(p.stem for p in CORPUS.glob("*.ipynb"))
SUMMARY_CLASS = 'class="mlops-magics-summary"'  # what display.CellSummary._repr_html_ emits

# -- running ---------------------------------------------------------------------------


def with_track(nb):
    """A copy of ``nb`` with ``%%track`` on every code cell that starts with no cell magic."""
    out = nbformat.from_dict(nb)  # a deep copy
    for cell in out.cells:
        if cell.cell_type == "code" and not cell.source.startswith("%%"):
            cell.source = "%%track\n" + cell.source
    return out


def execute(nb, cwd: Path):
    """Run ``nb`` in a fresh ``python3`` kernel of this venv; errors stay in the outputs."""
    client = NotebookClient(nb, kernel_name="python3", timeout=180, startup_timeout=60,
                            allow_errors=True, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, _empty_store):
    """``corpus(name)`` -> (untracked nb, tracked nb, MlflowClient, cell runs), each run once."""
    from mlflow import MlflowClient

    done: dict[str, tuple] = {}

    def run(name: str):
        if name in done:
            return done[name]
        tmp = tmp_path_factory.mktemp(name)
        shutil.copy(_empty_store, tmp / "mlflow.db")
        uri = f"sqlite:///{tmp}/mlflow.db"
        source = nbformat.read(CORPUS / f"{name}.ipynb", as_version=4)
        with pytest.MonkeyPatch.context() as mp:  # what conftest's _isolated does for one test
            mp.chdir(tmp)
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.setenv("IPYTHONDIR", str(tmp / ".ipython"))
            mp.setenv("MLOPS_MAGICS_HOME", str(tmp / ".mlops_magics"))
            mp.setenv("MPLBACKEND", "Agg")
            for var in ("MLFLOW_EXPERIMENT_NAME", "MLOPS_MAGICS_NOTEBOOK", "JPY_SESSION_NAME"):
                mp.delenv(var, raising=False)
            kernel_env(tmp, mp)
            plain = execute(nbformat.from_dict(source.copy()), tmp)
            tracked = execute(with_track(source), tmp)
            from mlops_magics.journal.sync import sync

            sync(timeout=60)  # what the kernel had no time to deliver as it stopped
        client = MlflowClient(tracking_uri=uri)
        done[name] = (plain, tracked, client, cell_runs(client))
        return done[name]

    return run


# -- comparing -------------------------------------------------------------------------

_NORMALISE = [
    (re.compile(r"\x1b\[[0-9;]*[A-Za-z]"), ""),                      # ANSI colours
    (re.compile(r"0x[0-9a-fA-F]{4,}"), "0x…"),                        # memory addresses
    (re.compile(r"\d+(?:\.\d+)?\s?(?:ns|µs|μs|us|ms|s|min)\b"), "<t>"),  # timings
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run id>"),                   # MLflow run ids
    (re.compile(r"\S*ipykernel_\d+[/\\]\d+\.py"), "<cell file>"),  # per-source file names
    (re.compile(r"sk-(container|estimator)-id-\d+"), r"sk-\1-id-N"),  # counters in scikit-learn's HTML
]
TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")


def norm(text) -> str:
    text = "".join(text) if isinstance(text, list) else str(text)
    for pattern, repl in _NORMALISE:
        text = pattern.sub(repl, text)
    return text


def is_summary(output) -> bool:
    return output.get("output_type") == "display_data" and SUMMARY_CLASS in norm(output["data"].get("text/html", ""))


def bundle(data) -> dict:
    return {m: (norm(v) if m in TEXT_MIMES else "<binary>") for m, v in sorted(data.items())}


def seen(cell) -> dict:
    """What a reader sees under a cell, normalised; the tracking summary left out."""
    out = {"kinds": [], "stdout": "", "stderr": "", "results": [], "displays": [], "errors": []}
    for o in cell.outputs:
        kind = o.output_type
        if kind == "stream":
            out[o.name] += norm(o.text)
            continue
        if is_summary(o):
            continue
        out["kinds"].append(kind)
        if kind == "execute_result":
            out["results"].append(bundle(o.data))
        elif kind == "display_data":
            out["displays"].append(bundle(o.data))
        elif kind == "error":
            out["errors"].append({"ename": o.ename, "evalue": norm(o.evalue),
                                  "traceback": frames(norm("\n".join(o.traceback)))})
    return out


def frames(traceback: str) -> list[str]:
    """The frames of a traceback: where each is (with its line number) and the line it stopped on."""
    out = []
    for line in traceback.splitlines():
        line = line.strip()
        if line.startswith(("Cell In[", "File ")) or re.match(r"-+> *\d+ ", line):
            out.append(line)
        elif "skipping hidden" in line:
            out.append(line)
    return out


def _short(value, limit=160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _first_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("%%track")]
    return lines[0][:60] if lines else ""


def differences(plain, tracked) -> list[str]:
    """Every way a reader could tell the tracked run from the untracked one, one line each."""
    found = []
    pairs = [(a, b) for a, b in zip(plain.cells, tracked.cells) if a.cell_type == "code"]
    for index, (a, b) in enumerate(pairs):
        where = f"code cell {index} `{_first_line(a.source)}`"
        if a.execution_count != b.execution_count:
            found.append(f"{where}: execution_count {a.execution_count} -> {b.execution_count}")
        sa, sb = seen(a), seen(b)
        for key in ("kinds", "stdout", "stderr", "results", "displays"):
            if sa[key] != sb[key]:
                found.append(f"{where}: {key} untracked {_short(sa[key])} | tracked {_short(sb[key])}")
        for ea, eb in zip(sa["errors"], sb["errors"]):
            if (ea["ename"], ea["evalue"]) != (eb["ename"], eb["evalue"]):
                found.append(f"{where}: error {ea['ename']}: {_short(ea['evalue'], 80)} -> "
                             f"{eb['ename']}: {_short(eb['evalue'], 80)}")
            elif ea["traceback"] != eb["traceback"]:
                diff = [ln for ln in difflib.unified_diff(ea["traceback"], eb["traceback"], lineterm="", n=0)
                        if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
                found.append(f"{where}: traceback differs: {_short(diff[:6], 400)}")
    return found


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_tracked_notebook_reads_exactly_as_untracked(corpus, name):
    plain, tracked, _, runs = corpus(name)

    found = differences(plain, tracked)
    assert not found, f"{name}: {len(found)} differences\n" + "\n".join(found)
    code = [c for c in tracked.cells if c.cell_type == "code" and c.source.startswith("%%track")]
    assert len(runs) == len(code)  # one run per tracked cell, nothing lost


def test_corpus_is_real_enough():
    """The corpus keeps the habits it exists to exercise (a guard against it being 'tidied')."""
    sources = {n: nbformat.read(CORPUS / f"{n}.ipynb", as_version=4) for n in NOTEBOOKS}
    code = [c.source for nb in sources.values() for c in nb.cells if c.cell_type == "code"]
    assert 8 <= len(sources) <= 10
    assert all(10 <= sum(c.cell_type == "code" for c in nb.cells) <= 25 for nb in sources.values())
    assert sum(s.rstrip().endswith(";") for s in code) >= 20
    assert sum(re.search(r"^(\w+ = )?await ", s, re.M) is not None for s in code) >= 2
    assert sum("inplace=True" in s for s in code) >= 3
    assert sum(s.startswith("%%") for s in code) >= 1  # a cell magic of its own: left untracked
    assert any("id" in nb.cells[0] for nb in sources.values())
    assert any("id" not in nb.cells[0] for nb in sources.values())
    assert all(not c.get("outputs") for nb in sources.values() for c in nb.cells)


# -- what a reader would write down -----------------------------------------------------


def cell_of(nb, marker: str):
    found = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"{len(found)} cells contain {marker!r}"
    return found[0]


def run_of(tracked, runs, marker: str):
    count = str(cell_of(tracked, marker).execution_count)
    found = [r for r in runs if r.data.tags.get("mlops.execution_count") == count]
    assert len(found) == 1, f"{len(found)} runs for the cell with {marker!r} (execution count {count})"
    return found[0]


def shown(plain, marker: str, after: bool = False) -> str:
    """The text/plain a reader sees as the value of the cell with ``marker`` (untracked), or of
    the code cell just after it."""
    cell = cell_of(plain, marker)
    if after:
        code = [c for c in plain.cells if c.cell_type == "code"]
        cell = code[code.index(cell) + 1]
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert results, f"the cell with {marker!r} shows no value"
    return results[0]["data"]["text/plain"]


def value_shown(plain, marker: str, after: bool = False) -> float:
    """The scalar a reader sees as the cell's value: ``0.96``, ``np.float64(0.96)``."""
    found = numbers(shown(plain, marker, after))
    assert len(found) == 1, shown(plain, marker, after)
    return found[0]


def stream_of(cell) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?|-?\d+(?![\d.])", text.replace("np.float64", ""))]


def param_named(params: dict, name: str) -> str:
    """The value of hyperparameter ``name``, whatever it is prefixed with (``forest.n_estimators``)."""
    keys = [k for k in params if re.split(r"[.]|__", k)[-1] == name]
    assert keys, f"no param {name!r} in {sorted(params)}"
    return params[keys[0]]


PLOT_KEYWORDS = {"s", "c", "cmap", "alpha", "figsize", "lw", "linewidth", "color", "label", "loc", "title",
                 "xlabel", "ylabel", "xlim", "ylim", "zorder", "edgecolor", "edgecolors", "facecolor",
                 "marker", "markersize", "origin", "aspect", "frameon", "fmt", "sigma", "wspace", "left",
                 "right", "interpolation", "shrink", "linestyle"}


def plot_params(params: dict) -> list[str]:
    """Params named like plot keywords (``alpha``, ``scatter.s``); an estimator's ``ridge__alpha`` is not one."""
    return sorted(k for k in params if "__" not in k and k.split(".")[-1] in PLOT_KEYWORDS)


def cv_metrics(run, name: str, values: list[float]) -> None:
    import numpy as np

    m = run.data.metrics
    assert f"{name}.mean" in m and f"{name}.std" in m, f"no {name}.mean/.std in {sorted(m)}"
    assert m[f"{name}.mean"] == pytest.approx(np.mean(values), rel=1e-6)
    assert m[f"{name}.std"] == pytest.approx(np.std(values), rel=1e-4, abs=1e-8)


def search_records(run, var: str, best_score: float, best: dict) -> None:
    m, p = run.data.metrics, run.data.params
    assert m.get(f"{var}.best_score") == pytest.approx(best_score, rel=1e-6), sorted(m)
    for key, value in best.items():
        assert f"{var}.best.{key}" in p, f"no {var}.best.{key} in {sorted(p)}"
        assert numbers(p[f"{var}.best.{key}"]) == pytest.approx(numbers(value)), p[f"{var}.best.{key}"]


def best_params_shown(plain, marker: str, after: bool = False) -> dict:
    text = shown(plain, marker, after)
    return dict(re.findall(r"'([^']+)': (?:np\.\w+\()?([^,)}]+)", text))


def test_model_validation_records_scores_search_and_no_plot_keywords(corpus):
    plain, tracked, _, runs = corpus("model_validation")

    acc = run_of(tracked, runs, "accuracy_score(y, y_model)")
    assert acc.data.metrics.get("accuracy_score") == pytest.approx(value_shown(plain, "accuracy_score(y, y_model)"))
    cv_metrics(run_of(tracked, runs, "cross_val_score(model, X, y, cv=5)"), "cross_val_score",
               numbers(shown(plain, "cross_val_score(model, X, y, cv=5)")))
    loo = run_of(tracked, runs, "cv=LeaveOneOut()")
    assert loo.data.metrics.get("scores.mean") == pytest.approx(value_shown(plain, "scores.mean()"))
    assert "scores.std" in loo.data.metrics
    mean = run_of(tracked, runs, "scores.mean()")
    assert mean.data.metrics.get("scores.mean") == pytest.approx(value_shown(plain, "scores.mean()"))
    fit = run_of(tracked, runs, "grid.fit(Xc, yc);")
    search_records(fit, "grid", value_shown(plain, "grid.best_score_"), best_params_shown(plain, "grid.best_params_"))
    for marker in ("ax.legend(loc='best', frameon=True);", "validation_curve(poly_model()", "fig.subplots_adjust("):
        assert plot_params(run_of(tracked, runs, marker).data.params) == [], marker
    failed = run_of(tracked, runs, "best.predict(X)")
    assert failed.info.status == "FAILED"
    assert failed.data.tags["mlops.error"].startswith("ValueError: X has 4 features")


def test_regression_notebooks_record_estimator_scores_and_hyperparameters(corpus):
    plain, tracked, _, runs = corpus("linear_regression")

    r2 = run_of(tracked, runs, "r2_score(y_test, model.predict(X_test))")
    assert r2.data.metrics.get("r2_score") == pytest.approx(value_shown(plain, "r2_score(y_test"))
    score = run_of(tracked, runs, "model.score(X_test, y_test)")
    assert score.data.metrics.get("model.score") == pytest.approx(value_shown(plain, "model.score(X_test, y_test)"))
    ridge = run_of(tracked, runs, "Ridge(alpha=0.1)")
    assert param_named(ridge.data.params, "alpha") == "0.1"
    assert param_named(ridge.data.params, "N") == "30"
    assert plot_params(ridge.data.params) == []
    assert run_of(tracked, runs, "await score_later(").info.status == "FINISHED"

    plain, tracked, _, runs = corpus("random_forests")
    forest = run_of(tracked, runs, "RandomForestRegressor(200, random_state=0)")
    assert param_named(forest.data.params, "n_estimators") == "200"
    assert plot_params(forest.data.params) == []  # not sigma=0 of the helper, not fmt/alpha of errorbar
    split = run_of(tracked, runs, "RandomForestClassifier(n_estimators=120, random_state=7)")
    assert param_named(split.data.params, "n_estimators") == "120"
    assert split.data.params.get("random_state") != "0"  # the split's seed is not the forest's
    acc = run_of(tracked, runs, "metrics.accuracy_score(ytest, ypred)")
    shown_acc = value_shown(plain, "metrics.accuracy_score(ytest, ypred)")
    assert [v for k, v in acc.data.metrics.items() if k.endswith("accuracy_score")] == [pytest.approx(shown_acc)]
    cv_metrics(run_of(tracked, runs, "forest_scores = cross_val_score("), "forest_scores",
               numbers(shown(plain, "forest_scores = cross_val_score(")))


def test_unsupervised_notebooks_record_positional_hyperparameters(corpus):
    plain, tracked, _, runs = corpus("pca")
    assert float(param_named(run_of(tracked, runs, "PCA(0.50)").data.params, "n_components")) == 0.5
    assert param_named(run_of(tracked, runs, "pca = PCA(2)").data.params, "n_components") == "2"
    assert plot_params(run_of(tracked, runs, "plot_digits(digits.data)").data.params) == []
    failed = run_of(tracked, runs, "PCA(n_components=100)")
    assert failed.info.status == "FAILED" and failed.data.tags["mlops.error"].startswith("ValueError")

    plain, tracked, _, runs = corpus("kmeans")
    assert param_named(run_of(tracked, runs, "KMeans(6, random_state=0)").data.params, "n_clusters") == "6"
    acc = run_of(tracked, runs, "accuracy_score(digits.target, labels)")
    assert acc.data.metrics.get("accuracy_score") == pytest.approx(value_shown(plain, "accuracy_score(digits.target"))
    ari = run_of(tracked, runs, "adjusted_rand_score(digits.target, clusters2)")
    assert ari.data.metrics.get("adjusted_rand_score") == pytest.approx(value_shown(plain, "adjusted_rand_score("))
    assert run_of(tracked, runs, "await cluster_sizes(").info.status == "FINISHED"

    plain, tracked, _, runs = corpus("gaussian_mixtures")
    assert param_named(run_of(tracked, runs, "GaussianMixture(n_components=16").data.params, "n_components") == "16"
    assert param_named(run_of(tracked, runs, "GaussianMixture(40,").data.params, "n_components") == "40"
    ll = run_of(tracked, runs, "gmm.score(data)")
    assert ll.data.metrics.get("gmm.score") == pytest.approx(value_shown(plain, "gmm.score(data)"))
    assert plot_params(run_of(tracked, runs, "plot_gmm(gmm2, Xmoon)").data.params) == []


def test_search_notebooks_record_best_score_and_best_params(corpus):
    plain, tracked, _, runs = corpus("kde")
    digits_fit = run_of(tracked, runs, "grid.fit(digits.data, digits.target);")
    search_records(digits_fit, "grid", value_shown(plain, "grid.best_score_"),
                   best_params_shown(plain, "grid.fit(digits.data", after=True))
    density_fit = run_of(tracked, runs, "grid.fit(x[:, None]);")
    assert "grid.best_score" in density_fit.data.metrics, sorted(density_fit.data.metrics)
    assert numbers(density_fit.data.params.get("grid.best.bandwidth", "")) == pytest.approx(
        numbers(best_params_shown(plain, "grid.fit(x[:, None]);", after=True)["bandwidth"]))
    nb = run_of(tracked, runs, "cross_val_score(GaussianNB()")
    assert value_shown(plain, "cross_val_score(GaussianNB()") in [pytest.approx(v) for v in nb.data.metrics.values()]
    failed = run_of(tracked, runs, "KDEClassifier().predict(")
    assert failed.info.status == "FAILED" and failed.data.tags["mlops.error"].startswith("AttributeError")

    plain, tracked, _, runs = corpus("pipelines_grid_search")
    score = run_of(tracked, runs, "pipe.score(X_test, y_test)")
    assert score.data.metrics.get("pipe.score") == pytest.approx(value_shown(plain, "pipe.score(X_test, y_test)"))
    fit = run_of(tracked, runs, "grid.fit(X_train, y_train);")
    printed = numbers(stream_of(cell_of(plain, "grid.best_score_:.3f")))[0]  # "best cross-validated accuracy: 0.977"
    assert fit.data.metrics.get("grid.best_score") == pytest.approx(printed, abs=5e-4), sorted(fit.data.metrics)
    search_records(fit, "grid", fit.data.metrics["grid.best_score"], best_params_shown(plain, "grid.best_params_"))
    search = run_of(tracked, runs, "search.fit(")
    search_records(search, "search", value_shown(plain, "search.best_score_"),
                   best_params_shown(plain, "search.fit("))
    cv_metrics(run_of(tracked, runs, "cross_val_score(clf,"), "cross_val_score",
               numbers(shown(plain, "cross_val_score(clf,")))
    assert plot_params(run_of(tracked, runs, "fig.colorbar(im").data.params) == []
