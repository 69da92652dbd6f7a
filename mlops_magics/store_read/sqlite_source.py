"""Reads a SQLite MLflow store with plain SQL, read-only: no mlflow import, no ORM.

Only against a schema this MLflow knows: the store's alembic revision must be one of the
installed mlflow's migrations and every table and column read here must be there. Anything else
(a store written by a newer MLflow, workspaces in use, a locked or odd file) is
:class:`SchemaSurprise`, and the caller reads through the MLflow client instead.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from pathlib import Path

from .. import naming
from ..sqlite_files import connect_read_only
from . import models_sql
from .model import Dataset, Experiment, ModelVersion, Run

_NEEDED = {
    "alembic_version": {"version_num"},
    "experiments": {"experiment_id", "name", "artifact_location", "lifecycle_stage"},
    "runs": {"run_uuid", "name", "status", "start_time", "end_time", "lifecycle_stage", "artifact_uri",
             "experiment_id", "deleted_time"},
    "latest_metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "params": {"key", "value", "run_uuid"},
    "tags": {"key", "value", "run_uuid"},
    "inputs": {"input_uuid", "source_type", "source_id", "destination_type", "destination_id"},
    "datasets": {"dataset_uuid", "name", "digest"},
    "input_tags": {"input_uuid", "name", "value"},
}
_REGISTRY = {"registered_model_aliases": {"alias", "version", "name"}, "model_versions": {"name", "version", "run_id"}}
_CHUNK = 500  # run ids per IN (...): under SQLite's variable limit


class SchemaSurprise(Exception):
    """The store is not one this module may read directly."""


def _known_revisions() -> set[str] | None:
    """Alembic revisions of the installed mlflow, from its migration file names (mlflow is not imported)."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0], "store", "db_migrations", "versions")
    try:
        return {name.split("_", 1)[0] for name in os.listdir(folder) if name.endswith(".py")}
    except OSError:
        return None


class SqliteSource:
    """Direct, read-only SQL on one SQLite store. Raises :class:`SchemaSurprise` on anything unexpected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = connect_read_only(path, timeout=10, check_same_thread=False)
            self._check()
        except sqlite3.Error as exc:
            raise SchemaSurprise(f"cannot read {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    # logged models and model versions: their SQL lives in models_sql
    def logged_models(self, run_id: str, experiment_id: str):
        return models_sql.logged_models(self._db, run_id, experiment_id)

    def model_versions(self, name: str, run_id: str):
        return models_sql.model_versions(self._db, name, run_id)

    def model_version_uri(self, name: str, version: str):
        return models_sql.model_version_uri(self._db, name, version)

    def _check(self) -> None:
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, columns in _NEEDED.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")} if table in tables else set()
            if not columns <= have:
                raise SchemaSurprise(f"table {table} lacks {sorted(columns - have)}")
        self.registry = all(t in tables for t in _REGISTRY)
        (revision,) = self._db.execute("SELECT version_num FROM alembic_version").fetchone() or ("",)
        known = _known_revisions()
        if known is None or revision not in known:
            raise SchemaSurprise(f"schema revision {revision!r} is not one the installed mlflow knows")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(experiments)")}
        if "workspace" in columns and self._db.execute(
                "SELECT COUNT(DISTINCT workspace) FROM experiments").fetchone()[0] > 1:
            raise SchemaSurprise("the store uses several workspaces")

    # -- experiments ---------------------------------------------------------------------------
    def experiments(self) -> list[Experiment]:
        rows = self._db.execute("SELECT experiment_id, name, lifecycle_stage, artifact_location FROM experiments "
                                "ORDER BY experiment_id")
        return [Experiment(str(i), n, s or "active", a or "") for i, n, s, a in rows]

    # -- runs ----------------------------------------------------------------------------------
    def read_runs(self, experiment_id: str) -> list[Run]:
        """Every active run of the experiment."""
        return self._runs("r.experiment_id = ? AND r.lifecycle_stage = 'active'", (int(experiment_id),))

    def read_changes(self, experiment_id: str, since_ms: int, have: dict[str, Run]) -> tuple[list[Run], set[str]]:
        """Runs of the experiment started, ended, deleted or given a metric since ``since_ms``, still
        running, or not in ``have`` (the caller's runs); and those of ``have`` no longer active."""
        exp = int(experiment_id)
        alive = {r for (r,) in self._db.execute(
            "SELECT run_uuid FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'", (exp,))}
        changed = {r for (r,) in self._db.execute(
            "SELECT run_uuid FROM runs WHERE experiment_id = ? AND (start_time >= ? OR end_time >= ? "
            "OR end_time IS NULL OR deleted_time >= ? OR status IN ('RUNNING', 'SCHEDULED')) "
            "UNION SELECT m.run_uuid FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
            "WHERE r.experiment_id = ? AND m.timestamp >= ?", (exp, since_ms, since_ms, since_ms, exp, since_ms))}
        wanted = sorted((changed & alive) | (alive - have.keys()))
        found = []
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            found += self._runs(f"r.run_uuid IN ({','.join('?' * len(chunk))})", tuple(chunk))
        return found, set(have) - alive

    def get_run(self, run_id: str) -> Run | None:
        found = self._runs("r.run_uuid = ?", (run_id,))
        return found[0] if found else None

    def _runs(self, where: str, args: tuple) -> list[Run]:
        db = self._db
        runs = {row[0]: Run(row[0], str(row[1]), row[2] or "", row[3] or "", row[4], row[5], row[6] or "active",
                            row[7] or "")
                for row in db.execute("SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, "
                                      "r.end_time, r.lifecycle_stage, r.artifact_uri FROM runs r WHERE " + where,
                                      args)}
        if not runs:
            return []
        for run_id, key, value in self._key_values("params", where, args):
            runs[run_id].params[key] = value
        for run_id, key, value in self._key_values("tags", where, args):
            runs[run_id].tags[key] = value
        for run_id, key, value, is_nan in db.execute(
                "SELECT m.run_uuid, m.key, m.value, m.is_nan FROM latest_metrics m "
                "JOIN runs r ON r.run_uuid = m.run_uuid WHERE " + where, args):
            runs[run_id].metrics[key] = float("nan") if is_nan else float(value)
        inputs: dict[str, list[Dataset]] = {}
        for run_id, name, digest, context in db.execute(
                "SELECT i.destination_id, d.name, d.digest, t.value FROM inputs i "
                "JOIN datasets d ON d.dataset_uuid = i.source_id "
                "JOIN runs r ON r.run_uuid = i.destination_id "
                "LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.name = ? "
                "WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND " + where,
                (naming.DATASET_CONTEXT_TAG, *args)):
            inputs.setdefault(run_id, []).append(Dataset(name, digest, context))
        for run_id, found in inputs.items():
            runs[run_id].inputs = tuple(found)
        return list(runs.values())

    def _key_values(self, table: str, where: str, args: tuple):
        """(run id, key, value) rows of ``table`` (``params`` or ``tags``) for the runs ``where`` picks."""
        return self._db.execute(f"SELECT x.run_uuid, x.key, x.value FROM {table} x "
                                "JOIN runs r ON r.run_uuid = x.run_uuid WHERE " + where, args)

    # -- registry ------------------------------------------------------------------------------
    def alias_holders(self, alias: str | None = None) -> list[ModelVersion]:
        """Model versions that hold an alias (``alias`` only, when given)."""
        if not self.registry:
            return []
        sql = ("SELECT a.name, a.version, v.run_id, a.alias FROM registered_model_aliases a "
               "JOIN model_versions v ON v.name = a.name AND v.version = a.version")
        rows = self._db.execute(sql + (" WHERE a.alias = ?" if alias else ""), (alias,) if alias else ())
        return [ModelVersion(n, str(v), r, a) for n, v, r, a in rows]
