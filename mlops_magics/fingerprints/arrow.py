"""Fingerprints of pyarrow and polars data, read straight from Arrow buffers.

A column is hashed chunk by chunk into one set of streams, with string offsets rebased
and slices honoured, so the same values give the same digest whatever the chunking,
slicing or dictionary layout. Imported only when pyarrow data is met.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_magics.fingerprints.core import Column, Parts, canonical, run_tasks
from mlops_magics.fingerprints.values import (
    encoded_column,
    feed_strings,
    is_null_like,
)

_FLOATS = {2: np.float16, 4: np.float32, 8: np.float64}


def array_parts(obj: Any, kind: str) -> Parts:
    """Parts of a pyarrow Array or ChunkedArray (one digest for both)."""
    parts = Parts(kind, "pyarrow.Array", (len(obj),), (("", str(obj.type)),), str(obj.type))
    parts.add_columns([chunked_column(obj)])
    return parts


def table_parts(obj: Any, kind: str) -> Parts:
    """Parts of a pyarrow Table or RecordBatch (one digest for both)."""
    schema = tuple((f.name, str(f.type)) for f in obj.schema)
    parts = Parts(kind, "pyarrow.Table", (obj.num_rows, obj.num_columns), schema, schema)
    tasks = [lambda i=i: chunked_column(obj.column(i)) for i in range(obj.num_columns)]
    parts.add_columns(run_tasks(tasks, obj.get_total_buffer_size()))
    return parts


def polars_parts(obj: Any, kind: str) -> Parts:
    """Parts of a polars DataFrame or Series, through Arrow."""
    import polars as pl

    series = obj.get_columns() if isinstance(obj, pl.DataFrame) else [obj]
    schema = tuple((s.name, str(s.dtype)) for s in series)
    parts = Parts(kind, kind, tuple(obj.shape), schema, schema)
    tasks = [lambda s=s: _polars_column(s) for s in series]
    parts.add_columns(run_tasks(tasks, int(obj.estimated_size())))
    return parts


def _polars_column(s: Any) -> tuple[bytes, int]:
    # Categoricals arrive as Arrow dictionaries, hashed by value: their dictionary may
    # hold every category of a process-wide cache. Object columns are hashed by their Python
    # values: their Arrow form (when there is one) holds the objects' addresses.
    import polars as pl

    if s.dtype == pl.Object:
        return encoded_column("python", s.len(), s.to_list())
    try:
        arr = s.to_arrow()
    except Exception:  # no Arrow form
        return encoded_column("python", s.len(), s.to_list())
    return chunked_column(arr)


def chunked_column(ca: Any) -> tuple[bytes, int]:
    """Digest and bytes hashed of a pyarrow Array or ChunkedArray."""
    chunks: Iterable[Any] = ca.chunks if isinstance(ca, pa.ChunkedArray) else [ca]
    t, n = ca.type, len(ca)
    if isinstance(t, pa.ExtensionType):
        chunks, t = [c.storage for c in chunks], t.storage_type
    if pa.types.is_dictionary(t):
        chunks, t = (c.dictionary_decode() for c in chunks), t.value_type
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        wide = pa.large_string() if pa.types.is_string_view(t) else pa.large_binary()
        chunks, t = (c.cast(wide) for c in chunks), wide
    if _is_binary_like(t):
        return feed_strings("string", _string_chunks(chunks), n, None)
    if pa.types.is_null(t):
        return Column("null", n, "").result()
    if pa.types.is_boolean(t):
        return _fixed(chunks, n, _bool_values)
    width = _byte_width(t)
    if width:
        return _fixed(chunks, n, lambda c: _fixed_values(c, width, t))
    if (pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t)
            or pa.types.is_fixed_size_list(t)):
        chunks = list(chunks)
        hashed = _nested(chunks, n, t)
        if hashed is not None:
            return hashed
    return encoded_column("python", n, chain.from_iterable(c.to_pylist() for c in chunks))


def _is_binary_like(t: Any) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_binary(t) or pa.types.is_large_binary(t))


def _byte_width(t: Any) -> int:
    if pa.types.is_nested(t) or pa.types.is_boolean(t):
        return 0
    try:
        bits = t.bit_width
    except ValueError:
        return 0
    return bits // 8 if bits % 8 == 0 else 0


def _null_positions(chunk: Any, start: int) -> np.ndarray | None:
    if not chunk.null_count:
        return None
    mask = chunk.is_null().to_numpy(zero_copy_only=False)
    return np.flatnonzero(mask).astype(np.int64) + start


def _fixed(chunks: Iterable[Any], n: int, values: Any) -> tuple[bytes, int]:
    col = Column("fixed", n, "vm")
    start = 0
    for chunk in chunks:
        col.feed("v", values(chunk))
        nulls = _null_positions(chunk, start)
        if nulls is not None:
            col.feed("m", nulls)
        start += len(chunk)
    return col.result()


def _bool_values(chunk: Any) -> np.ndarray:
    if chunk.null_count:
        chunk = pc.fill_null(chunk, False)
    return chunk.to_numpy(zero_copy_only=False).view(np.uint8)


def _fixed_values(chunk: Any, width: int, t: Any) -> np.ndarray:
    n = len(chunk)
    buf = chunk.buffers()[1]
    if buf is None:
        return np.zeros(n * width, np.uint8)
    raw = np.frombuffer(buf, np.uint8, count=n * width, offset=chunk.offset * width)
    if chunk.null_count:  # the bytes under a null are undefined: zero them
        raw = raw.reshape(n, width).copy()
        raw[chunk.is_null().to_numpy(zero_copy_only=False)] = 0
        raw = raw.reshape(-1)
    if pa.types.is_floating(t):
        raw = canonical(raw.view(_FLOATS[width]))
    return raw


def _string_chunks(chunks: Iterable[Any]) -> Iterator[tuple[np.ndarray, Any, Any]]:
    total = start = 0
    for chunk in chunks:
        n = len(chunk)
        if not n:
            continue
        nulls = _null_positions(chunk, start)
        if nulls is not None:  # a null may cover bytes: make them empty
            chunk = pc.fill_null(chunk, pa.scalar(b"" if pa.types.is_binary(chunk.type)
                                                  or pa.types.is_large_binary(chunk.type)
                                                  else "", chunk.type))
        bufs = chunk.buffers()
        width = 8 if pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type) else 4
        off = np.frombuffer(bufs[1], f"<i{width}", count=n + 1, offset=chunk.offset * width)
        first, last = int(off[0]), int(off[-1])
        ends = off[1:] if width == 8 and first == total else off[1:].astype(np.int64) + (total - first)
        data = memoryview(bufs[2])[first:last] if bufs[2] is not None else b""
        yield ends, data, nulls
        total += last - first
        start += n


def _nested(chunks: list[Any], n: int, t: Any) -> tuple[bytes, int] | None:
    """Struct and list columns by structure, chunk by chunk; None when a null slot of a
    list hides values (then the caller encodes rows one by one)."""
    struct, fixed = pa.types.is_struct(t), pa.types.is_fixed_size_list(t)
    col = Column("struct" if struct else "fixed-list" if fixed else "list", n, "om")
    children: list[list[Any]] = []
    start = total = 0
    for chunk in chunks:
        nulls = _null_positions(chunk, start)
        if nulls is not None:
            col.feed("m", nulls)
        if struct:  # flatten honours the offset; parent nulls become child nulls
            children.append(chunk.flatten())
        elif fixed:  # embeddings: values in place, no per-row Python
            if nulls is not None:
                return None
            children.append([chunk.flatten()])
        else:
            off = np.asarray(chunk.offsets, dtype=np.int64)
            if nulls is not None and np.diff(off)[nulls - start].any():
                return None
            col.feed("o", off[1:] - off[0] + total)
            total += int(off[-1] - off[0])
            children.append([chunk.values.slice(off[0], off[-1] - off[0])])
        start += len(chunk)
    types = [t.field(i).type for i in range(t.num_fields)] if struct else [t.value_type]
    for i, child_type in enumerate(types):
        col.child(chunked_column(pa.chunked_array([c[i] for c in children], type=child_type)))
    return col.result()


def object_strings(values: np.ndarray, *, tag: str, null_tags: bool) -> Any:
    """String digest of an object array converted in C, or NotImplemented."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError, OverflowError):
        return NotImplemented
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return NotImplemented
    null_objects = None
    if null_tags:
        null_objects = []
        if arr.null_count:
            rows = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
            null_objects = values[rows].tolist()
        if not all(map(is_null_like, null_objects)):  # pyarrow's idea of null is wider
            return NotImplemented
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    return feed_strings(tag, _string_chunks(chunks), len(values), null_objects)
