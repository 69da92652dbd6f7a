"""Canonical bytes of plain Python values, and of numpy object arrays.

Every value is written as a one-byte type tag followed by a length-prefixed payload, so
two different values never share an encoding (``1`` and ``1.0``, ``"a"`` and ``b"a"``,
``["ab", "c"]`` and ``["a", "bc"]``). Dicts and sets are written in a canonical order
(sorted by the encoding of their keys or elements), so ``==`` containers get one
encoding. Data objects inside containers (a DataFrame in a dict) are written as their
own fingerprint digest.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import fractions
import math
import pathlib
import struct
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from mlops_magics.fingerprints.core import (
    Column,
    c_order_chunks,
    canonical,
    dtype_name,
    u64,
)

_NAN = struct.pack("<d", math.nan)
_DOUBLE = struct.Struct("<d")
_FLUSH = 1 << 20

#: Returns the raw digest of a data object (DataFrame, array...), or None if it is none.
NestedHook = Callable[[Any], "bytes | None"]


class Unsupported(Exception):
    """A value with no canonical encoding; ``path`` says where it sits."""

    def __init__(self, obj: Any) -> None:
        super().__init__(obj)
        self.obj = obj
        self.path: list[str] = []

    def where(self) -> str:
        return "".join(self.path)


class Cycle(Unsupported):
    """A container that contains itself: no finite encoding."""


class Encoder:
    """Writes canonical encodings into a buffer, optionally draining it into a stream."""

    def __init__(self, nested: NestedHook | None = None, sink: Column | None = None) -> None:
        self.buf = bytearray()
        self.nested = nested
        self.sink = sink
        self._open: set[int] = set()  # containers being written: only to stop cycles
        self._hold = 0

    def bytes_of(self, obj: Any) -> bytes:
        start = len(self.buf)
        self._hold += 1  # no draining while a piece is cut out of the buffer
        try:
            self.write(obj)
        finally:
            self._hold -= 1
        out = bytes(self.buf[start:])
        del self.buf[start:]
        return out

    def drain(self, stream: str = "v") -> None:
        if self.sink is not None and self.buf:
            self.sink.feed(stream, bytes(self.buf))
            self.buf.clear()

    def write(self, obj: Any) -> None:
        handler = _EXACT.get(type(obj))
        if handler is not None:
            handler(self, obj)
        else:
            self._write_other(obj)
        if self.sink is not None and not self._hold and len(self.buf) > _FLUSH:
            self.drain()

    def _text(self, tag: bytes, text: str) -> None:
        raw = text.encode("utf-8", "surrogatepass")
        self.buf += tag + u64(len(raw)) + raw

    def write_items(self, items: Iterable[tuple[Any, Any]]) -> None:
        """Write the values of ``(key, value)`` pairs in order; an error's path names ``[key]``."""
        for key, value in items:
            try:
                self.write(value)
            except Unsupported as exc:
                exc.path.insert(0, f"[{key}]")
                raise

    def _enter(self, obj: Any) -> None:
        """Mark container ``obj`` open while it is written: met again inside itself, it is a cycle."""
        if id(obj) in self._open:
            raise Cycle(obj)
        self._open.add(id(obj))

    def _container(self, obj: Any, tag: bytes, items: Any) -> None:
        self._enter(obj)
        try:
            self.buf += tag + u64(len(obj))
            self.write_items(items)
        finally:
            self._open.discard(id(obj))

    def _sorted(self, obj: Any, tag: bytes, pairs: bool) -> None:
        self._enter(obj)
        try:
            entries = []
            for item in obj.items() if pairs else obj:
                key = item[0] if pairs else item
                try:
                    entry = self.bytes_of(key)
                    if pairs:
                        entry += self.bytes_of(item[1])
                except Unsupported as exc:
                    exc.path.insert(0, f"[{key!r}]" if pairs else "{...}")
                    raise
                entries.append(entry)
            entries.sort()
            self.buf += tag + u64(len(entries))
            for entry in entries:
                self.buf += entry
        finally:
            self._open.discard(id(obj))

    def _write_other(self, obj: Any) -> None:
        if isinstance(obj, enum.Enum):
            self._text(b"E", f"{_type_name(obj)}.{obj.name}")
        elif isinstance(obj, np.generic):
            self._numpy_scalar(obj)
        elif isinstance(obj, bool):
            self.buf += b"T" if obj else b"F"
        elif isinstance(obj, int):
            _write_int(self, int(obj))
        elif isinstance(obj, float):
            _write_float(self, float(obj))
        elif isinstance(obj, str):
            self._text(b"s", str(obj))
        elif isinstance(obj, (dt.datetime, dt.date, dt.time, dt.timedelta)):
            self._text(b"D", f"{_type_name(obj)} {_when(obj)}")
        elif isinstance(obj, (decimal.Decimal, fractions.Fraction, uuid.UUID, pathlib.PurePath)):
            self._text(b"V", f"{_type_name(obj)} {obj}")
        elif _is_pandas_missing(obj):
            self._text(b"P", _type_name(obj))
        elif isinstance(obj, (list, tuple, dict, set, frozenset, bytes, bytearray, complex)):
            _EXACT[_base(obj)](self, obj)  # subclasses of the builtins, as their base
        else:
            self._nested(obj)

    def _nested(self, obj: Any) -> None:
        digest = self.nested(obj) if self.nested is not None else None
        if digest is None:
            raise Unsupported(obj)
        self.buf += b"X" + digest

    def _ndarray(self, obj: np.ndarray) -> None:
        kind = obj.dtype.kind
        if kind not in "biufcmMSUV" or obj.dtype.names:
            self._nested(obj)
            return
        # plain arrays in an object column (embeddings): inline, no digest each
        self._text(b"A", dtype_name(obj.dtype))
        self.buf += u64(obj.ndim) + b"".join(u64(n) for n in obj.shape)
        for chunk in c_order_chunks(obj):
            self.buf += canonical(chunk).view(np.uint8).data

    def _numpy_scalar(self, obj: np.generic) -> None:
        if isinstance(obj, np.void) and obj.dtype.names:
            self._text(b"n", dtype_name(obj.dtype))
            self.write(obj.item())
            return
        arr = np.asarray(obj).reshape(1)
        self._text(b"n", dtype_name(arr.dtype))
        for chunk in c_order_chunks(arr):
            raw = canonical(chunk).view(np.uint8)
            self.buf += u64(len(raw)) + raw.tobytes()


def _write_int(enc: Encoder, n: int) -> None:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    enc.buf += b"i" + u64(len(raw)) + raw


def _write_float(enc: Encoder, x: float) -> None:
    enc.buf += b"f" + (_NAN if x != x else _DOUBLE.pack(x))


def _write_complex(enc: Encoder, z: complex) -> None:
    enc.buf += b"c"
    for part in (z.real, z.imag):
        enc.buf += _NAN if part != part else _DOUBLE.pack(part)


def _type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _when(obj: Any) -> str:
    if isinstance(obj, dt.timedelta) and not hasattr(obj, "isoformat"):
        return f"{obj.days},{obj.seconds},{obj.microseconds}"
    text = obj.isoformat()
    tz = getattr(obj, "tzinfo", None)
    return f"{text} {tz.tzname(obj if isinstance(obj, dt.datetime) else None)}" if tz else text


def _is_pandas_missing(obj: Any) -> bool:
    t = type(obj)
    return t.__module__.startswith("pandas") and t.__name__ in ("NAType", "NaTType")


def _base(obj: Any) -> type:
    for base in (bool, list, tuple, dict, set, frozenset, bytes, bytearray, complex):
        if isinstance(obj, base):
            return base
    raise Unsupported(obj)


_EXACT: dict[type, Callable[[Encoder, Any], None]] = {
    type(None): lambda e, o: e.buf.extend(b"N"),
    bool: lambda e, o: e.buf.extend(b"T" if o else b"F"),
    int: _write_int,
    float: _write_float,
    complex: _write_complex,
    str: lambda e, o: e._text(b"s", o),
    bytes: lambda e, o: e.buf.extend(b"b" + u64(len(o)) + o),
    bytearray: lambda e, o: e.buf.extend(b"B" + u64(len(o)) + o),
    list: lambda e, o: e._container(o, b"l", enumerate(o)),
    tuple: lambda e, o: e._container(o, b"t", enumerate(o)),
    dict: lambda e, o: e._sorted(o, b"d", pairs=True),
    set: lambda e, o: e._sorted(o, b"S", pairs=False),
    frozenset: lambda e, o: e._sorted(o, b"Z", pairs=False),
    np.ndarray: Encoder._ndarray,
}


def encode(obj: Any, nested: NestedHook | None = None) -> bytes:
    """The canonical encoding of a Python value (raises Unsupported)."""
    enc = Encoder(nested)
    enc.write(obj)
    return bytes(enc.buf)


# --- numpy object arrays -----------------------------------------------------------


def is_null_like(x: Any) -> bool:
    """What pandas and pyarrow read as missing in an object column."""
    if x is None or _is_pandas_missing(x):
        return True
    return isinstance(x, (float, np.floating)) and x != x


def object_column(values: np.ndarray, nested: NestedHook | None) -> tuple[bytes, int]:
    """Digest of a 1-D object array.

    All ``str`` (with None/NaN/NA as missing) takes the string form of the Arrow path,
    converted by pyarrow in C when it is installed; the exact missing objects are kept in
    stream ``t`` so None and NaN stay apart. Anything else is encoded value by value.
    """
    hashed = string_column(values, tag="object-str", null_tags=True)
    if hashed is not None:
        return hashed
    return encoded_column("object", len(values), values.tolist(), nested)


def encoded_column(tag: str, n: int, items: Iterable[Any], nested: NestedHook | None = None) -> tuple[bytes, int]:
    """Digest of a column of ``n`` values encoded one by one (stream ``v``); an error names the row."""
    col = Column(tag, n, "v")
    enc = Encoder(nested, sink=col)
    enc.write_items(enumerate(items))
    enc.drain()
    return col.result()


def string_column(values: np.ndarray, *, tag: str, null_tags: bool) -> tuple[bytes, int] | None:
    """Digest of an object array of str and missing values, or None if it holds others."""
    for item in values:  # most columns tell at once: skip converting arrays, numbers...
        if not is_null_like(item):
            if not isinstance(item, str):
                return None
            break
    if "pyarrow" in sys.modules or len(values) > 256:  # worth importing pyarrow for
        try:
            from mlops_magics.fingerprints import arrow as _fingerprint_arrow
        except ImportError:  # no pyarrow: same digest, built in Python
            pass
        else:
            hashed = _fingerprint_arrow.object_strings(values, tag=tag, null_tags=null_tags)
            if hashed is not NotImplemented:
                return hashed
    return _python_strings(values.tolist(), tag=tag, null_tags=null_tags)


def _python_strings(items: list, *, tag: str, null_tags: bool) -> tuple[bytes, int] | None:
    """The same streams as the Arrow string path, built one item at a time."""
    raws, nulls, positions = [], [], []
    for i, item in enumerate(items):
        if isinstance(item, str):
            raws.append(item.encode("utf-8", "surrogatepass"))
        elif is_null_like(item):
            raws.append(b"")
            nulls.append(item)
            positions.append(i)
        else:
            return None
    ends = np.cumsum(np.fromiter(map(len, raws), dtype=np.int64, count=len(raws)))
    chunk = (ends, b"".join(raws), np.array(positions, dtype=np.int64))
    return feed_strings(tag, [chunk], len(items), nulls if null_tags else None)


def feed_strings(
    tag: str, chunks: Any, n: int, null_objects: list | None
) -> tuple[bytes, int]:
    """Hash string chunks given as ``(ends, data, null_positions)``.

    ``ends`` are the int64 ends of the values counted from the start of the column (the
    first value starts at 0), ``data`` their UTF-8 bytes, ``null_positions`` the int64
    row numbers (in the column) of missing values, or None. ``null_objects``, when not
    None, are the objects that stood for those missing values (stream ``t``).
    """
    col = Column(tag, n, "odm" + ("t" if null_objects is not None else ""))
    for ends, data, nulls in chunks:
        col.feed("o", ends)
        col.feed("d", data)
        if nulls is not None and len(nulls):
            col.feed("m", nulls)
    if null_objects is not None:
        col.feed("t", encode(list(null_objects)))
    return col.result()
