"""Hyperparameters of estimators and the results of fitted searches, by duck typing.

An estimator is any instance whose class has ``get_params`` (scikit-learn and the
libraries that follow its API: XGBoost, LightGBM, skorch, ...). Nothing here imports
scikit-learn. Defaults come from the signature of the class's ``__init__`` (the
scikit-learn convention: ``__init__`` stores its arguments unchanged), so no
estimator is ever constructed and no library code runs except ``get_params()``.

Nested estimators (pipelines, column transformers, a search's ``estimator``) are
flattened with scikit-learn's ``__`` names: ``estimator__polynomialfeatures__degree``.
"""

from __future__ import annotations

import functools
import inspect
import math

MAX_DEPTH = 5
MAX_OBJECT_REPR = 250
MAX_ARRAY_ITEMS = 1000
_EMPTY = inspect.Parameter.empty


def is_estimator(obj: object) -> bool:
    """An instance (not a class) whose class has ``get_params``."""
    if isinstance(obj, type):
        return False
    return callable(inspect.getattr_static(type(obj), "get_params", None))


def is_estimator_class(obj: object) -> bool:
    return isinstance(obj, type) and callable(inspect.getattr_static(obj, "get_params", None))


def is_search(obj: object) -> bool:
    """A fitted search (GridSearchCV, RandomizedSearchCV, Halving*, ...): ``best_score_`` and ``best_params_``."""
    state = getattr(obj, "__dict__", None)
    return is_estimator(obj) and isinstance(state, dict) and "best_params_" in state and "best_score_" in state


def signature_defaults(cls: object) -> dict[str, object]:
    """``{name: default}`` of ``cls(...)`` (a class or function); no default maps to ``inspect.Parameter.empty``."""
    try:
        return _defaults(cls)
    except TypeError:  # unhashable: not cached
        return _defaults.__wrapped__(cls)


@functools.lru_cache(maxsize=512)
def _defaults(cls: object) -> dict[str, object]:
    try:
        sig = inspect.signature(cls)  # type: ignore[arg-type]
    except Exception:
        return {}
    return {name: p.default for name, p in sig.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def positional_names(cls: object) -> list[str]:
    """Names of the parameters ``cls(...)`` takes by position, in order."""
    try:
        sig = inspect.signature(cls)  # type: ignore[arg-type]
    except Exception:
        return []
    return [name for name, p in sig.parameters.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def same(value: object, default: object) -> bool:
    """``value`` equals ``default`` as a hyperparameter (``1`` == ``1.0``, nan == nan, never True == 1)."""
    if value is default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):
        both_nan = isinstance(value, float) and isinstance(default, float) and math.isnan(value) and math.isnan(default)
        return both_nan or value == default
    if type(value) is not type(default):
        return False
    if isinstance(value, (str, bytes, tuple, list, dict, type(None))):
        try:
            return bool(value == default)
        except Exception:
            return False
    return False


def describe(value: object, depth: int = 0) -> object:
    """A value fit for a param: literals as they are (numpy ones as Python's, so a grid reads
    ``[1, 2]`` not a wrapped ``array(...)``), functions by name, other objects by a short repr."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (set, frozenset)) or (isinstance(value, (list, tuple, dict)) and depth >= MAX_DEPTH):
        return value
    if isinstance(value, dict):
        return {k: describe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [describe(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if type(value).__module__ == "numpy":
        size = getattr(value, "size", 1)
        if hasattr(value, "tolist") and size <= MAX_ARRAY_ITEMS:
            return value.tolist()
        return value  # a big array: values.param_string clips its repr
    if inspect.isclass(value) or inspect.isroutine(value):
        return getattr(value, "__qualname__", None) or getattr(value, "__name__", type(value).__name__)
    text = _safe_repr(value)
    if text is None or " at 0x" in text or len(text) > MAX_OBJECT_REPR:
        return type(value).__name__  # an address or a data dump says nothing stable
    return text


def _safe_repr(value: object) -> str | None:
    try:
        return repr(value)
    except Exception:
        return None


def _own_params(obj: object) -> dict[str, object]:
    try:
        params = obj.get_params(deep=False)  # type: ignore[attr-defined]
    except TypeError:
        try:
            params = obj.get_params()  # type: ignore[attr-defined]
        except Exception:
            return {}
    except Exception:
        return {}
    return dict(params) if isinstance(params, dict) else {}


def _named_steps(value: object) -> list[tuple[str, object]] | None:
    """``[(name, estimator, ...), ...]`` (Pipeline steps, ColumnTransformer transformers, Voting estimators)."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    if all(isinstance(t, tuple) and len(t) >= 2 and isinstance(t[0], str) for t in value):
        if any(is_estimator(t[1]) for t in value):
            return [(t[0], t[1]) for t in value]
    return None


def hyperparams(obj: object, prefix: str = "", depth: int = 0) -> dict[str, object]:
    """Non-default hyperparameters of ``obj``, nested estimators flattened as ``outer__inner``."""
    out: dict[str, object] = {}
    if depth > MAX_DEPTH:
        return out
    defaults = signature_defaults(type(obj))
    for name, value in _own_params(obj).items():
        key = prefix + name
        if is_estimator(value):
            out.update(hyperparams(value, key + "__", depth + 1))
            continue
        steps = _named_steps(value)
        if steps is not None:
            for step, est in steps:
                if is_estimator(est):
                    out.update(hyperparams(est, f"{prefix}{step}__", depth + 1))
            continue
        default = defaults.get(name, _EMPTY)
        if default is not _EMPTY and same(value, default):
            continue
        out[key] = describe(value)
    return out


def nested(obj: object, depth: int = 0) -> list[object]:
    """The estimators inside ``obj`` (not ``obj`` itself)."""
    found: list[object] = []
    if depth > MAX_DEPTH:
        return found
    for value in _own_params(obj).values():
        inner = [value] if is_estimator(value) else [est for _, est in _named_steps(value) or []]
        for est in inner:
            if is_estimator(est):
                found.append(est)
                found += nested(est, depth + 1)
    return found


def best_params(search: object) -> dict[str, object]:
    params = getattr(search, "__dict__", {}).get("best_params_")
    return {str(k): describe(v) for k, v in params.items()} if isinstance(params, dict) else {}


def best_score(search: object) -> object:
    return getattr(search, "__dict__", {}).get("best_score_")
