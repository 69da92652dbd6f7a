"""What a read returns: experiments, runs and model versions as small plain values.

Plain dataclasses, so a read never needs mlflow's entities (nor mlflow) to be imported, and a
run goes to and from the on-disk cache as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MlopsError


class ReadError(MlopsError):
    """A read of the MLflow store that cannot be answered: no store, experiment, run or profile."""


class NoExperiment(ReadError):
    """An experiment name that the store does not have."""


class NoRun(ReadError):
    """A run id that the store does not have."""


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    artifact_location: str = ""


@dataclass(frozen=True)
class Dataset:
    """A dataset input of a run: its name, digest and ``mlflow.data.context`` (None if untagged)."""

    name: str
    digest: str
    context: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    """A registered model's version; ``source`` is what it was registered from (when read)."""

    name: str
    version: str
    run_id: str | None
    alias: str | None = None
    source: str = ""


@dataclass(frozen=True)
class LoggedModel:
    """An MLflow 3 logged model (``models:/<model_id>``), its files at ``artifact_location``."""

    model_id: str
    name: str
    artifact_location: str
    creation_timestamp: int | None = None


@dataclass
class Run:
    """One run as ``MlflowClient.get_run`` would give it, flattened: times in ms since the epoch,
    ``metrics`` the latest value of each metric."""

    run_id: str
    experiment_id: str
    run_name: str = ""
    status: str = ""
    start_time: int | None = None
    end_time: int | None = None
    lifecycle_stage: str = "active"
    artifact_uri: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: tuple[Dataset, ...] = ()

    def to_json(self) -> list:
        return [self.run_id, self.experiment_id, self.run_name, self.status, self.start_time, self.end_time,
                self.lifecycle_stage, self.artifact_uri, self.params, self.metrics, self.tags,
                [[d.name, d.digest, d.context] for d in self.inputs]]

    @classmethod
    def from_json(cls, row: list) -> Run:
        *head, inputs = row
        return cls(*head, inputs=tuple(Dataset(*d) for d in inputs))

    @property
    def info(self) -> Run:
        """``run.info.run_id`` and ``run.data.metrics`` read as on an MLflow ``Run``."""
        return self

    data = info

    @property
    def running(self) -> bool:
        return self.status in ("RUNNING", "SCHEDULED")
