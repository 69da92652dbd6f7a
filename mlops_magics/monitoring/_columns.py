"""Named columns out of whatever ``mm.profile`` and ``mm.drift`` accept, loaded one at a time.

A column is numeric (ints, floats, datetimes and durations as seconds) or categorical
(strings, booleans, pandas categories, mixed objects), or empty when it holds no value
to go by. NaN, None, NaT and +-inf count as missing; numeric values are kept sorted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import naming
from ..errors import MlopsError
from ._dist import Dist

NUMERIC, CATEGORICAL, EMPTY, UNSUPPORTED = "numeric", "categorical", "empty", "unsupported"
_NUMBERS = {"integer", "floating", "mixed-integer-float", "decimal"}
_OBJECT = np.dtype(object)  # an np.dtype instance skips the catch_warnings in pandas_dtype()
WIDE_COLUMNS = 64  # a plain 2-D array wider than this is summarised as one column of all its values
WIDE_NAME = "values"


class DataError(MlopsError, TypeError):
    """Data that cannot be profiled or compared."""


@dataclass(eq=False)
class ColumnCounts:
    """What a column is and how full: a loaded column and a column's profile both start so."""

    name: str
    kind: str
    dtype: str
    rows: int
    missing: int

    @property
    def count(self) -> int:
        return self.rows - self.missing


@dataclass(eq=False)
class RawColumn(ColumnCounts):
    """One column's content: ``dist`` for numbers, ``counts`` (value -> count) for categories."""

    dist: Dist | None = None
    counts: pd.Series | None = None  # index: category as str, sorted by count, descending
    note: str = ""


def columns(obj: object) -> tuple[list[tuple[str, Callable[[], RawColumn]]], int]:
    """``([(name, loader), ...], rows)``; each loader reads that one column when called."""
    if isinstance(obj, pd.DataFrame):
        names = _names(obj.columns)
        return [(n, _loader(n, obj.iloc[:, i])) for i, n in enumerate(names)], len(obj)
    if isinstance(obj, pd.Series):
        name = "value" if obj.name is None else str(obj.name)
        return [(name, _loader(name, obj))], len(obj)
    if isinstance(obj, np.ndarray):
        return _numpy(obj)
    module = type(obj).__module__.split(".")[0]
    if module == "pyarrow":
        return _arrow(obj)
    if isinstance(obj, Mapping):
        return columns(pd.DataFrame(obj))
    if hasattr(obj, "to_pandas"):  # polars and friends
        return columns(obj.to_pandas())
    raise DataError(f"cannot profile a {type(obj).__name__}: pass a DataFrame, Series, "
                    "numpy array or Arrow table")


def _names(labels) -> list[str]:
    names = ["/".join(map(str, label)) if isinstance(label, tuple) else str(label) for label in labels]
    return naming.distinct_keys(names, sep=".")  # duplicate labels stay apart


def _numpy(arr: np.ndarray):
    if arr.dtype.names:  # structured
        return columns(pd.DataFrame(arr))
    if arr.ndim == 1:
        return [("value", _loader("value", arr))], len(arr)
    if arr.ndim == 2 and arr.shape[1] > WIDE_COLUMNS:
        # A distance matrix or an image batch: per-column summaries would be megabytes of
        # profile and a thousand meaningless drift tests; the distribution of all values is not.
        note = f"all values of a {arr.shape[0]:,} x {arr.shape[1]:,} array (wider than {WIDE_COLUMNS} columns)"
        return [(WIDE_NAME, _loader(WIDE_NAME, arr.reshape(-1), note=note))], arr.size
    if arr.ndim == 2:
        return [(str(i), _loader(str(i), arr[:, i])) for i in range(arr.shape[1])], arr.shape[0]
    raise DataError(f"cannot profile a {arr.ndim}-D array: pass 1-D or 2-D data")


def _arrow(obj):
    import pyarrow as pa

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        names = _names(obj.column_names)
        return [(n, _loader(n, obj.column(i), arrow=True)) for i, n in enumerate(names)], obj.num_rows
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return [("value", _loader("value", obj, arrow=True))], len(obj)
    raise DataError(f"cannot profile a {type(obj).__name__}: pass a pyarrow Table or Array")


def _loader(name: str, values, arrow: bool = False, note: str = "") -> Callable[[], RawColumn]:
    def load() -> RawColumn:
        series = values.to_pandas() if arrow else values
        col = load_column(name, series)
        col.note = col.note or note
        return col

    return load


def load_column(name: str, values) -> RawColumn:
    """Read one column (a Series or 1-D array) into a ``RawColumn``; never raises on content."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    dtype, rows = str(s.dtype), len(s)
    try:
        numbers = _as_numbers(s)
        if numbers is not None:
            return _numeric(name, dtype, rows, numbers)
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "empty":
            return RawColumn(name, EMPTY, dtype, rows, rows)
        return _categorical(name, dtype, s)
    except (TypeError, ValueError) as exc:
        return RawColumn(name, UNSUPPORTED, dtype, rows, 0, note=f"{type(exc).__name__}: {exc}"[:200])


def _as_numbers(s: pd.Series) -> np.ndarray | None:
    """float64 values with NaN for missing, or None when the column is not numeric."""
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return None
    if isinstance(dt, pd.DatetimeTZDtype):
        s, dt = s.dt.tz_convert("UTC").dt.tz_localize(None), None
    if dt is None or pd.api.types.is_datetime64_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt):
        kind = "datetime64[ns]" if dt is None or pd.api.types.is_datetime64_dtype(dt) else "timedelta64[ns]"
        raw = s.to_numpy(dtype=kind).view(np.int64)
        out = raw.astype(np.float64) / 1e9  # seconds (since the epoch)
        out[raw == np.iinfo(np.int64).min] = np.nan  # NaT
        return out
    if pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_complex_dtype(dt):
        return _floats(s.array) if _masked(s.array) else s.to_numpy(dtype=np.float64, na_value=np.nan)
    if dt == object and pd.api.types.infer_dtype(s, skipna=True) in _NUMBERS:
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def _masked(arr) -> bool:
    return isinstance(getattr(arr, "_data", None), np.ndarray) and isinstance(getattr(arr, "_mask", None), np.ndarray)


def _floats(arr) -> np.ndarray:
    """A nullable (Int64, Float64) array as float64 with NaN for NA: its values and mask read
    directly, as its own ``to_numpy`` enters ``warnings.catch_warnings``."""
    out = arr._data.astype(np.float64)
    out[arr._mask] = np.nan
    return out


def _numeric(name: str, dtype: str, rows: int, values: np.ndarray) -> RawColumn:
    nan = int(np.count_nonzero(np.isnan(values)))
    valid = np.sort(values)[: rows - nan]  # NaN sort last, -inf first, +inf after the finite values
    lo = int(np.searchsorted(valid, -np.inf, side="right"))
    hi = int(np.searchsorted(valid, np.inf, side="left"))
    finite = valid[lo:hi]
    return RawColumn(name, NUMERIC if len(finite) else EMPTY, dtype, rows, rows - len(finite),
                     dist=Dist.from_sorted(finite, summarise=False))


def _categorical(name: str, dtype: str, s: pd.Series) -> RawColumn:
    # factorize and numpy only: Series.value_counts and pd.Index(dtype=object) enter
    # warnings.catch_warnings inside pandas, which resets the record of warnings already
    # shown for the whole process when a profile is computed in a background thread.
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        found = np.bincount(codes[codes >= 0], minlength=len(uniques))
        labels = [_label(u) for u in uniques]  # iterated: np.asarray of a nullable array enters catch_warnings
    except TypeError:  # unhashable values (lists): count their text
        labels, found = _count_text(s)
    missing = len(s) - int(found.sum())
    if not len(labels) or not found.any():
        return RawColumn(name, EMPTY, dtype, len(s), len(s))
    if len(set(labels)) != len(labels):  # 1 and "1" are one category
        merged: dict[str, int] = {}
        for label, n in zip(labels, found.tolist()):
            merged[label] = merged.get(label, 0) + n
        labels, found = list(merged), np.fromiter(merged.values(), dtype=np.int64, count=len(merged))
    order = np.argsort(-found, kind="stable")
    order = order[found[order] > 0]
    index = pd.Index(np.array([labels[i] for i in order], dtype=_OBJECT), dtype=_OBJECT)
    counts = pd.Series(found[order].astype(np.int64), index=index, copy=False)  # no dtype=: pandas would check it in catch_warnings
    return RawColumn(name, CATEGORICAL, dtype, len(s), missing, counts=counts)


def _count_text(s: pd.Series) -> tuple[list[str], np.ndarray]:
    values = s.to_numpy(dtype=_OBJECT)
    merged: dict[str, int] = {}
    for value, missing in zip(values, pd.isna(values)):
        if not (isinstance(missing, (bool, np.bool_)) and missing):
            label = _label(value)
            merged[label] = merged.get(label, 0) + 1
    return list(merged), np.fromiter(merged.values(), dtype=np.int64, count=len(merged))


def _label(value: object) -> str:
    return value if isinstance(value, str) else str(value)
