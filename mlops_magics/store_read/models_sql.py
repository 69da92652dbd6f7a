"""Logged models and registered model versions of a SQLite store, read with SQL.

The same reads as :class:`~.search_source.SearchSource`'s ``logged_models``, ``model_versions``
and ``model_version_uri``, on the read-only connection that :class:`~.sqlite_source.SqliteSource`
hands them (after its schema checks), with MLflow's own rules: a deleted logged model or model version is
not there, a version's download URI is its storage location, else its source. A store without
these tables (from before MLflow 3, or without a registry) has none.
"""

from __future__ import annotations

import sqlite3

from .model import LoggedModel, ModelVersion

_DELETED_MODEL = "deleted"  # logged_models.lifecycle_stage
_DELETED_VERSION = "Deleted_Internal"  # model_versions.current_stage of a deleted version


def logged_models(db: sqlite3.Connection, run_id: str, experiment_id: str) -> list[LoggedModel]:
    rows = _rows(db, "SELECT model_id, name, artifact_location, creation_timestamp_ms FROM logged_models "
                      "WHERE experiment_id = ? AND source_run_id = ? AND COALESCE(lifecycle_stage, '') != ?",
                 (int(experiment_id), run_id, _DELETED_MODEL))
    return [LoggedModel(i, n, a or "", t) for i, n, a, t in rows]


def model_versions(db: sqlite3.Connection, name: str, run_id: str) -> list[ModelVersion]:
    rows = _rows(db, "SELECT name, version, run_id, source FROM model_versions "
                      "WHERE name = ? AND run_id = ? AND COALESCE(current_stage, '') != ? ORDER BY version",
                 (name, run_id, _DELETED_VERSION))
    return [ModelVersion(n, str(v), r, None, s or "") for n, v, r, s in rows]


def model_version_uri(db: sqlite3.Connection, name: str, version: str) -> str | None:
    rows = _rows(db, "SELECT storage_location, source FROM model_versions "
                      "WHERE name = ? AND version = ? AND COALESCE(current_stage, '') != ?",
                 (name, int(version), _DELETED_VERSION))
    return next((stored or source for stored, source in rows), None)


def _rows(db, sql: str, args: tuple) -> list[tuple]:
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # no such table or column: nothing of the kind in this store
        return []
