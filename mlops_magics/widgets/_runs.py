"""The runs behind ``HistoryWidget``: one MLflow query into a flat frame, champions, profiles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import locations, naming
from ..errors import MlopsError, did_you_mean

MAX_RUNS = 50_000  # one page of MLflow's SQL store
_PARENT_KINDS = (naming.KIND_SESSION, naming.KIND_SWEEP)  # containers, not trained models
_PARAMS_SHOWN = 12


class HistoryError(MlopsError):
    """An experiment or metric that is not there."""


def client(tracking_uri: str | None = None):
    """A client of the tracking store; a SQLite store that is not there is an error,
    not a new empty database in the working directory."""
    return locations.reading_client(locations.tracking_uri(tracking_uri), HistoryError)


def experiment(mlflow_client, name: str):
    """The experiment called ``name``, or an error that names the closest one."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is None:
        names = [e.name for e in mlflow_client.search_experiments()]
        raise HistoryError(f"no experiment {name!r} at "
                           f"{locations.display_uri(mlflow_client.tracking_uri)}.{did_you_mean(name, names)}"
                           + (f" Experiments: {', '.join(names[:10])}" if names else ""))
    return found


def load_runs(mlflow_client, experiment_id: str, max_runs: int = MAX_RUNS) -> pd.DataFrame:
    """Every tracked cell and job run (and plain MLflow run) of the experiment, newest
    ``max_runs`` at most, as one row each: run_id, run_name, start_time (ms), status,
    kind, params (text), data (input fingerprints), inputs (names), metrics.<name>."""
    rows, token = [], None
    while len(rows) < max_runs:
        page = mlflow_client.search_runs([experiment_id], max_results=min(50_000, max_runs - len(rows)),
                                         order_by=["attributes.start_time DESC"], page_token=token)
        rows.extend(_row(r) for r in page if r.data.tags.get(naming.KIND) not in _PARENT_KINDS)
        token = page.token
        if not token:
            break
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(
        columns=["run_id", "run_name", "start_time", "status", "kind", "params", "data", "inputs"])
    return frame.iloc[::-1].reset_index(drop=True)  # oldest first


def _row(run) -> dict:
    info, data = run.info, run.data
    params = " ".join(f"{k}={v}" for k, v in sorted(data.params.items())[:_PARAMS_SHOWN])
    inputs = [d for d in (getattr(run.inputs, "dataset_inputs", None) or [])
              if _context(d) in (naming.CONTEXT_INPUT, None)]
    row = {"run_id": info.run_id, "run_name": info.run_name or "", "start_time": info.start_time,
           "status": info.status, "kind": data.tags.get(naming.KIND, "run"), "params": params,
           "data": " ".join(f"{d.dataset.name} {_short(d.dataset.digest)}" for d in inputs),
           "inputs": tuple(d.dataset.name for d in inputs)}
    row.update({f"metrics.{k}": v for k, v in data.metrics.items()})
    return row


def _short(digest: str) -> str:
    """12 characters of the hash, without a scheme prefix such as ``xx3v1:``."""
    return digest.rsplit(":", 1)[-1][:12]


def _context(dataset_input) -> str | None:
    for tag in dataset_input.tags or []:
        if tag.key == naming.DATASET_CONTEXT_TAG:
            return tag.value
    return None


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Metrics some run has, ours (system.*, drift.*) last."""
    names = [c[len("metrics."):] for c in runs.columns if c.startswith("metrics.")]
    ours = ("system.", "drift.")
    return sorted(n for n in names if not n.startswith(ours)) + sorted(n for n in names if n.startswith(ours))


def champions(mlflow_client, run_ids, alias: str = "champion") -> dict[str, str]:
    """``{run_id: "champion: <model> v<version>"}`` for registered model versions of
    these runs that hold ``alias``; empty when the registry is unavailable."""
    wanted, found = set(run_ids), {}
    try:
        models, token = [], None
        while True:
            page = mlflow_client.search_registered_models(max_results=1000, page_token=token)
            models.extend(page)
            token = page.token
            if not token:
                break
        for model in models:
            version = (getattr(model, "aliases", None) or {}).get(alias)
            if version is None:
                continue
            run_id = mlflow_client.get_model_version(model.name, str(version)).run_id
            if run_id in wanted:
                found[run_id] = f"{alias}: {model.name} v{version}"
    except Exception:  # a store without a registry, or no permission: no marker, no failure
        return {}
    return found


def profile_names(mlflow_client, run_id: str) -> list[str]:
    """Names of the data profiles a run logged (``mlops/profiles/<name>.json``)."""
    folder = naming.artifact_profile("x").rsplit("/", 1)[0]
    try:
        return [Path(f.path).stem for f in mlflow_client.list_artifacts(run_id, folder) if f.path.endswith(".json")]
    except Exception:
        return []


def common_profile(mlflow_client, runs: pd.DataFrame, reference: str, current: str) -> str:
    """The name of training data both runs logged a profile of, inputs first."""
    ref, cur = profile_names(mlflow_client, reference), profile_names(mlflow_client, current)
    both = [n for n in ref if n in cur]
    if not both:
        which = reference if not ref else current
        raise HistoryError(f"run {which} logged no data profile to compare"
                           if not (ref and cur) else
                           f"runs {reference} and {current} logged profiles of different data "
                           f"({', '.join(ref)} vs {', '.join(cur)})")
    inputs = runs.loc[runs["run_id"] == reference, "inputs"]
    first = [n for n in (inputs.iloc[0] if len(inputs) else ()) if n in both]
    return (first or both)[0]
