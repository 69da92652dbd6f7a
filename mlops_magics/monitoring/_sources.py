"""Where drift inputs come from: data in memory, profiles, files, and ``runs:/`` URIs."""

from __future__ import annotations

import os
from pathlib import Path

from .. import naming
from ..errors import MlopsError, did_you_mean, first_line
from ..store_read.model import ReadError
from .profile import Profile

RUNS_SCHEME = "runs:/"
_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".json": "profile"}


class SourceError(MlopsError):
    """A drift input that cannot be found or read."""


def resolve(obj: object, other: object = None) -> object:
    """A Profile, or in-memory data; paths and ``runs:/`` URIs are read first (``other``: the
    other side's input, never suggested for a missing path)."""
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if text.startswith(RUNS_SCHEME):
            return run_profile(text)
        return read_path(text, os.fspath(other) if isinstance(other, (str, os.PathLike)) else None)
    return obj


def describe(obj: object, given: object) -> str:
    """How the report names an input: the path or URI it came from, else its shape."""
    if isinstance(given, (str, os.PathLike)):
        return os.fspath(given)
    if isinstance(obj, Profile):
        more = f" (first {len(obj.columns)} of {obj.total:,} columns)" if obj.capped else ""
        return f"profile of {obj.rows:,} rows{more}"
    shape = getattr(obj, "shape", None)
    return f"{type(obj).__name__} {' x '.join(f'{s:,}' for s in shape)}" if shape else type(obj).__name__


def read_path(text: str, other: str | None = None):
    """A CSV/TSV or Parquet file as a DataFrame, or a profile ``.json`` as a Profile.

    ``other``: the path given for the other side, never suggested for this one.
    """
    path = Path(text).expanduser()
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else None
        skip = Path(other).expanduser().resolve() if other else None
        siblings = [p.name for p in folder.iterdir() if p.resolve() != skip] if folder else []
        hint = did_you_mean(path.name, siblings)
        raise SourceError(f"no file {text}" + (f".{hint}" if hint else ""))
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise SourceError(f"cannot read {text}: expected .csv, .tsv, .parquet, or a profile .json")
    import pandas as pd

    try:
        if kind == "profile":
            return Profile.from_json(path.read_text(encoding="utf-8"))
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except (ValueError, KeyError, OSError) as exc:
        raise SourceError(f"cannot read {text}: {first_line(exc) or type(exc).__name__}") from None


def run_profile(uri: str) -> Profile:
    """The profile a run logged: ``runs:/<run_id>/<data name>`` (or a full artifact path)."""
    run_id, _, name = uri[len(RUNS_SCHEME):].strip("/").partition("/")
    if not run_id or not name:
        raise SourceError(f"expected runs:/<run_id>/<data name>, got {uri!r}")
    path = name if name.startswith("mlops/") and name.endswith(".json") else naming.artifact_profile(name)
    store = _client()
    try:
        text = store.read_artifact_text(run_id, path)
    except ReadError:
        raise _missing(store, run_id, name) from None
    try:
        return Profile.from_json(text)
    except (ValueError, KeyError) as exc:
        raise SourceError(f"{uri}: not a readable profile ({exc})") from None


def _client():
    """The store ``runs:/`` URIs are read from (a ``store_read.Store``: mlflow stays out of the kernel)."""
    from ..store_read import Store

    try:
        return Store()
    except ReadError as exc:
        raise SourceError(str(exc)) from None


def run_metrics(run_id: str) -> dict[str, float]:
    """The latest metrics of run ``run_id``."""
    try:
        return dict(_client().get_run(run_id).metrics)
    except ReadError as exc:
        raise SourceError(str(exc)) from None


def _missing(store, run_id: str, name: str) -> SourceError:
    try:
        store.get_run(run_id)
    except ReadError:
        return SourceError(f"no run {run_id} at {store.shown}")
    names = store.profile_names(run_id)
    listed = f" Profiles in that run: {', '.join(sorted(names))}." if names else " That run logged no profiles."
    return SourceError(f"run {run_id} has no profile {name!r}.{did_you_mean(name, names)}{listed}")
