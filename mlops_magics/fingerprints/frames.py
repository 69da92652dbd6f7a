"""Fingerprints of pandas DataFrame, Series and Index, column by column.

Columns are hashed one at a time from the arrays pandas already holds (numpy blocks,
masked arrays, Arrow chunks), so the digest is the same however pandas has laid the
frame out in blocks. Imported only when pandas data is met.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlops_magics.fingerprints import core as _fingerprint_core
from mlops_magics.fingerprints.core import (
    Column,
    Parts,
    canonical,
    dtype_name,
    le_dtype,
    run_tasks,
)
from mlops_magics.fingerprints.arrays import array_column
from mlops_magics.fingerprints.values import (
    NestedHook,
    Unsupported,
    object_column,
    string_column,
)

_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)
_RANGE_CHUNK = 1 << 18
_TILE_BYTES = 1 << 19  # a tile of a strided block, transposed in L2

Task = Callable[[], tuple[bytes, int]]


def pandas_kind(obj: Any) -> str:
    return f"{type(obj).__module__.split('.')[0]}.{type(obj).__name__}"


def frame_parts(df: pd.DataFrame, nested: NestedHook) -> Parts:
    columns = [(label, s.array, s.dtype) for label, s in df.items()]
    levels = _index_levels(df.index)
    schema = tuple((_label(label), dtype_str(dtype)) for label, _, dtype in columns)
    structure = (
        "frame",
        tuple((label, dtype_str(dtype)) for label, _, dtype in columns),
        tuple(df.columns.names),
        tuple((name, dtype_str(dtype)) for name, _, dtype in levels),
    )
    parts = Parts(pandas_kind(df), "pandas.DataFrame", tuple(df.shape), schema, structure)
    parts.add_columns(_frame_columns(df, columns, levels, nested))
    return parts


def _frame_columns(df: pd.DataFrame, columns: list, levels: list, nested: NestedHook) -> list:
    """Digests of the index levels then the columns, hashed on the worker threads."""
    # Columns strided through a 2-D block (copy=False, a transpose) are read a tile of the
    # block at a time: one by one, each column would cost a pass over the whole block.
    blocks = _strided_blocks(df)
    done = {pos for positions, _ in blocks for pos in positions}
    first = len(levels)
    tasks = [_task(values, dtype, nested, "index") for _, values, dtype in levels]
    owners = [[i] for i in range(first)]
    for pos, (label, values, dtype) in enumerate(columns):
        if pos not in done:
            tasks.append(_task(values, dtype, nested, f"[{label!r}]"))
            owners.append([first + pos])
    for positions, values in blocks:
        for rows in _split(len(positions)):
            tasks.append(_rows_task(values[rows]))
            owners.append([first + pos for pos in positions[rows]])
    slots: list = [None] * (first + len(columns))
    for owned, results in zip(owners, run_tasks(tasks, sum(_weight(v) for _, v, _ in columns))):
        for pos, result in zip(owned, results if isinstance(results, list) else [results]):
            slots[pos] = result
    return slots


def series_parts(s: pd.Series, nested: NestedHook) -> Parts:
    levels = _index_levels(s.index)
    dtype = dtype_str(s.dtype)
    structure = ("series", s.name, dtype, tuple((name, dtype_str(d)) for name, _, d in levels))
    parts = Parts(pandas_kind(s), "pandas.Series", (len(s),), ((_label(s.name), dtype),), structure)
    tasks = [_task(values, d, nested, "index") for _, values, d in levels]
    tasks.append(_task(s.array, s.dtype, nested, ""))
    parts.add_columns(run_tasks(tasks, _weight(s.array)))
    return parts


def index_parts(idx: pd.Index, nested: NestedHook) -> Parts:
    levels = _index_levels(idx)
    family = "pandas.MultiIndex" if isinstance(idx, pd.MultiIndex) else "pandas.Index"
    schema = tuple((_label(name), dtype_str(d)) for name, _, d in levels)
    structure = ("index", tuple((name, dtype_str(d)) for name, _, d in levels))
    parts = Parts(pandas_kind(idx), family, (len(idx),), schema, structure)
    parts.add_columns(run_tasks([_task(values, d, nested, "") for _, values, d in levels], 0))
    return parts


def dtype_str(dtype: Any) -> str:
    """A dtype as written in schemas: pandas' own name, categories' dtype included."""
    if isinstance(dtype, np.dtype):
        return dtype_name(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        ordered = ", ordered" if dtype.ordered else ""
        return f"category[{dtype_str(dtype.categories.dtype)}{ordered}]"
    return str(dtype)


def _label(name: Any) -> str:
    return "" if name is None else str(name)


def _weight(values: Any) -> int:
    try:
        return int(values.nbytes)
    except Exception:
        return 0


def _strided_blocks(df: pd.DataFrame) -> list[tuple[list[int], np.ndarray]]:
    """``(column positions, 2-D values)`` of numeric blocks whose columns are strided."""
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # another pandas: the per-column path is still right
        return []
    out = []
    for blk in blocks:
        v = blk.values
        if (isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] > 1
                and v.dtype.kind in "biufc" and not v.flags.c_contiguous):
            out.append((list(blk.mgr_locs.as_array), v))
    return out


def _split(n: int) -> list[slice]:
    """Rows of a block split for the worker threads."""
    parts = min(n, _fingerprint_core.cpu_count())
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _rows_task(values: np.ndarray) -> Callable[[], list[tuple[bytes, int]]]:
    """Digests of each row (a frame column) of a 2-D block, read a tile at a time.

    Gives the digests array_column gives each row alone: same streams, other chunking.
    """
    def run() -> list[tuple[bytes, int]]:
        le = le_dtype(values.dtype)
        cols = [Column("fixed", values.shape[1], "v") for _ in range(values.shape[0])]
        step = max(1, _TILE_BYTES // (values.shape[0] * values.dtype.itemsize))
        for i in range(0, values.shape[1], step):
            tile = np.ascontiguousarray(values[:, i : i + step], dtype=le)
            for col, row in zip(cols, tile):
                col.feed("v", canonical(row))
        return [col.result() for col in cols]

    return run


def _index_levels(idx: pd.Index) -> list[tuple[Any, Any, Any]]:
    """``(name, values, dtype)`` for each level; a RangeIndex stays lazy as a range."""
    if isinstance(idx, pd.MultiIndex):
        levels = [idx.get_level_values(i) for i in range(idx.nlevels)]
        return [(name, lv.array, lv.dtype) for name, lv in zip(idx.names, levels)]
    if isinstance(idx, pd.RangeIndex):
        return [(idx.name, range(idx.start, idx.stop, idx.step), idx.dtype)]
    return [(idx.name, idx.array, idx.dtype)]


def _task(values: Any, dtype: Any, nested: NestedHook, where: str) -> Task:
    def run() -> tuple[bytes, int]:
        try:
            return column(values, dtype, nested)
        except Unsupported as exc:
            exc.path.insert(0, where)
            raise

    return run


def column(values: Any, dtype: Any, nested: NestedHook | None) -> tuple[bytes, int]:
    """Digest of one pandas array (the ``.array`` of a Series or Index)."""
    if isinstance(values, range):
        return _range_column(values)
    if isinstance(dtype, np.dtype):
        return array_column(np.asarray(values), nested)
    if isinstance(dtype, pd.CategoricalDtype):
        col = Column("category", len(values), "v")
        col.feed_array("v", np.asarray(values.codes))
        col.child(column(values.categories.array, values.categories.dtype, nested))
        return col.result()
    if isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):
        return array_column(np.asarray(values.asi8), nested)
    if isinstance(dtype, pd.IntervalDtype):
        col = Column("interval", len(values), "")
        for side in (values.left, values.right):
            col.child(column(side.array, side.dtype, nested))
        return col.result()
    if isinstance(values, _MASKED):
        return _masked_column(values)
    if isinstance(dtype, pd.StringDtype):
        return _string_dtype_column(values, nested)
    if isinstance(dtype, pd.SparseDtype):
        return array_column(np.asarray(values), nested)
    if hasattr(values, "__arrow_array__"):  # ArrowDtype and Arrow-backed extensions
        from mlops_magics.fingerprints.arrow import chunked_column

        return chunked_column(values.__arrow_array__())
    return object_column(np.asarray(values, dtype=object), nested)


def _range_column(r: range) -> tuple[bytes, int]:
    """The same digest as the materialised int64 values, built a slice at a time."""
    col = Column("fixed", len(r), "v")
    for i in range(0, len(r), _RANGE_CHUNK):
        part = r[i : i + _RANGE_CHUNK]
        col.feed_array("v", np.arange(part.start, part.stop, part.step, dtype=np.int64))
    return col.result()


def _masked_column(values: Any) -> tuple[bytes, int]:
    data, mask = getattr(values, "_data", None), getattr(values, "_mask", None)
    if data is None or mask is None:  # the public way, with a copy
        mask = np.asarray(values.isna())
        data = values.to_numpy(dtype=values.dtype.numpy_dtype, na_value=0)
    col = Column("masked", len(values), "vm")
    nulls = np.flatnonzero(mask)
    if len(nulls):  # what lies under a mask is not data
        data = data.copy()
        data[nulls] = 0
    col.feed_array("v", data)
    col.feed("m", nulls.astype(np.int64))
    return col.result()


def _string_dtype_column(values: Any, nested: NestedHook | None) -> tuple[bytes, int]:
    """pandas string dtypes: one digest whether stored in Arrow or in Python objects."""
    if values.dtype.storage == "pyarrow":
        from mlops_magics.fingerprints.arrow import chunked_column

        return chunked_column(values.__arrow_array__())
    objects = np.asarray(values, dtype=object)
    hashed = string_column(objects, tag="string", null_tags=False)
    return hashed if hashed is not None else object_column(objects, nested)
