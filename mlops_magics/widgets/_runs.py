"""The runs behind ``HistoryWidget``: the experiment, its runs as a flat frame, champions, profiles.

Every read goes through :mod:`mlops_magics.store_read` (cached, incremental, and mlflow never
imported into the kernel); the "client" handed around here is a ``store_read.Store``.
"""

from __future__ import annotations

import pandas as pd

from .. import store_read

MAX_RUNS = 50_000  # the newest runs shown at most
HistoryError = store_read.ReadError  # an experiment, metric, run or profile that is not there


def client(tracking_uri: str | None = None) -> store_read.Store:
    """The tracking store to read; a SQLite store that is not there is an error,
    not a new empty database in the working directory."""
    return store_read.Store(tracking_uri)


def experiment(store: store_read.Store, name: str) -> store_read.Experiment:
    """The experiment called ``name``, or an error that names the closest one."""
    return store.experiment(name)


def load_runs(store: store_read.Store, experiment_id: str, max_runs: int = MAX_RUNS) -> pd.DataFrame:
    """Every tracked cell and job run (and plain MLflow run) of the experiment, newest
    ``max_runs`` at most, oldest first, one row each: run_id, run_name, start_time (ms), status,
    kind, params (text), data (input fingerprints), inputs (names), metrics.<name>."""
    return store.history_frame(store_read.Experiment(str(experiment_id), ""), max_runs=max_runs)


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Metrics some run has, ours (system.*, drift.*) last."""
    return store_read.ours_last(c[len("metrics."):] for c in runs.columns if c.startswith("metrics."))


def champions(store: store_read.Store, run_ids, alias: str = "champion") -> dict[str, str]:
    """``{run_id: "champion: <model> v<version>"}`` for registered model versions of
    these runs that hold ``alias``; empty when the registry is unavailable."""
    return store.champions(run_ids, alias)


def profile_names(store: store_read.Store, run_id: str) -> list[str]:
    """Names of the data profiles a run logged (``mlops/profiles/<name>.json``)."""
    return store.profile_names(run_id)


def common_profile(store: store_read.Store, runs: pd.DataFrame, reference: str, current: str) -> str:
    """The name of training data both runs logged a profile of, inputs first."""
    ref, cur = profile_names(store, reference), profile_names(store, current)
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

