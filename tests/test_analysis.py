"""Pure library: reading a cell's code and turning values into params and metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops_magics.secrets import is_secret
from mlops_magics.secrets import mask_source
from mlops_magics.tracking.analysis import analyse
from mlops_magics.tracking.values import metric_items, param_string, real_scalar


def test_params_from_literal_assignments():
    a = analyse("lr = 0.1\nlayers = [64, 32]\nneg = -1\nname: str = 'adam'\n"
                "m = LogisticRegression(C=lr, max_iter=5000)\nx, y = 1, 2\nz = f(3)")
    assert a.params == {"lr": 0.1, "layers": [64, 32], "neg": -1, "name": "adam", "x": 1, "y": 2}


def test_calls_keep_their_literal_arguments_callee_and_nesting():
    a = analyse("a = split(X, random_state=0)\nplt.plot(x, model(x, sigma=0), lw=2)\n"
                "df['a'].plot(kind='bar')\ndef f():\n    g(k=1)")
    split, plot, inner, bar = a.calls  # nothing from inside the def
    assert split.callee == ("split",) and split.keywords == {"random_state": 0} and split.names == ["X"]
    assert plot.callee == ("plt", "plot") and plot.keywords == {"lw": 2} and plot.parent is None
    assert inner.callee == ("model",) and inner.keywords == {"sigma": 0} and inner.parent == 1
    assert bar.callee == ("df", "[]", "plot") and bar.keywords == {"kind": "bar"}
    assert a.bound_from == {"a": ("split",)}


def test_fitted_objects_bound_calls_and_last_expression():
    a = analyse("grid.fit(X, y)\nself.model.partial_fit(X)\nMaker().fit(X)\n"
                "scores = cross_val_score(m, X, y, cv=5)\nKMeans(6)\nscores.mean()")
    assert a.fitted == ["grid", "self.model"]
    kmeans = next(c for c in a.calls if c.callee == ("KMeans",))
    assert kmeans.positional == {0: 6}
    assert a.bound_from["scores"] == ("cross_val_score",)
    assert a.last is not None and a.last.func.attr == "mean"
    assert analyse("x = 1").last is None


def test_free_names_are_read_before_bound():
    a = analyse("df = df.dropna()\nX = load()\nmodel.fit(X, y)\nfor i in range(3):\n    t = i")
    assert a.free == {"df", "load", "model", "y", "range"}
    assert "X" not in a.free and "i" in a.loop_targets


def test_comprehension_variables_do_not_leak():
    a = analyse("vals = [v * k for v in data if v > limit]")
    assert a.loads == {"data", "limit", "k"}
    assert a.stores == {"vals"}


def test_definitions_and_imports_are_not_metrics():
    a = analyse("import numpy as np\nfrom os import path\ndef f(q): return q\nclass K: pass")
    assert {"np", "path", "f", "K"} <= a.loop_targets
    assert a.loads == set()


def test_masking_replaces_secret_literals_even_with_magics():
    raw = "%time x = 1\ntoken = 'abc123'\nconnect(password=\"p@ss\")\ncfg = {'api_key': 'K-9'}\nuser = 'me'"
    python = raw.replace("%time x = 1", "get_ipython().run_line_magic('time', 'x = 1')")
    masked = mask_source(raw, python)
    assert "abc123" not in masked and "p@ss" not in masked and "K-9" not in masked
    assert "user = 'me'" in masked and "%time" in masked


@pytest.mark.parametrize("name", ["password", "db_pass", "API_KEY", "apikey", "secret", "auth_token", "credentials"])
def test_secret_names(name):
    assert is_secret(name)


@pytest.mark.parametrize("name", ["author", "lr", "n_estimators", "keys", "session"])
def test_not_secret_names(name):
    assert not is_secret(name)


def test_param_strings_are_canonical():
    assert param_string(7) == "7" and param_string(7.0) == "7.0"
    assert param_string("adam") == "adam" and param_string([1, 2]) == "[1, 2]"
    assert param_string(np.float64(0.1)) == "0.1" and param_string({3, 1}) == "{1, 3}"
    assert len(param_string("x" * 10_000)) == 6000


def test_metric_values():
    assert real_scalar(True) is None and real_scalar("1") is None
    assert real_scalar(np.int64(3)) == 3.0 and real_scalar(np.array(0.5)) == 0.5
    assert real_scalar(np.array([0.5])) is None
    assert math.isnan(real_scalar(float("nan")))
    assert dict(metric_items("scores", {"f1": 0.8, "name": "x", "macro avg": {"recall": 0.5}})) == {
        "scores.f1": 0.8, "scores.macro avg.recall": 0.5}
