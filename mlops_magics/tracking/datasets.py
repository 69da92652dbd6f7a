"""The data a tracked cell read or wrote: which values are data, and how a dataset record looks
in the journal and in MLflow's dataset entity."""

from __future__ import annotations

_DATA_LIBRARIES = frozenset({"numpy", "pandas", "pyarrow", "polars"})


def is_data(obj: object) -> bool:
    """Whether a value is data to fingerprint: a table or array of an already loaded library.

    For a float or a dict, importing the fingerprint module (and numpy with it) would cost
    a cell 0.2 s of CPU for nothing.
    """
    if not any(cls.__module__.partition(".")[0] in _DATA_LIBRARIES for cls in type(obj).__mro__):
        return False
    from ..fingerprints import is_fingerprintable

    return is_fingerprintable(obj)


def data_record(name: str, fp, context: str, source: dict) -> dict:
    """A fingerprinted input or output as the journal keeps it."""
    schema = [[str(k), str(v)] for k, v in fp.schema] if fp.schema else None  # keeps duplicate names
    return {"name": name, "digest": fp.digest, "short": fp.short, "kind": fp.kind,
            "shape": [int(n) for n in fp.shape] if fp.shape is not None else None, "schema": schema,
            "schema_digest": getattr(fp, "schema_digest", None), "nbytes": int(fp.nbytes or 0),
            "context": context, "source": source}


_COLSPEC = {"f": "double", "i": "long", "u": "long", "b": "boolean", "M": "datetime"}


def mlflow_dataset(d: dict) -> dict:
    """A data record in the shape MLflow's dataset entity (and its UI) expects."""
    schema = None
    if d.get("schema"):
        cols = []
        for col, dtype in d["schema"]:
            kind = _dtype_kind(str(dtype))
            cols.append({"name": str(col), "type": _COLSPEC.get(kind, "string"), "required": True})
        schema = {"mlflow_colspec": cols, "mlops_schema_digest": d.get("schema_digest")}
    profile = {"kind": d["kind"], "shape": d["shape"], "nbytes": d["nbytes"]}
    if d["shape"]:
        profile["num_rows"] = d["shape"][0]
    return {"name": d["name"], "digest": d["digest"], "source": d["source"], "schema": schema,
            "profile": profile, "context": d["context"]}


def _dtype_kind(dtype: str) -> str:
    low = dtype.lower()
    if low.startswith(("float", "double")):
        return "f"
    if low.startswith(("int", "uint")):
        return "i"
    if low.startswith("bool"):
        return "b"
    if low.startswith(("datetime", "timestamp")):
        return "M"
    return "O"


class ProfileCache:
    """Profile JSON by content digest: data used by many cells is profiled once per session.

    Bounded in bytes, oldest first out. Used from the session's one background thread only.
    """

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        from collections import OrderedDict

        self.max_bytes, self.size = max_bytes, 0
        self._texts: OrderedDict[str, str] = OrderedDict()

    def get(self, digest: str) -> str | None:
        text = self._texts.get(digest)
        if text is not None:
            self._texts.move_to_end(digest)
        return text

    def put(self, digest: str, text: str) -> None:
        if digest in self._texts or len(text) > self.max_bytes:
            return
        self._texts[digest] = text
        self.size += len(text)
        while self.size > self.max_bytes:
            _, old = self._texts.popitem(last=False)
            self.size -= len(old)
