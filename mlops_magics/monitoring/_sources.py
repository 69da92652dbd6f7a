"""Where drift inputs come from: data in memory, profiles, files, and ``runs:/`` URIs."""

from __future__ import annotations

import os
from pathlib import Path

from .. import locations, naming
from ..errors import MlopsError, did_you_mean
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
        raise SourceError(f"cannot read {text}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def run_profile(uri: str) -> Profile:
    """The profile a run logged: ``runs:/<run_id>/<data name>`` (or a full artifact path)."""
    run_id, _, name = uri[len(RUNS_SCHEME):].strip("/").partition("/")
    if not run_id or not name:
        raise SourceError(f"expected runs:/<run_id>/<data name>, got {uri!r}")
    path = name if name.startswith("mlops/") and name.endswith(".json") else naming.artifact_profile(name)
    client = _client()
    import os
    import tempfile

    # One small JSON file: MLflow's download progress bar would only clutter the cell.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:
            raise _missing(client, run_id, name) from None
        text = Path(local).read_text(encoding="utf-8")
    try:
        return Profile.from_json(text)
    except (ValueError, KeyError) as exc:
        raise SourceError(f"{uri}: not a readable profile ({exc})") from None


def _client():
    return locations.reading_client(locations.tracking_uri(), SourceError)


def _missing(client, run_id: str, name: str) -> SourceError:
    try:
        client.get_run(run_id)
    except Exception:
        return SourceError(f"no run {run_id} at {locations.display_uri(client.tracking_uri)}")
    try:
        folder = naming.artifact_profile("x").rsplit("/", 1)[0]
        names = [Path(f.path).stem for f in client.list_artifacts(run_id, folder)]
    except Exception:
        names = []
    listed = f" Profiles in that run: {', '.join(sorted(names))}." if names else " That run logged no profiles."
    return SourceError(f"run {run_id} has no profile {name!r}.{did_you_mean(name, names)}{listed}")
