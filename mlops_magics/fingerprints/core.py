"""Hashing primitives of the fingerprint: canonical streams, columns, final digests.

See the docstring of :mod:`mlops_magics.fingerprints` for the algorithm as a whole. This
module knows nothing about pandas, pyarrow or polars; it only turns numpy arrays and
bytes into xxh3 states, and states into digests.
"""

from __future__ import annotations

import functools
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xxhash

#: Version tag of the digest algorithm. Bump it when any canonical form changes, so an
#: old digest never silently means something else.
PREFIX = "xx3v1:"
DIGEST_HEX = 36 - len(PREFIX)  # 30 hex digits = 120 bits, fits MLflow's 36-char field
SCHEMA_HEX = 16
MAGIC = b"mlops-magics/fingerprint/1\x00"
SCHEMA_MAGIC = b"mlops-magics/schema/1\x00"
COLUMN_MAGIC = b"mlops-magics/column/1\x00"

#: Bytes copied at a time when an array has to be made contiguous or canonical.
CHUNK_BYTES = 1 << 21
#: Below this many bytes in total, threads cost more than they save.
PARALLEL_MIN_BYTES = 8 << 20

_CANON_NAN = {
    2: np.array([np.nan], dtype=np.float16),
    4: np.array([np.nan], dtype=np.float32),
    8: np.array([np.nan], dtype=np.float64),
}
_U64 = struct.Struct("<Q")
# x87 extended precision keeps 10 meaningful bytes in 12 or 16; IEEE quad keeps all 16.
_LONGDOUBLE_BYTES = 10 if np.finfo(np.longdouble).nmant == 63 else np.dtype(np.longdouble).itemsize


def u64(n: int) -> bytes:
    return _U64.pack(n)


@dataclass
class Parts:
    """What a kind handler found: everything but the final digests."""

    kind: str
    family: str  # the kind as far as the digest is concerned (Array and ChunkedArray agree)
    shape: tuple[int, ...] | None
    schema: tuple[tuple[str, str], ...] | None
    structure: Any  # names and dtypes, encodable by _fingerprint_values.encode; no values
    digests: list[bytes] = field(default_factory=list)  # column or stream digests, in order
    nbytes: int = 0

    def add_columns(self, results: Sequence[tuple[bytes, int]]) -> None:
        """Append the digests of hashed columns (``(digest, bytes hashed)`` each), in order."""
        for digest, nbytes in results:
            self.digests.append(digest)
            self.nbytes += nbytes


def finish(parts: Parts, encode: Callable[[Any], bytes]) -> tuple[str, str | None]:
    """Return ``(digest, schema_digest)`` of the parts."""
    family, structure = encode(parts.family), encode(parts.structure)
    # the encodings of the tuples (family, shape, structure) and (family, structure)
    top = xxhash.xxh3_128(MAGIC + b"t" + u64(3) + family + encode(parts.shape) + structure)
    top.update(u64(len(parts.digests)))
    for d in parts.digests:
        top.update(d)
    digest = PREFIX + top.hexdigest()[:DIGEST_HEX]
    if parts.schema is None:
        return digest, None
    sch = xxhash.xxh3_128(SCHEMA_MAGIC + b"t" + u64(2) + family + structure)
    return digest, PREFIX + sch.hexdigest()[:SCHEMA_HEX]


class Column:
    """The canonical streams of one column (or array), hashed as they are fed.

    Streams are named: ``v`` fixed-width values or encoded objects, ``o`` end offsets of
    variable-length values, ``d`` their bytes, ``m`` the int64 row numbers of nulls,
    ``t`` the exact objects that stood for nulls in an object column. Which streams a
    column has depends on its tag alone, and what is fed on its content alone, never on
    chunking or memory layout.
    """

    __slots__ = ("tag", "n", "streams", "children", "nbytes")

    def __init__(self, tag: str, n: int, streams: str = "v") -> None:
        self.tag = tag
        self.n = n
        self.streams = {s: xxhash.xxh3_128() for s in streams}
        self.children: list[bytes] = []
        self.nbytes = 0

    def feed(self, stream: str, data: Any) -> None:
        """Feed a bytes-like object or a contiguous 1-D numpy array as it is."""
        if isinstance(data, np.ndarray):
            data = data.view(np.uint8)
        self.streams[stream].update(data)
        self.nbytes += len(data)

    def feed_array(self, stream: str, arr: np.ndarray) -> None:
        """Feed a fixed-width array's values in C order, little-endian, NaN canonical."""
        for chunk in c_order_chunks(arr):
            if chunk.nbytes >= PARALLEL_MIN_BYTES and _nan_check_alone(chunk):
                self._feed_checking(stream, chunk)
            else:
                self.feed(stream, canonical(chunk))

    def _feed_checking(self, stream: str, chunk: np.ndarray) -> None:
        """Hash a big float chunk while another thread looks for NaN in it.

        Nearly twice as fast on a lone big array; in the rare case a NaN is found the
        state is rolled back and the chunk fed again in canonical form.
        """
        from concurrent.futures import ThreadPoolExecutor

        saved = self.streams[stream].copy()
        with ThreadPoolExecutor(max_workers=1, initializer=_mark_worker) as pool:
            has_nan = pool.submit(lambda: bool(np.isnan(chunk.max())))
            self.feed(stream, chunk)
            if not has_nan.result():
                return
        self.streams[stream] = saved
        self.nbytes -= chunk.nbytes
        self.feed(stream, canonical(chunk))

    def child(self, digest_and_nbytes: tuple[bytes, int]) -> None:
        digest, nbytes = digest_and_nbytes
        self.children.append(digest)
        self.nbytes += nbytes

    def result(self) -> tuple[bytes, int]:
        out = xxhash.xxh3_128(COLUMN_MAGIC)
        tag = self.tag.encode()
        out.update(u64(len(tag)) + tag + u64(self.n))
        for name in sorted(self.streams):
            out.update(name.encode() + self.streams[name].digest())
        out.update(u64(len(self.children)))
        for d in self.children:
            out.update(d)
        return out.digest(), self.nbytes


def le_dtype(dt: np.dtype) -> np.dtype:
    """The little-endian twin of a dtype (itself when byte order does not apply)."""
    return dt.newbyteorder("<") if dt.byteorder in "=>" else dt


@functools.lru_cache(maxsize=256)
def dtype_name(dt: np.dtype) -> str:
    """A dtype's name independent of byte order, and for records of field offsets."""
    if dt.names:
        fields = ", ".join(f"{name!r}: {dtype_name(dt.fields[name][0])}" for name in dt.names)
        return f"record{{{fields}}}"
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return f"{dtype_name(base)}{shape}"
    return str(le_dtype(dt))


def c_order_chunks(arr: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the values of ``arr`` in C order as contiguous little-endian 1-D chunks.

    A contiguous little-endian array is yielded whole, without a copy; anything else
    (strided views, Fortran order, big-endian) is copied about CHUNK_BYTES at a time.
    """
    le = le_dtype(arr.dtype)
    if arr.flags.c_contiguous and arr.dtype == le and arr.dtype.byteorder != ">":
        yield arr.reshape(-1)
        return
    if arr.ndim == 0:
        yield np.ascontiguousarray(arr.reshape(1), dtype=le)
        return
    row_bytes = max(1, arr[:1].nbytes) if arr.shape[0] else 1
    if arr.ndim > 1 and row_bytes >= CHUNK_BYTES:
        for i in range(arr.shape[0]):
            yield from c_order_chunks(arr[i])
        return
    step = max(1, CHUNK_BYTES // row_bytes)
    for i in range(0, arr.shape[0], step):
        yield np.ascontiguousarray(arr[i : i + step], dtype=le).reshape(-1)


def canonical(chunk: np.ndarray) -> np.ndarray:
    """Canonical bytes of a contiguous 1-D chunk: one NaN bit pattern, no padding."""
    kind = chunk.dtype.kind
    if kind not in "fc":
        return chunk
    size = chunk.dtype.itemsize // (2 if kind == "c" else 1)
    flat = chunk.view(np.dtype(f"f{size}") if size in (2, 4, 8) else np.longdouble)
    if flat.size and np.isnan(flat.max()):  # max propagates NaN: a cheap presence test
        flat = flat.copy()
        nan = np.isnan(flat)
        if size in _CANON_NAN:
            flat.view(f"u{size}")[nan] = _CANON_NAN[size].view(f"u{size}")[0]
        else:
            flat[nan] = np.nan
    if size not in _CANON_NAN and _LONGDOUBLE_BYTES < size:  # drop x87 padding bytes
        flat = np.ascontiguousarray(flat.view(np.uint8).reshape(-1, size)[:, :_LONGDOUBLE_BYTES])
    return flat


_worker = threading.local()


def _mark_worker() -> None:
    _worker.busy = True


def _nan_check_alone(chunk: np.ndarray) -> bool:
    """Whether a NaN check may take a thread of its own: plain floats, outside the pool."""
    return (chunk.dtype.kind == "f" and chunk.dtype.itemsize in (4, 8)
            and not getattr(_worker, "busy", False) and cpu_count() > 1)


def run_tasks(tasks: Sequence[Callable[[], Any]], weight: int) -> list[Any]:
    """Run column tasks, on a few threads when there is enough work.

    xxh3 and numpy release the GIL, so columns hash in parallel; results keep the
    order of ``tasks``, so the digest never depends on scheduling.
    """
    workers = min(len(tasks), cpu_count(), 8)
    if workers < 2 or weight < PARALLEL_MIN_BYTES:
        return [task() for task in tasks]
    from concurrent.futures import ThreadPoolExecutor

    # A few tasks per worker balance the load; many tiny ones (a frame of 10,000
    # columns) would cost more in futures than in hashing, so they go in batches.
    size = max(1, len(tasks) // (workers * 4))
    batches = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    with ThreadPoolExecutor(max_workers=workers, initializer=_mark_worker) as pool:
        done = pool.map(lambda batch: [task() for task in batch], batches)
        return [result for batch in done for result in batch]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
