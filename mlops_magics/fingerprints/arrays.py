"""Fingerprints of numpy arrays: any dtype, any memory layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_magics.fingerprints.core import Column, Parts, dtype_name
from mlops_magics.fingerprints.values import NestedHook, object_column


def array_parts(arr: np.ndarray, kind: str, nested: NestedHook) -> Parts:
    """Parts of an ndarray (or a subclass such as memmap or a masked array)."""
    dt = arr.dtype
    if dt.names:
        schema = tuple((name, dtype_name(dt.fields[name][0])) for name in dt.names)
    else:
        schema = (("", dtype_name(dt)),)
    masked = isinstance(arr, np.ma.MaskedArray)
    family = "numpy.ma.MaskedArray" if masked else "numpy.ndarray"
    parts = Parts(kind, family, tuple(arr.shape), schema, (dtype_name(dt), arr.shape[1:]))
    parts.add_columns([masked_column(arr, nested) if masked else array_column(arr, nested)])
    return parts


def array_column(arr: np.ndarray, nested: NestedHook | None) -> tuple[bytes, int]:
    """Digest of an array's values in C order; the shape belongs to the caller's header."""
    arr = np.asarray(arr)  # a plain view of any subclass (memmap, matrix)
    dt = arr.dtype
    if dt.names:  # per field: the padding between fields is not data
        col = Column("record", arr.size, "")
        for name in dt.names:
            col.child(array_column(arr[name], nested))
        return col.result()
    if dt.hasobject:
        return object_column(arr.reshape(-1) if arr.ndim != 1 else arr, nested)
    if dt.kind == "T":  # numpy's variable-width StringDType
        return object_column(arr.astype(object).reshape(-1), nested)
    col = Column("fixed", arr.size, "v")
    col.feed_array("v", arr)
    return col.result()


def masked_column(arr: Any, nested: NestedHook | None) -> tuple[bytes, int]:
    """Values under the mask are not data: hash the filled values and the mask."""
    mask = np.ascontiguousarray(np.ma.getmaskarray(arr)).view(np.uint8).reshape(-1)
    zero = np.zeros((), arr.dtype)[()]
    col = Column("masked", arr.size, "m")
    col.child(array_column(np.ma.MaskedArray.filled(arr, zero), nested))
    col.feed("m", np.flatnonzero(mask).astype(np.int64))
    return col.result()
