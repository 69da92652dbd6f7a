"""How a fingerprinted input or output looks as a journal record and as MLflow's dataset entity."""

from __future__ import annotations


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
