"""Every read of MLflow in one place, and none of them imports mlflow into the caller.

``Store(tracking_uri=None)`` is the entry point (see :mod:`.store`): experiments with a
did-you-mean error, an experiment's runs (cached in the journal folder, refreshed
incrementally) as records, as ``mlflow.search_runs``' frame or as the history's flat frame,
recent runs, champions and aliases, registered model versions and logged models, artifacts and
logged data profiles. ``own_metrics`` and ``ours_last`` say which metrics are a run's own.
Nothing heavy is imported here.
"""

from __future__ import annotations

from .metrics import is_own, ours_last, own_metrics, own_values
from .model import Dataset, Experiment, LoggedModel, ModelVersion, NoExperiment, NoRun, ReadError, Run
from .store import Store

__all__ = ["Dataset", "Experiment", "LoggedModel", "ModelVersion", "NoExperiment", "NoRun", "ReadError", "Run",
           "Store", "history_frame", "is_own", "ours_last", "own_metrics", "own_values", "runs_frame"]


def runs_frame(experiment: str | None = None, *, tracking_uri: str | None = None):
    """``mlflow.search_runs(experiment_names=[experiment])``'s frame, read without mlflow, cached."""
    return Store(tracking_uri).runs_frame(experiment)


def history_frame(experiment: str | None = None, *, tracking_uri: str | None = None, max_runs: int | None = None):
    """The history chart's flat frame of ``experiment``'s runs (oldest first), cached."""
    return Store(tracking_uri).history_frame(experiment, max_runs=max_runs)
