"""``Store``: every read of an MLflow tracking store, without importing mlflow here.

The source is chosen per URI: a SQLite file is read with SQL (read-only), a server over REST;
anything else, or a SQLite schema this package does not know, through MLflow's client in a
short-lived helper process. Runs of an experiment come through the on-disk cache.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from .. import locations, naming
from ..errors import did_you_mean
from ..sqlite_files import uri_path
from . import cache, frames
from .model import Experiment, LoggedModel, ModelVersion, NoExperiment, NoRun, ReadError, Run

MISSING_HINT = "set MLFLOW_TRACKING_URI or run where mlflow.db is"


class Store:
    """Reads of one tracking store: ``Store()`` is ``$MLFLOW_TRACKING_URI`` (or ``./mlflow.db``).

    A SQLite store that does not exist is a :class:`ReadError` (``hint`` says what to do), never
    a new empty database where the user stands.
    """

    def __init__(self, tracking_uri: str | None = None, *, hint: str = MISSING_HINT) -> None:
        self.uri = locations.tracking_uri(tracking_uri)
        self.shown = locations.display_uri(self.uri)
        path = uri_path(self.uri)
        if path is not None and not path.is_file():
            raise ReadError(f"no MLflow store at {path}: {hint}")

    @property
    def tracking_uri(self) -> str:
        return self.uri

    @contextlib.contextmanager
    def source(self):
        """The fastest source that reads this store correctly, closed after use."""
        from .process_source import ProcessSource
        from .rest_source import RestSource, handles
        from .sqlite_source import SchemaSurprise, SqliteSource

        path = uri_path(self.uri)
        src = None
        if path is not None:
            try:
                src = SqliteSource(path)
            except SchemaSurprise:
                src = None  # MLflow's own client knows (or says what is wrong)
        elif handles(self.uri):
            src = RestSource(self.uri)
        src = src or ProcessSource(self.uri)
        try:
            yield src
        finally:
            src.close()

    # -- experiments -----------------------------------------------------------------------------
    def experiments(self) -> list[Experiment]:
        """Every experiment, deleted ones included (``lifecycle_stage`` says)."""
        with self.source() as src:
            return src.experiments()

    def experiment(self, name: str | None = None) -> Experiment:
        """The experiment called ``name`` (default ``$MLFLOW_EXPERIMENT_NAME`` or ``Default``), or
        :class:`NoExperiment` naming the closest one and listing those there are."""
        name = locations.experiment_name(name)
        known = self.experiments()
        for exp in known:
            if exp.name == name:
                return exp
        names = sorted(e.name for e in known if e.lifecycle_stage == "active")
        raise NoExperiment(f"no experiment named {name!r}.{did_you_mean(name, names)}"
                           f" Experiments here: {', '.join(names) or 'none'}")

    def experiment_by_id(self, experiment_id: str) -> Experiment | None:
        return next((e for e in self.experiments() if e.experiment_id == str(experiment_id)), None)

    # -- runs ------------------------------------------------------------------------------------
    def runs(self, experiment: str | Experiment | None = None, *, full: bool = False) -> list[Run]:
        """Every active run of ``experiment`` (a name or an :class:`Experiment`), newest first,
        through the cache: only what changed since the last read is read (``full``: all)."""
        exp = experiment if isinstance(experiment, Experiment) else self.experiment(experiment)
        with self.source() as src:
            return frames.newest_first(cache.cached_runs(src, self.uri, exp.experiment_id, full=full))

    def runs_frame(self, experiment: str | Experiment | None = None, *, full: bool = False):
        """The runs as the frame ``mlflow.search_runs(experiment_names=[experiment])`` returns."""
        return frames.search_runs_frame(self.runs(experiment, full=full))

    def history_frame(self, experiment: str | Experiment | None = None, *, max_runs: int | None = None,
                      full: bool = False):
        """The runs behind the history chart: one flat row each, oldest first, no session or
        sweep containers (see :func:`frames.history_frame` for the columns)."""
        return frames.history_frame(self.runs(experiment, full=full), max_runs)

    def recent_runs(self, experiment: str | Experiment | None = None, count: int = 10,
                    kinds: tuple[str, ...] = (naming.KIND_CELL, naming.KIND_JOB)) -> list[Run]:
        """The newest ``count`` runs of ``experiment`` whose ``mlops.kind`` is one of ``kinds``."""
        return [r for r in self.runs(experiment) if r.tags.get(naming.KIND) in kinds][:count]

    def get_run(self, run_id: str) -> Run:
        """One run, deleted or not; :class:`NoRun` (a :class:`ReadError`) when the store has none of that id."""
        with self.source() as src:
            run = src.get_run(run_id)
        if run is None:
            raise NoRun(f"no run {run_id} at {self.shown}")
        return run

    # -- logged models (MLflow 3) ----------------------------------------------------------------
    def logged_model(self, run: Run, name: str) -> LoggedModel | None:
        """The newest logged model called ``name`` that ``run`` produced, or None (none, or a
        store from before logged models)."""
        with self.source() as src:
            found = [m for m in src.logged_models(run.run_id, run.experiment_id) if m.name == name]
        return max(found, key=lambda m: m.creation_timestamp or 0) if found else None

    # -- registry --------------------------------------------------------------------------------
    def alias_holders(self, alias: str | None = None) -> list[ModelVersion]:
        """Registered model versions holding ``alias`` (any alias when None); empty without a registry."""
        try:
            with self.source() as src:
                return src.alias_holders(alias)
        except ReadError:
            return []

    def alias_holder(self, model: str, alias: str) -> ModelVersion | None:
        """The version of ``model`` that holds ``alias``, or None."""
        return next((m for m in self.alias_holders(alias) if m.name == model), None)

    def champions(self, run_ids, alias: str = "champion") -> dict[str, str]:
        """``{run_id: "champion: <model> v<version>"}`` for the versions of these runs holding ``alias``."""
        wanted = set(run_ids)
        return {m.run_id: f"{alias}: {m.name} v{m.version}" for m in self.alias_holders(alias) if m.run_id in wanted}

    def model_versions(self, model: str, run_id: str) -> list[ModelVersion]:
        """The versions of ``model`` registered from ``run_id`` (``source`` says from what), oldest first."""
        with self.source() as src:
            found = src.model_versions(model, run_id)
        return sorted(found, key=lambda v: int(v.version))

    def model_version_uri(self, model: str, version: str) -> str | None:
        """Where version ``version`` of ``model`` is downloaded from (MLflow's download URI), or None."""
        with self.source() as src:
            return src.model_version_uri(model, str(version))

    # -- artifacts -------------------------------------------------------------------------------
    def list_artifacts(self, run_id: str, folder: str) -> list[str]:
        """Paths of the files directly in ``folder`` of the run's artifacts (empty if none)."""
        local = _local_root(self.get_run(run_id).artifact_uri)
        if local is not None:
            where = local / folder
            return sorted(f"{folder}/{p.name}" for p in where.iterdir() if p.is_file()) if where.is_dir() else []
        try:
            with self.source() as src:
                return src.list_artifacts(run_id, folder)
        except ReadError:
            return []

    def download_artifact(self, run_id: str, path: str, dest: str | Path) -> Path:
        """``path`` of the run's artifacts copied under ``dest``; :class:`ReadError` if missing."""
        run = self.get_run(run_id)
        local = _local_root(run.artifact_uri)
        if local is not None:
            source = local / path
            if not source.exists():
                raise ReadError(f"run {run_id} has no artifact {path}")
            target = Path(dest, path)  # where MlflowClient.download_artifacts puts it
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
            return target
        with self.source() as src:
            return Path(src.download_artifact(run_id, path, str(dest)))

    def read_artifact_text(self, run_id: str, path: str) -> str:
        """A small text artifact of the run, as text."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.download_artifact(run_id, path, tmp).read_text(encoding="utf-8")

    def profile_names(self, run_id: str) -> list[str]:
        """Names of the data profiles the run logged (``mlops/profiles/<name>.json``)."""
        folder = naming.artifact_profile("x").rsplit("/", 1)[0]
        try:
            paths = self.list_artifacts(run_id, folder)
        except ReadError:
            return []
        return [Path(p).stem for p in paths if p.endswith(".json")]


def _local_root(artifact_uri: str) -> Path | None:
    """The folder of a run's artifacts when they are local files, else None."""
    if artifact_uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(artifact_uri).path))
    if artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None
