"""Reads through MLflow's search API (a server over REST, or the client in a helper process).

Both speak the same operations (``experiments``, ``search``, ``get_run``, ``alias_holders``,
``logged_models``, ``model_versions``, ``model_version_uri``, ``list_artifacts``,
``download_artifact``) through :meth:`SearchSource.batch`, so an
incremental refresh is one batch: one round of requests, or one helper process.
"""

from __future__ import annotations

from .model import Experiment, LoggedModel, ModelVersion, Run

_IDS_PER_QUERY = 100  # run ids in one ``attributes.run_id IN (...)`` filter


class SearchSource:
    """What a source that can only search must implement: ``batch([(op, kwargs), ...])``."""

    def batch(self, calls: list[tuple[str, dict]]) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def experiments(self) -> list[Experiment]:
        return self.batch([("experiments", {})])[0]

    def read_runs(self, experiment_id: str) -> list[Run]:
        return self.batch([("search", {"experiment_id": experiment_id})])[0]

    def read_changes(self, experiment_id: str, since_ms: int, have: dict[str, Run]) -> tuple[list[Run], set[str]]:
        """Runs started or ended since ``since_ms``, running now or when last read; and the
        deleted ones. (A finished run's later metric, tag or hard deletion waits for a full read.)"""
        ask = [("search", {"experiment_id": experiment_id, "filter": f"attributes.start_time >= {since_ms}"}),
               ("search", {"experiment_id": experiment_id, "filter": f"attributes.end_time >= {since_ms}"}),
               ("search", {"experiment_id": experiment_id, "filter": "attributes.status = 'RUNNING'"}),
               ("search", {"experiment_id": experiment_id, "deleted": True})]
        running = sorted(r.run_id for r in have.values() if r.running)
        for i in range(0, len(running), _IDS_PER_QUERY):
            ids = ", ".join(f"'{r}'" for r in running[i:i + _IDS_PER_QUERY])
            ask.append(("search", {"experiment_id": experiment_id, "filter": f"attributes.run_id IN ({ids})"}))
        answers = self.batch(ask)
        deleted = {r.run_id for r in answers[3]}
        changed = {r.run_id: r for found in answers[:3] + answers[4:] for r in found if r.run_id not in deleted}
        return list(changed.values()), deleted

    def get_run(self, run_id: str) -> Run | None:
        return self.batch([("get_run", {"run_id": run_id})])[0]

    def alias_holders(self, alias: str | None = None) -> list[ModelVersion]:
        return self.batch([("alias_holders", {"alias": alias})])[0]

    def logged_models(self, run_id: str, experiment_id: str) -> list[LoggedModel]:
        return self.batch([("logged_models", {"run_id": run_id, "experiment_id": experiment_id})])[0]

    def model_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        return self.batch([("model_versions", {"name": name, "run_id": run_id})])[0]

    def model_version_uri(self, name: str, version: str) -> str | None:
        return self.batch([("model_version_uri", {"name": name, "version": version})])[0]

    def list_artifacts(self, run_id: str, folder: str) -> list[str]:
        return self.batch([("list_artifacts", {"run_id": run_id, "folder": folder})])[0]

    def download_artifact(self, run_id: str, path: str, dest: str) -> str:
        return self.batch([("download_artifact", {"run_id": run_id, "path": path, "dest": dest})])[0]


def literal(text: str) -> str:
    """``text`` as a string in an MLflow search filter: single-quoted, or double-quoted when it
    holds a single quote (MLflow's filter parser takes no backslash escapes)."""
    return f'"{text}"' if "'" in text else f"'{text}'"
