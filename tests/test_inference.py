"""Params and metrics a reader would write down: estimators' hyperparameters, searches,
cross-validation scores, the displayed score; plot keywords left out.

Pure library tests on a real namespace (real scikit-learn, matplotlib with Agg), then
in-process shell tests read back from a real MLflow store."""

from __future__ import annotations

import pytest
from conftest import cell_runs, last_bundle, run

from mlops_magics.tracking.analysis import analyse
from mlops_magics.tracking.inference import MAX_PARAMS, classify, infer_metrics, infer_params

@pytest.fixture(autouse=True)
def _agg(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def infer(source: str, ns: dict | None = None, displayed=None):
    """Run ``source`` in ``ns`` as a cell would, then infer its params and metrics."""
    ns = {} if ns is None else ns
    before = {k: id(v) for k, v in ns.items()}
    exec(compile(source, "<cell>", "exec"), ns)
    a = analyse(source)
    bound = (a.stores | {k for k, v in ns.items() if before.get(k) != id(v)}) - a.loop_targets - {"__builtins__"}
    params, dropped = infer_params(a, ns, bound, displayed)
    metrics = dict(infer_metrics(a, ns, bound - set(a.params), displayed))
    return params, metrics, dropped


BLOBS = ("from sklearn.datasets import make_blobs\n"
         "X, y = make_blobs(200, centers=3, random_state=1)\n")


# -- pure: params --------------------------------------------------------------------------------
def test_positional_hyperparameters_count():
    code = ("from sklearn.ensemble import RandomForestRegressor\nfrom sklearn.cluster import KMeans\n"
            "from sklearn.decomposition import PCA\nfrom sklearn.mixture import GaussianMixture\n"
            "forest = RandomForestRegressor(200)\nkm = KMeans(6, n_init=1)\npca = PCA(0.50)\n"
            "gmm = GaussianMixture(140, covariance_type='full')")
    params, _, _ = infer(code)
    assert params["n_estimators"] == 200 and params["n_clusters"] == 6 and params["n_init"] == 1
    assert "n_components" not in params  # PCA's 0.5 and the mixture's 140: each says whose it is
    assert params["pca.n_components"] == 0.5 and params["gmm.n_components"] == 140
    assert "covariance_type" not in params  # written, but the default: not a choice
    assert "random_state" not in params and "max_depth" not in params


def test_defaults_are_not_params_but_explicit_non_defaults_are():
    code = "from sklearn.linear_model import LogisticRegression\nm = LogisticRegression(C=1, max_iter=5000)"
    params, _, _ = infer(code)
    assert params == {"max_iter": 5000}  # C=1 equals the default 1.0


def test_plot_keywords_are_not_params():
    code = (BLOBS + "import matplotlib.pyplot as plt\nimport numpy as np\n"
            "def model(x, sigma=0.3):\n    return np.sin(x) + sigma\n"
            "fig, ax = plt.subplots(1, 2, figsize=(16, 6))\n"
            "fig.subplots_adjust(left=0.0625, right=0.95, wspace=0.1)\n"
            "ax[0].scatter(X[:, 0], X[:, 1], c=y, s=50, cmap='rainbow', alpha=0.5)\n"
            "ax[1].set(xlabel='x', ylim=(-1, 1), title='t')\nax[1].set_xlim(0, 1)\n"
            "plt.plot(X[:, 0], model(X[:, 0], sigma=0), '-k', lw=2)\n"
            "def plot_thing(data, label=True):\n    pass\nplot_thing(X, label=False)\n"
            "print(len(X), sep=' ')")
    params, _, _ = infer(code)
    assert params == {"make_blobs.n_samples": 200, "make_blobs.centers": 3, "make_blobs.random_state": 1}


def test_pandas_plot_accessor_and_display_calls_are_not_params():
    import pandas as pd

    ns = {"df": pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})}
    params, _, _ = infer("df.plot.scatter(x='a', y='b', s=5)\ndf['a'].plot(kind='hist', bins=3)\n"
                         "df.describe(include='all')\nclean = df.dropna(how='all')", ns)
    assert params == {}


def test_seeds_are_params_but_data_making_numpy_calls_are_not():
    code = ("import numpy as np\nimport random\nrng = np.random.RandomState(42)\nrandom.seed(7)\n"
            "x = np.linspace(0, 10, num=50)\nnoise = rng.normal(0, 1, size=50)\nz = np.random.normal(size=3)")
    params, _, _ = infer(code)
    assert params == {"RandomState.seed": 42, "seed.a": 7}


def test_split_seed_is_named_for_the_split_not_the_forest():
    code = (BLOBS + "from sklearn.model_selection import train_test_split\n"
            "from sklearn.ensemble import RandomForestClassifier\n"
            "Xtrain, Xtest, ytrain, ytest = train_test_split(X, y, random_state=0)\n"
            "model = RandomForestClassifier(n_estimators=50)\nmodel.fit(Xtrain, ytrain)")
    params, _, _ = infer(code)
    assert params["train_test_split.random_state"] == 0
    assert params["n_estimators"] == 50 and "random_state" not in params
    seeded, _, _ = infer(code.replace("n_estimators=50", "n_estimators=50, random_state=42"))
    assert seeded["random_state"] == 42 and seeded["train_test_split.random_state"] == 0


def test_two_estimators_with_one_name_are_qualified_by_variable():
    code = ("from sklearn.ensemble import RandomForestClassifier\n"
            "a = RandomForestClassifier(random_state=0)\nb = RandomForestClassifier(random_state=1, max_depth=3)")
    params, _, _ = infer(code)
    assert params == {"a.random_state": 0, "b.random_state": 1, "max_depth": 3}


def test_estimator_fitted_in_cell_is_read_though_made_earlier():
    from sklearn.datasets import make_blobs
    from sklearn.svm import SVC

    X, y = make_blobs(50, centers=2, random_state=0)
    ns = {"model": SVC(kernel="linear", C=1e10), "X": X, "y": y}
    params, _, _ = infer("model.fit(X, y)", ns)
    assert params == {"kernel": "linear", "C": 1e10}


def test_pipeline_is_flattened_and_literal_assignments_stay():
    code = ("from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import PolynomialFeatures\n"
            "from sklearn.linear_model import LinearRegression\nlr = 0.1\n"
            "poly = make_pipeline(PolynomialFeatures(7), LinearRegression(fit_intercept=False))")
    params, _, _ = infer(code)
    assert params == {"lr": 0.1, "polynomialfeatures__degree": 7, "linearregression__fit_intercept": False}


def test_grid_search_best_params_score_and_grid():
    code = (BLOBS + "from sklearn.model_selection import GridSearchCV\n"
            "from sklearn.neighbors import KNeighborsClassifier\n"
            "import numpy as np\ngrid = GridSearchCV(KNeighborsClassifier(), {'n_neighbors': np.arange(1, 4)}, cv=3)\n"
            "grid.fit(X, y);")
    params, metrics, _ = infer(code)
    assert params["cv"] == 3 and params["param_grid"] == {"n_neighbors": [1, 2, 3]}
    assert params["grid.best.n_neighbors"] in (1, 2, 3)
    assert 0 < metrics["grid.best_score"] <= 1


def test_cross_validation_scores_become_mean_and_std():
    code = (BLOBS + "from sklearn.model_selection import cross_val_score, cross_validate\n"
            "from sklearn.naive_bayes import GaussianNB\nmodel = GaussianNB()\n"
            "scores = cross_val_score(model, X, y, cv=4)\n"
            "res = cross_validate(model, X, y, cv=4, return_train_score=True)")
    ns: dict = {}
    params, metrics, _ = infer(code, ns)
    assert metrics["scores.mean"] == pytest.approx(ns["scores"].mean())
    assert metrics["scores.std"] == pytest.approx(ns["scores"].std())
    assert metrics["res.test_score.mean"] == pytest.approx(ns["res"]["test_score"].mean())
    assert "res.train_score.std" in metrics and not any("fit_time" in k for k in metrics)
    assert params["cross_val_score.cv"] == 4


@pytest.mark.parametrize(("expression", "name"), [
    ("accuracy_score(y, model.predict(X))", "accuracy_score"),
    ("metrics.accuracy_score(y, model.predict(X))", "accuracy_score"),
    ("scores.mean()", "scores.mean"),
    ("model.score(X, y)", "model.score"),
    ("round(model.score(X, y), 3)", "model.score"),
    ("res['test_score'].mean()", "res.test_score.mean"),
    ("np.mean(cross_val_score(model, X, y, cv=3))", "cross_val_score.mean"),
    ("len(X)", "X.len"),
    ("1 - model.score(X, y)", "displayed"),
])
def test_displayed_scalar_is_named_from_its_expression(expression, name):
    code = (BLOBS + "import numpy as np\nfrom sklearn import metrics\nfrom sklearn.metrics import accuracy_score\n"
            "from sklearn.model_selection import cross_val_score, cross_validate\n"
            "from sklearn.naive_bayes import GaussianNB\nmodel = GaussianNB().fit(X, y)\n"
            "scores = cross_val_score(model, X, y, cv=3)\nres = cross_validate(model, X, y, cv=3)\n")
    ns: dict = {}
    exec(compile(code, "<setup>", "exec"), ns)
    value = eval(expression, ns)
    a = analyse(expression)
    metrics = dict(infer_metrics(a, ns, set(), value))
    assert metrics == {name: pytest.approx(float(value))}


def test_nothing_displayed_means_no_displayed_metric():
    ns = {"acc": 0.5}
    assert infer_metrics(analyse("acc * 2;"), ns, set(), None) == []
    assert infer_metrics(analyse("lr = 0.1\nlr"), {"lr": 0.1}, set(), 0.1) == []  # a param shown
    assert infer_metrics(analyse("acc > 0"), ns, set(), True) == []  # bool is not a score


def test_displayed_cross_val_score_and_best_params():
    code = (BLOBS + "from sklearn.model_selection import GridSearchCV, cross_val_score\n"
            "from sklearn.tree import DecisionTreeClassifier\n"
            "grid = GridSearchCV(DecisionTreeClassifier(), {'max_depth': [1, 2]}, cv=3).fit(X, y)\n")
    ns: dict = {}
    exec(compile(code, "<setup>", "exec"), ns)
    shown = eval("cross_val_score(grid.best_estimator_, X, y, cv=3)", ns)
    m = dict(infer_metrics(analyse("cross_val_score(grid.best_estimator_, X, y, cv=3)"), ns, set(), shown))
    assert set(m) == {"cross_val_score.mean", "cross_val_score.std"}
    params, _ = infer_params(analyse("grid.best_params_"), ns, set(), ns["grid"].best_params_)
    assert params == {"grid.best.max_depth": ns["grid"].best_params_["max_depth"]}


def test_calls_are_classified_without_calling_anything():
    import matplotlib.pyplot as plt
    import numpy as np

    class Boom:
        def __getattr__(self, name):
            raise AssertionError("looked up dynamically")

        @property
        def prop(self):
            raise AssertionError("property evaluated")

    ns = {"plt": plt, "np": np, "boom": Boom(), "random": __import__("random")}
    assert classify(("plt", "scatter"), ns)[0] == "plot"
    assert classify(("np", "linspace"), ns)[0] == "ignore"
    assert classify(("np", "random", "RandomState"), ns)[0] == "call"
    assert classify(("np", "random", "normal"), ns)[0] == "ignore"  # data, not a seed
    assert classify(("random", "seed"), ns)[0] == "call"
    assert classify(("boom", "prop", "fit"), ns)[0] == "call"
    assert classify(("boom", "missing"), ns)[0] == "call"
    assert classify(("visualize_tree",), ns)[0] == "plot"
    assert classify(("configure",), ns)[0] == "call"  # "fig" inside a word is not a figure


def test_notebook_helpers_count_only_when_they_train_something():
    ns: dict = {"__name__": "__main__"}
    code = ("import numpy as np\n"
            "def wave(x, sigma=0.3):\n    return np.sin(x) + sigma * np.random.randn(len(x))\n"
            "def train(X, y, C=1.0):\n    from sklearn.svm import SVC\n    return SVC(C=C).fit(X, y)\n"
            "def make_trainer(lr):\n    def run(m, X, y):\n        return m.partial_fit(X, y)\n    return run\n")
    exec(compile(code, "<cell>", "exec"), ns)
    assert classify(("wave",), ns)[0] == "ignore"  # makes data: sigma=0 is no setting of a model
    assert classify(("train",), ns)[0] == "call"
    assert classify(("make_trainer",), ns)[0] == "call"  # the fit is in a nested function
    params, _, _ = infer("xs = wave(np.arange(5.0), sigma=0)\n", ns)
    assert not any("sigma" in k for k in params), params


def test_params_are_capped():
    code = "f(" + ", ".join(f"k{i}={i}" for i in range(MAX_PARAMS + 20)) + ")"
    params, dropped = infer_params(analyse(code), {}, set())
    assert len(params) == MAX_PARAMS and dropped == 20


# -- through %%track into MLflow ------------------------------------------------------------------
def flush(ip):
    run(ip, "%track flush")
    assert "all records are in MLflow" in last_bundle(ip)["text/plain"]


def test_tracked_cells_record_scores_and_hyperparameters(ip, client):
    setup = (BLOBS + "import matplotlib.pyplot as plt\nfrom sklearn.model_selection import train_test_split, "
             "cross_val_score, GridSearchCV\nfrom sklearn.ensemble import RandomForestClassifier\n"
             "from sklearn.metrics import accuracy_score\n")
    assert run(ip, setup).success
    cells = [
        "%%track --name forest\nXtrain, Xtest, ytrain, ytest = train_test_split(X, y, random_state=0)\n"
        "model = RandomForestClassifier(20)\nmodel.fit(Xtrain, ytrain)\n"
        "plt.scatter(X[:, 0], X[:, 1], c=y, s=50, cmap='rainbow')\naccuracy_score(ytest, model.predict(Xtest))",
        "%%track --name cv\nscores = cross_val_score(model, X, y, cv=5)\nscores.mean()",
        "%%track --name grid\ngrid = GridSearchCV(RandomForestClassifier(10, random_state=0),"
        " {'max_depth': [1, 3]}, cv=3)\ngrid.fit(X, y);",
        "%%track --name quiet\nmodel.score(Xtest, ytest);",
    ]
    for cell in cells:
        res = run(ip, cell)
        assert res.success, res.error_in_exec
    assert res.result is None  # `;`: nothing displayed, tracked or not
    flush(ip)
    forest, cv, grid, quiet = cell_runs(client)
    assert forest.data.params == {"train_test_split.random_state": "0", "n_estimators": "20"}
    assert 0 < forest.data.metrics["accuracy_score"] <= 1
    assert not any(k in forest.data.params for k in ("s", "cmap", "c"))
    assert cv.data.params["cross_val_score.cv"] == "5" and cv.data.params["n_estimators"] == "20"
    assert cv.data.metrics["scores.mean"] == pytest.approx(ip.user_ns["scores"].mean())
    assert cv.data.metrics["scores.std"] == pytest.approx(ip.user_ns["scores"].std())
    best = ip.user_ns["grid"]
    assert grid.data.params["grid.best.max_depth"] == str(best.best_params_["max_depth"])
    assert grid.data.params["param_grid"] == "{'max_depth': [1, 3]}" and grid.data.params["cv"] == "3"
    assert grid.data.params["estimator__n_estimators"] == "10"
    assert grid.data.params["estimator__random_state"] == "0"
    assert grid.data.metrics["grid.best_score"] == pytest.approx(best.best_score_)
    assert {k for k in quiet.data.metrics if not k.startswith("system.")} == set()


def test_displayed_expression_fallback_and_canonical_values(ip, client):
    assert run(ip, "%%track --name a\nfrom sklearn.neighbors import KNeighborsClassifier\n"
                   "knn = KNeighborsClassifier(7)\nknn.n_neighbors * 1.5").success
    assert run(ip, "%%track --name b\nknn = KNeighborsClassifier(n_neighbors=7, p=1.0)").success
    flush(ip)
    a, b = cell_runs(client)
    assert a.data.params == {"n_neighbors": "7"} and a.data.metrics["displayed"] == 10.5
    assert b.data.params == {"n_neighbors": "7", "p": "1.0"}


def test_odd_objects_give_no_params_and_break_nothing():
    class Proxy:  # answers every attribute, as remote handles and mocks do
        def __getattr__(self, name):
            return lambda *a, **k: {"n": 1}

    class Broken:
        def get_params(self, deep=True):
            raise RuntimeError("half-built")

    ns = {"p": Proxy(), "b": Broken()}
    params, dropped = infer_params(analyse("p.fit(1)\nb.fit(2)"), ns, {"p", "b"})
    assert params == {} and dropped == 0
    assert infer_metrics(analyse("p.fit(1)"), ns, {"p", "b"}, None) == []
