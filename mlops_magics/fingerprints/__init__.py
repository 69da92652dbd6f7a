"""Full-content fingerprints of data: every row, every dtype, at memory speed.

``fingerprint(obj)`` returns a :class:`Fingerprint` whose ``digest`` changes when any
single value changes anywhere (the last row too), and when row order, column order,
column names, dtypes, index values, category sets or time zones change; equal content
gives an equal digest in any process, on any machine, whatever the memory layout.

Supported: pandas DataFrame, Series and Index (MultiIndex too) of any dtype; numpy
arrays of any dtype, shape and layout (masked arrays and memmaps too); pyarrow Array,
ChunkedArray, Table and RecordBatch; polars DataFrame and Series; files and directories
(``fingerprint_path``, or a ``pathlib.Path``); plain Python values (None, bool, int,
float, complex, str, bytes, lists, tuples, dicts, sets, dates and times, Decimal) and
containers of them, data objects included. Anything else raises ``FingerprintError``;
nothing is ever pickled.

Algorithm, version 1 (the ``xx3v1:`` prefix of every digest)
----------------------------------------------------------------
Hash function: xxh3-128 (``xxhash.xxh3_128``), over canonical bytes, never over Python's
``hash()``, ``id()`` or pointers.

1. The object is split into *columns*: the index levels then the columns of a frame, the
   index levels then the values of a Series, the levels of an Index, the columns of an
   Arrow or polars table, the single column of an array.
2. Each column is hashed on its own into named *streams*, each its own xxh3 state fed
   chunk by chunk, so chunking and memory layout never show:

   - fixed-width values (numbers, bools, datetimes as int64 in their unit, timedeltas,
     periods as ordinals, tz-aware datetimes as UTC int64): the raw little-endian bytes in
     C order. Strided, Fortran-ordered or big-endian data is copied a couple of MiB at a
     time. Floats: every NaN is written as the one quiet NaN ``0x7ff8...``; ``-0.0`` and
     ``0.0`` stay distinct (they are different bytes and ``1/x`` tells them apart).
   - strings and binary: ``o`` the int64 end offset of each value counted from the
     column's start, ``d`` the UTF-8 bytes. Arrow buffers are read in place; object
     columns of ``str`` are converted by pyarrow in C when it is installed, else one
     value at a time, with identical streams.
   - missing values: ``m`` the int64 row numbers of nulls (masked arrays, Arrow
     validity, pandas NA), with the bytes under a null zeroed; an object column also keeps
     in ``t`` the exact objects that stood for them (None, NaN, pd.NA stay apart).
   - categoricals: the codes, plus the categories as a child column (so the category set
     and its order count). Arrow dictionaries are hashed by their decoded values.
   - structs, lists, intervals, structured numpy dtypes: one child column per field or
     side; mixed object columns and other rare types: each value's canonical encoding.

   The column digest is xxh3-128 of a tag, the row count, each stream's digest and the
   children's digests.
3. The final digest is xxh3-128 of the family (DataFrame, Series, Index, MultiIndex,
   ndarray, Arrow array or table, polars frame or series, file, directory or Python type),
   the shape, the *structure* (column names with their exact type, dtypes, index names and
   dtypes), and the column digests in order. It is written ``xx3v1:`` and 30 hex digits
   (120 bits): 36 characters, the size of MLflow's dataset digest field.
   ``schema_digest`` is the same over the family and the structure only (16 hex digits),
   so "the schema changed" and "only values changed" can be told apart.

Python values are written with a one-byte type tag and a length-prefixed payload, so
``1``, ``1.0``, ``True``, ``"1"`` and ``b"1"`` all differ; lists and tuples keep their
order; dicts and sets are written sorted by the encoding of their keys or elements, so
two ``==`` dicts built in different orders share a digest. A file is its bytes (not its
name); a directory is its sorted relative paths, entry kinds and file contents.

A pyarrow Table and a RecordBatch with the same content share a digest, as do an Array
and a ChunkedArray, a RangeIndex and the equal int64 Index, and a pandas string column
stored in Arrow or in Python objects. The digest does not cover pandas ``attrs``, Arrow
schema metadata, file names or times. Dtype names come from the libraries, so a library
that renames a dtype changes the digests of such columns. Columns are hashed on a few
threads when there is enough data; results are combined in column order, so threads
never change a digest. ``tests/test_fingerprint.py`` rebuilds one digest byte by byte
from this description and pins a few golden digests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_magics.fingerprints.core import PREFIX, Column, Parts, finish
from mlops_magics.fingerprints.values import Cycle, Encoder, Unsupported, encode
from mlops_magics.errors import FingerprintError

__all__ = ["Fingerprint", "fingerprint", "fingerprint_path", "is_fingerprintable"]

_CONTAINERS = (list, tuple, dict, set, frozenset)


@dataclass(frozen=True)
class Fingerprint:
    """The fingerprint of one object.

    Attributes
    ----------
    digest : str
        ``"xx3v1:"`` and 30 hex digits (36 characters): equal exactly when content,
        structure and kind are equal.
    kind : str
        What was hashed: ``"pandas.DataFrame"``, ``"numpy.ndarray"``, ``"pyarrow.Table"``,
        ``"polars.DataFrame"``, ``"file"``, ``"directory"``, ``"python.dict"``...
    shape : tuple of int or None
        Rows (and columns) of data; the length of a Python container; None otherwise.
    schema : tuple of (name, dtype) pairs or None
        Columns in order (an unnamed array or Series has the name ``""``); None for
        files and Python values.
    schema_digest : str or None
        Digest of the kind and the schema alone (index names and dtypes included), 22
        characters; None when there is no schema.
    nbytes : int
        Bytes fed to the hash function (the canonical form of the content).
    """

    digest: str
    kind: str
    shape: tuple[int, ...] | None
    schema: tuple[tuple[str, str], ...] | None
    schema_digest: str | None
    nbytes: int

    @property
    def short(self) -> str:
        """The first 12 hex digits of the digest, for display."""
        return self.digest[len(PREFIX) : len(PREFIX) + 12]


def fingerprint(obj: Any) -> Fingerprint:
    """Fingerprint the full content of a data object or a plain Python value.

    Parameters
    ----------
    obj : DataFrame, Series, Index, ndarray, pyarrow or polars data, pathlib.Path, or value
        A ``pathlib.Path`` (any ``os.PathLike``) is fingerprinted by the content of the
        file or directory it names; a ``str`` is a string, not a path.

    Returns
    -------
    Fingerprint

    Raises
    ------
    FingerprintError
        The object, or something inside it, has no canonical content (a model, an open
        file, a generator...). The message names its type and what to do instead.
    """
    try:
        parts = _parts(obj)
        digest, schema_digest = finish(parts, encode)
    except Unsupported as exc:
        raise _unsupported(exc) from None
    except RecursionError:
        raise FingerprintError(f"cannot fingerprint a {_type_label(obj)}: it is nested too deeply") from None
    except (FingerprintError, OSError, MemoryError):
        raise
    except Exception as exc:  # an exotic dtype a library could not read: say so, go on
        raise FingerprintError(
            f"cannot fingerprint an object of type {_type_label(obj)}: "
            f"{type(exc).__name__}: {exc}; {_SUPPORTED}") from exc
    return Fingerprint(digest, parts.kind, parts.shape, parts.schema, schema_digest, parts.nbytes)


def fingerprint_path(path: str | os.PathLike) -> Fingerprint:
    """Fingerprint a file by its bytes, or a directory by its tree, streamed at any size.

    Raises ``FileNotFoundError`` (an ``OSError``) when the path does not exist, and
    ``FingerprintError`` for pipes, sockets and devices.
    """
    from mlops_magics.fingerprints.files import path_parts

    parts = path_parts(path)
    digest, schema_digest = finish(parts, encode)
    return Fingerprint(digest, parts.kind, parts.shape, parts.schema, schema_digest, parts.nbytes)


def is_fingerprintable(obj: Any) -> bool:
    """Whether ``obj`` is data in the tracker's sense: a table or an array of values.

    True for pandas DataFrame, Series and Index, numpy arrays with at least one
    dimension, pyarrow Array, ChunkedArray, Table and RecordBatch, and polars DataFrame
    and Series. Cheap: it imports nothing (an object of a library that is not imported
    cannot exist).
    """
    if isinstance(obj, np.ndarray):
        return obj.ndim >= 1
    return _data_kind(obj) is not None


def _data_kind(obj: Any) -> str | None:
    """Which library's data ``obj`` is, without importing a library the object is not from.

    The object's own classes name the library; importing it then is free (it is loaded)
    and, should another thread still be importing it, waits for that import to finish
    instead of reading a half-initialised module.
    """
    roots = {cls.__module__.partition(".")[0] for cls in type(obj).__mro__}
    if "pandas" in roots:
        import pandas as pd

        if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
            return "pandas"
    if "pyarrow" in roots:
        import pyarrow as pa

        if isinstance(obj, (pa.Array, pa.ChunkedArray, pa.Table, pa.RecordBatch)):
            return "pyarrow"
    if "polars" in roots:
        import polars as pl

        if isinstance(obj, (pl.DataFrame, pl.Series)):
            return "polars"
    return None


def _parts(obj: Any) -> Parts:
    if isinstance(obj, np.ndarray):
        from mlops_magics.fingerprints.arrays import array_parts

        kind = "numpy.ma.MaskedArray" if isinstance(obj, np.ma.MaskedArray) else f"numpy.{type(obj).__name__}"
        return array_parts(obj, kind, _nested_digest)
    library = _data_kind(obj)
    if library == "pandas":
        import pandas as pd

        from mlops_magics.fingerprints import frames as pdf

        if isinstance(obj, pd.DataFrame):
            return pdf.frame_parts(obj, _nested_digest)
        if isinstance(obj, pd.Series):
            return pdf.series_parts(obj, _nested_digest)
        return pdf.index_parts(obj, _nested_digest)
    if library == "pyarrow":
        from mlops_magics.fingerprints import arrow as paf

        kind = f"pyarrow.{_arrow_kind(obj)}"
        if kind in ("pyarrow.Table", "pyarrow.RecordBatch"):
            return paf.table_parts(obj, kind)
        return paf.array_parts(obj, kind)
    if library == "polars":
        from mlops_magics.fingerprints.arrow import polars_parts

        return polars_parts(obj, f"polars.{type(obj).__name__}")
    if isinstance(obj, os.PathLike):
        from mlops_magics.fingerprints.files import path_parts

        return path_parts(obj)
    return _value_parts(obj)


def _arrow_kind(obj: Any) -> str:
    import pyarrow as pa

    for cls in (pa.Table, pa.RecordBatch, pa.ChunkedArray):
        if isinstance(obj, cls):
            return cls.__name__
    return "Array"


def _value_parts(obj: Any) -> Parts:
    t = type(obj)
    module = t.__module__.split(".")[0]
    kind = f"{'python' if module == 'builtins' else module}.{t.__name__}"
    shape = (len(obj),) if isinstance(obj, _CONTAINERS) else None
    col = Column("value", 1, "v")
    enc = Encoder(_nested_digest, sink=col)
    enc.write(obj)
    enc.drain()
    digest, nbytes = col.result()
    return Parts(kind, kind, shape, None, None, [digest], nbytes)


def _nested_digest(obj: Any) -> bytes | None:
    """Raw digest of a data object met inside a container or an object column."""
    if not (isinstance(obj, np.ndarray) or _data_kind(obj) is not None):
        return None
    parts = _parts(obj)
    return bytes.fromhex(finish(parts, encode)[0][len(PREFIX) :])


_HINTS = (
    (lambda o: type(o).__name__ == "LazyFrame", "call .collect() on it first"),
    (lambda o: hasattr(o, "detach") and hasattr(o, "cpu"), "convert it with .detach().cpu().numpy()"),
    (lambda o: hasattr(o, "compute"), "call .compute() on it first, or fingerprint a sample you convert to pandas"),
    (lambda o: hasattr(o, "read") and hasattr(o, "name"), "fingerprint its path instead: pathlib.Path(f.name)"),
    (lambda o: hasattr(o, "__next__"), "materialise it first, for example with list(...)"),
)
_SUPPORTED = (
    "convert it to a DataFrame or numpy array (or pass its file as a pathlib.Path), or leave it "
    "out of --data; fingerprints cover pandas, numpy, pyarrow and polars data, files and "
    "directories, and plain values (None, bool, int, float, str, bytes, lists, tuples, dicts, sets)"
)


def _type_label(obj: Any) -> str:
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _unsupported(exc: Unsupported) -> FingerprintError:
    obj, where = exc.obj, exc.where()
    name = _type_label(obj)
    at = f" (at {where})" if where else ""
    if isinstance(exc, Cycle):
        return FingerprintError(f"cannot fingerprint a {name} that contains itself{at}")
    hint = next((text for test, text in _HINTS if _safe(test, obj)), _SUPPORTED)
    return FingerprintError(f"cannot fingerprint an object of type {name}{at}: {hint}")


def _safe(test: Any, obj: Any) -> bool:
    try:
        return bool(test(obj))
    except Exception:
        return False
