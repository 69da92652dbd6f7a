"""The params and metrics a tracked cell records, from its code and the namespace after it.

Params (all values canonical strings, see ``values.param_string``):

- ``lr``: a top-level assignment of a literal (``lr = 0.1``).
- ``n_estimators``: a non-default hyperparameter of an estimator the cell binds, fits
  (``.fit``/``.fit_transform``/``.fit_predict``/``.partial_fit``) or passes to a call, read
  with ``get_params()``; positional arguments count (``KMeans(6)`` gives ``n_clusters``).
  Nested estimators use scikit-learn's names: ``polynomialfeatures__degree``,
  ``estimator__C``. When two sources give one name different values, each is
  qualified by what it belongs to: ``model.random_state``, ``forest.random_state``.
- ``<search>.best.<param>``: ``best_params_`` of a fitted search (GridSearchCV,
  RandomizedSearchCV, Halving*: anything with ``best_score_`` and ``best_params_``);
  the search's own non-default params (``param_grid``, ``cv``) as above.
- ``<function>.<argument>``: a literal, non-default argument of any other model-building
  call (a notebook's own function counts when its code fits or trains something), named by its callee (``train_test_split.random_state``, ``model.fit.epochs``;
  positional ones too for functions, ``make_blobs(300)`` gives ``make_blobs.n_samples``);
  keywords of ``dict(...)`` keep their plain name. Never keywords of plotting or display calls
  (matplotlib, seaborn, plotly, bokeh, altair, IPython.display, pandas ``.plot``,
  functions named plot/draw/show/display/fig/chart/visual..., nor any call inside
  their arguments), of ``print``/builtins, or of pandas, numpy, the standard library,
  MLflow and this package, but for seeding calls (``np.random.RandomState(0)``,
  ``random.seed(0)``, ``np.random.default_rng(0)``).
- At most ``MAX_PARAMS`` per cell, in that order of priority.

Metrics:

- ``acc``: a name the cell binds to a finite real scalar; ``name.key`` for dicts of them.
- The cell's displayed value when it is a real scalar, named from its expression:
  ``accuracy_score(y, p)`` -> ``accuracy_score``, ``scores.mean()`` -> ``scores.mean``,
  ``model.score(X, y)`` -> ``model.score``, ``grid.best_score_`` -> ``grid.best_score_``
  (module prefixes dropped, ``round``/``float``/``int`` looked through, a builtin or
  numpy function of one value named after the value: ``np.mean(scores)`` ->
  ``scores.mean``, ``len(X)`` -> ``X.len``), else ``displayed``.
- ``<name>.mean`` / ``<name>.std``: cross-validation score arrays, bound from
  ``cross_val_score(...)`` or displayed (``cross_val_score.mean``); results of
  ``cross_validate`` as ``<name>.test_score.mean`` (every ``test_*``/``train_*`` key).
- ``<search>.best_score``: ``best_score_`` of a fitted search bound or fitted in the cell.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
import sys
import types
from collections.abc import Iterator

from . import estimators as est
from .analysis import CellAnalysis, CallSite, chain
from .values import param_string, real_scalar, score_summary

MAX_PARAMS = 100
MAX_ESTIMATORS = 20
FALLBACK_METRIC = "displayed"
CV_FUNCTIONS = frozenset({"cross_val_score", "cross_validate"})

PLOT, IGNORE, ESTIMATOR, CONFIG, CALL = "plot", "ignore", "estimator", "config", "call"
PLOT_MODULES = ("matplotlib", "mpl_toolkits", "seaborn", "plotly", "bokeh", "altair", "holoviews",
                "hvplot", "pandas.plotting", "IPython.display", "IPython.core.display", "ipywidgets",
                "yellowbrick", "scikitplot", "graphviz", "pydot", "folium", "wordcloud")
IGNORED_MODULES = ("pandas", "numpy", "polars", "pyarrow", "mlflow", "mlops_magics", "IPython",
                   "tqdm", "joblib")
MODEL_MODULES = ("numpy.random", "random")  # of these, only seeding calls: a seed is worth writing down
_SEEDING = re.compile(r"seed|random_?state|default_rng|generator|random$", re.I)
_UNWRAP = frozenset({"round", "float", "int"})  # ``round(acc, 3)`` is still ``acc``
_PLOT_WORD = re.compile(r"^(sub|im)?(plot|draw|show|display|fig|chart|visual)|^hist$", re.I)
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_PLACEHOLDERS = ("[]", "()")


# -- what a call is ---------------------------------------------------------------------------
def _plot_named(name: str) -> bool:
    return any(_PLOT_WORD.match(w) for w in _WORDS.findall(name))


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _resolve(parts: tuple[str, ...], ns: dict) -> list[object]:
    """The objects along a dotted chain, by dictionary and static attribute lookups only."""
    if parts[0] in ns:
        objs = [ns[parts[0]]]
    elif hasattr(builtins, parts[0]):
        objs = [getattr(builtins, parts[0])]
    else:
        return []
    for part in parts[1:]:
        if part in _PLACEHOLDERS:
            break
        try:
            attr = inspect.getattr_static(objs[-1], part)
        except AttributeError:
            break
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        objs.append(attr)
    return objs


def _home(objs: list[object]) -> str:
    """The module a call belongs to: of the deepest object that says, else of its owner."""
    for depth, obj in reversed(list(enumerate(objs))):
        if isinstance(obj, types.ModuleType):
            return obj.__name__
        if inspect.isclass(obj) or inspect.isroutine(obj):
            module = getattr(obj, "__module__", None)
        else:
            module = type(obj).__module__
        if isinstance(module, str) and (module != "builtins" or depth == 0):
            return module
    return ""


def classify(callee: tuple[str, ...], ns: dict) -> tuple[str, object]:
    """What kind of call ``callee`` is (PLOT, IGNORE, ESTIMATOR, CONFIG or CALL), and what it resolved to."""
    names = [p for p in callee if p not in _PLACEHOLDERS]
    if not names:
        return IGNORE, None  # ("a" or b)(...), "x".format(...): nothing to name it by
    if callee in (("print",), ("display",)):
        return IGNORE, None  # what is printed may still hold calls worth recording
    objs = _resolve(callee, ns)
    home = _home(objs)
    if any(_plot_named(n) for n in names) or _under(home, PLOT_MODULES):
        return PLOT, None
    full = len(objs) == len(callee)
    target = objs[-1] if full else None
    if target is dict:
        return CONFIG, None
    if full and est.is_estimator_class(target):
        return ESTIMATOR, target
    if _under(home, MODEL_MODULES):
        if not _SEEDING.search(callee[-1]):
            return IGNORE, None  # rng.normal(0, 1, 100) makes data, not a model
    elif home == "builtins" or _under(home, IGNORED_MODULES) or home.split(".")[0] in sys.stdlib_module_names:
        return IGNORE, None
    if callee[-1] == "set" or callee[-1].startswith("set_"):
        return IGNORE, None  # setters configure objects; estimators' set_params shows in get_params
    if inspect.isfunction(target) and target.__module__ == "__main__" and not _trains(target.__code__):
        return IGNORE, None  # a helper of the notebook's that makes data (``make_data(sigma=0)``)
    plain = target is not None and all(isinstance(o, types.ModuleType) for o in objs[:-1])
    return CALL, target if plain else None  # a method's signature has ``self``: no positional names


_TRAINING_NAMES = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "train", "compile",
                             "backward", "GridSearchCV", "RandomizedSearchCV", "cross_val_score",
                             "cross_validate"})


def _trains(code: types.CodeType) -> bool:
    """Whether a function defined in the notebook fits or trains a model (so its arguments are
    the model's settings), judged from the names its code uses, nested functions included."""
    if _TRAINING_NAMES.intersection(code.co_names):
        return True
    return any(isinstance(c, types.CodeType) and _trains(c) for c in code.co_consts)


def _kinds(analysis: CellAnalysis, ns: dict) -> list[tuple[str, object]]:
    kinds = [classify(site.callee, ns) for site in analysis.calls]
    for i, site in enumerate(analysis.calls):  # parents come first: a plot's arguments are plot
        if site.parent is not None and kinds[site.parent][0] == PLOT:
            kinds[i] = (PLOT, None)
    return kinds


def _qualifier(callee: tuple[str, ...], ns: dict) -> str:
    """A call's name without module prefixes: ``sklearn.model_selection.train_test_split`` -> ``train_test_split``."""
    objs = _resolve(callee, ns)
    skip = 0
    while skip < len(objs) - 1 and isinstance(objs[skip], types.ModuleType):
        skip += 1
    return ".".join(p for p in callee[skip:] if p not in _PLACEHOLDERS)


def _dotted(node: ast.AST, ns: dict) -> str | None:
    parts = chain(node)
    if not parts or any(p in _PLACEHOLDERS for p in parts):
        return None
    return _qualifier(parts, ns)


# -- estimators the cell made or used -----------------------------------------------------------
def captured(analysis: CellAnalysis, ns: dict, bound: set[str],
             kinds: list[tuple[str, object]] | None = None) -> list[tuple[str, object]]:
    """``(label, estimator)`` for estimators the cell binds, fits or passes to a model-building call;
    those inside another captured one (a search's estimator, a pipeline's steps) are left to it."""
    kinds = kinds if kinds is not None else _kinds(analysis, ns)
    labels: list[str] = sorted(n for n in bound if not n.startswith("_"))
    labels += analysis.fitted
    for site, (kind, _) in zip(analysis.calls, kinds):
        if kind in (CALL, ESTIMATOR):
            labels += site.names
    found: dict[int, tuple[str, object]] = {}
    for label in labels:
        objs = _resolve(tuple(label.split(".")), ns)
        if len(objs) != label.count(".") + 1:
            continue
        obj = objs[-1]
        if est.is_estimator(obj) and id(obj) not in found:
            found[id(obj)] = (label, obj)
        if len(found) >= MAX_ESTIMATORS:
            break
    inner = {id(e) for _, obj in found.values() for e in est.nested(obj)}
    return [pair for key, pair in found.items() if key not in inner]


# -- params -------------------------------------------------------------------------------------
def _add(out: dict[str, object], name: str, value: object) -> None:
    """Set ``name``; a second, different value gets ``name.2`` (two ``Dense(activation=...)``)."""
    key, n = name, 1
    while key in out and param_string(out[key]) != param_string(value):
        n += 1
        key = f"{name}.{n}"
    out.setdefault(key, value)


def _settle(loose: list[tuple[str, object, str]], out: dict[str, object]) -> None:
    """Plain names where they are unambiguous, ``owner.name`` where sources disagree."""
    by_name: dict[str, list[tuple[object, str]]] = {}
    for name, value, owner in loose:
        by_name.setdefault(name, []).append((value, owner))
    for name, entries in by_name.items():
        texts = {param_string(v) for v, _ in entries}
        if len(texts) == 1 and (name not in out or param_string(out[name]) in texts):
            out.setdefault(name, entries[0][0])
            continue
        for value, owner in entries:
            _add(out, f"{owner}.{name}", value)


def _call_literals(site: CallSite, cls: object) -> dict[str, object]:
    """The literal arguments of a call to ``cls`` (a class or function) that differ from its defaults."""
    named = dict(site.keywords)
    positional = est.positional_names(cls)
    for i, value in site.positional.items():
        if i < len(positional):
            named.setdefault(positional[i], value)
    defaults = est.signature_defaults(cls)
    return {k: v for k, v in named.items()
            if not (k in defaults and defaults[k] is not inspect.Parameter.empty and est.same(v, defaults[k]))}


def _best_shown(analysis: CellAnalysis, ns: dict, displayed: object) -> dict[str, object]:
    """``grid.best_params_`` as the cell's displayed value: the search's best params."""
    last = analysis.last
    if isinstance(last, ast.Attribute) and last.attr == "best_params_" and isinstance(displayed, dict):
        label = _dotted(last.value, ns)
        if label:
            return {f"{label}.best.{k}": est.describe(v) for k, v in displayed.items()}
    return {}


def infer_params(analysis: CellAnalysis, ns: dict, bound: set[str],
                 displayed: object = None) -> tuple[dict[str, object], int]:
    """The cell's params (name -> value) and how many were left out past ``MAX_PARAMS``."""
    kinds = _kinds(analysis, ns)
    out: dict[str, object] = dict(analysis.params)
    loose: list[tuple[str, object, str]] = []
    for label, obj in captured(analysis, ns, bound, kinds):
        loose += [(k, v, label) for k, v in est.hyperparams(obj).items()]
        if est.is_search(obj):
            for k, v in est.best_params(obj).items():
                out.setdefault(f"{label}.best.{k}", v)
    covered = [(name.rsplit("__", 1)[-1], value) for name, value, _ in loose]
    calls: dict[str, object] = {}
    for site, (kind, target) in zip(analysis.calls, kinds):
        if kind == ESTIMATOR:
            for k, v in _call_literals(site, target).items():  # type: ignore[arg-type]
                if not any(k == c and est.same(v, cv) for c, cv in covered):
                    loose.append((k, v, site.callee[-1]))
        elif kind == CONFIG:
            loose += [(k, v, "dict") for k, v in site.keywords.items()]
        elif kind == CALL:
            qualifier = _qualifier(site.callee, ns)
            literals = site.keywords if target is None else _call_literals(site, target)  # type: ignore[arg-type]
            for k, v in literals.items():
                _add(calls, f"{qualifier}.{k}", v)
    for k, v in _best_shown(analysis, ns, displayed).items():
        out.setdefault(k, v)
    _settle(loose, out)
    for k, v in calls.items():
        _add(out, k, v)
    kept = dict(list(out.items())[:MAX_PARAMS])
    return kept, len(out) - len(kept)


# -- metrics ------------------------------------------------------------------------------------
def _cv_items(name: str, callee: str, value: object) -> Iterator[tuple[str, float]]:
    if callee == "cross_val_score":
        yield from score_summary(name, value)
    elif callee == "cross_validate" and isinstance(value, dict):
        for key, scores in value.items():
            if isinstance(key, str) and key.startswith(("test_", "train_")):
                yield from score_summary(f"{name}.{key}", scores)


def expression_name(node: ast.expr, ns: dict) -> str:
    """A metric name for a displayed expression (see the module's docstring)."""
    if isinstance(node, ast.Call) and node.args:
        callee = chain(node.func)
        if callee and callee[-1] in _UNWRAP and len(callee) == 1:
            return expression_name(node.args[0], ns)
        if len(node.args) == 1 and _reducer(callee, ns):  # np.mean(scores) reads as scores.mean()
            inner = expression_name(node.args[0], ns)
            if inner != FALLBACK_METRIC:
                return f"{inner}.{callee[-1]}"
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, (ast.Name, ast.Attribute)):
        return _dotted(_strip_calls(target), ns) or FALLBACK_METRIC
    return FALLBACK_METRIC


def _reducer(callee: tuple[str, ...], ns: dict) -> bool:
    """A builtin or numpy function (not a method): ``len``, ``max``, ``np.mean``, ``np.median``."""
    objs = _resolve(callee, ns) if callee else []
    if len(objs) != len(callee) or not all(isinstance(o, types.ModuleType) for o in objs[:-1]):
        return False
    home = _home(objs)
    return home == "builtins" or (_under(home, ("numpy",)) and not _under(home, MODEL_MODULES))


def _strip_calls(node: ast.AST) -> ast.AST:
    """``cross_val_score(m, X, y).mean`` -> ``cross_val_score.mean``;
    ``s['test_score'].mean`` -> ``s.test_score.mean``."""
    if isinstance(node, ast.Attribute):
        return ast.Attribute(value=_strip_calls(node.value), attr=node.attr, ctx=ast.Load())
    if isinstance(node, ast.Call):
        return _strip_calls(node.func)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        if isinstance(node.slice.value, (str, int)) and not isinstance(node.slice.value, bool):
            return ast.Attribute(value=_strip_calls(node.value), attr=str(node.slice.value), ctx=ast.Load())
    return node


def displayed_metrics(analysis: CellAnalysis, ns: dict, displayed: object) -> list[tuple[str, float]]:
    """Metrics from the value the cell displayed (None: nothing was displayed)."""
    last = analysis.last
    if last is None or displayed is None:
        return []
    if isinstance(last, ast.Name) and last.id in analysis.params:
        return []  # ``lr = 0.1`` then ``lr``: a param shown, not a score
    if isinstance(last, ast.Call):
        callee = chain(last.func)
        if callee and callee[-1] in CV_FUNCTIONS:
            return list(_cv_items(_qualifier(callee, ns), callee[-1], displayed))
    scalar = real_scalar(displayed)
    if scalar is None:
        return []
    return [(expression_name(last, ns), scalar)]


def infer_metrics(analysis: CellAnalysis, ns: dict, names: set[str],
                  displayed: object = None) -> list[tuple[str, float]]:
    """Metrics besides bound scalars: cross-validation scores, searches' best scores, the displayed value."""
    items: list[tuple[str, float]] = []
    for name in sorted(names):
        callee = analysis.bound_from.get(name)
        if callee and callee[-1] in CV_FUNCTIONS and name in ns:
            items += _cv_items(name, callee[-1], ns[name])
    for label, obj in captured(analysis, ns, names):
        if est.is_search(obj):
            score = real_scalar(est.best_score(obj))
            if score is not None:
                items.append((f"{label}.best_score", score))
    return items + displayed_metrics(analysis, ns, displayed)
