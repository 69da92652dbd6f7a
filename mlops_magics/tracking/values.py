"""How Python values become MLflow params and metrics.

Params are canonical strings: ``repr`` for numbers and containers (so ``7`` and
``7.0`` stay distinct), the text itself for strings. Metrics are finite real
scalars: int, float, numpy scalars and 0-d arrays, never bool; 1-d score arrays
(cross-validation folds) give ``name.mean`` and ``name.std``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from ..naming import MAX_PARAM_VAL_LENGTH, clip, sanitize_key

MAX_DICT_METRICS = 200


def _is_numpy(value: object) -> bool:
    return type(value).__module__ == "numpy"


def param_string(value: object) -> str:
    """The canonical string MLflow stores for a param value."""
    if isinstance(value, str):
        text = value
    elif _is_numpy(value) and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        text = repr(value.item())  # type: ignore[attr-defined]
    elif isinstance(value, (set, frozenset)):
        text = "{" + ", ".join(sorted(repr(v) for v in value)) + "}"
    else:
        text = repr(value)
    return clip(text, MAX_PARAM_VAL_LENGTH)


def real_scalar(value: object) -> float | None:
    """``value`` as a float when it is a real scalar (finite or not), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    if _is_numpy(value):
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind in "iuf" and getattr(value, "ndim", 1) == 0 and kind:
            return float(value)  # type: ignore[arg-type]
    return None


def metric_items(name: str, value: object) -> Iterator[tuple[str, float]]:
    """The metrics ``name = value`` gives: one scalar, or ``name.key`` for dicts of scalars."""
    scalar = real_scalar(value)
    if scalar is not None:
        yield sanitize_key(name), scalar
        return
    if isinstance(value, Mapping) and 0 < len(value) <= MAX_DICT_METRICS:
        for key, sub in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                continue
            inner = real_scalar(sub)
            if inner is not None:
                yield sanitize_key(f"{name}.{key}"), inner
            elif isinstance(sub, Mapping) and len(sub) <= MAX_DICT_METRICS:
                for k2, v2 in sub.items():
                    inner2 = real_scalar(v2)
                    if inner2 is not None and isinstance(k2, (str, int)):
                        yield sanitize_key(f"{name}.{key}.{k2}"), inner2


def score_summary(name: str, value: object) -> Iterator[tuple[str, float]]:
    """``name.mean`` and ``name.std`` of a 1-d array of scores (cross-validation folds)."""
    if not _is_numpy(value) or getattr(value, "ndim", 0) != 1 or not getattr(value, "size", 0):
        return
    if getattr(getattr(value, "dtype", None), "kind", "") not in ("i", "u", "f"):
        return
    yield sanitize_key(f"{name}.mean"), float(value.mean())  # type: ignore[attr-defined]
    yield sanitize_key(f"{name}.std"), float(value.std())  # type: ignore[attr-defined]
