"""The helper process that reads with MLflow's own client, for stores read no other way
(PostgreSQL, MySQL, Databricks, an auth plugin, a SQLite schema this package does not know).

``python -m mlops_magics.store_read.client_process`` reads ``{"uri": ..., "calls": [[op, kwargs], ...]}``
on stdin (never argv: the URI may hold a password) and writes ``{"results": [...]}`` or
``{"error": "..."}`` on stdout. mlflow is imported here, never in the process that asked.
"""

from __future__ import annotations

import json
import sys


def _run(run) -> list:
    from .model import Dataset, Run

    ctx = "mlflow.data.context"
    inputs = tuple(Dataset(d.dataset.name, d.dataset.digest, next((t.value for t in d.tags or [] if t.key == ctx), None))
                   for d in (getattr(run.inputs, "dataset_inputs", None) or []))
    i = run.info
    return Run(i.run_id, str(i.experiment_id), i.run_name or "", i.status, i.start_time, i.end_time, i.lifecycle_stage,
               i.artifact_uri or "", dict(run.data.params), dict(run.data.metrics), dict(run.data.tags),
               inputs).to_json()


class _Ops:
    def __init__(self, uri: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def experiments(self) -> list:
        from mlflow.entities import ViewType

        return [[e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location or ""]
                for e in self.client.search_experiments(view_type=ViewType.ALL, max_results=50_000)]

    def search(self, experiment_id: str, filter: str = "", deleted: bool = False) -> list:
        from mlflow.entities import ViewType

        view = ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY
        found = _every(self.client.search_runs, experiment_ids=[experiment_id], filter_string=filter,
                       run_view_type=view, max_results=50_000, order_by=["attributes.start_time DESC"])
        return [_run(r) for r in found]

    def get_run(self, run_id: str) -> list | None:
        run = _unless_missing(self.client.get_run, run_id)
        return _run(run) if run is not None else None

    def alias_holders(self, alias: str | None) -> list:
        found = []
        for model in _every(self.client.search_registered_models, max_results=1000):
            for name, version in (getattr(model, "aliases", None) or {}).items():
                if alias in (None, name):
                    run_id = self.client.get_model_version(model.name, str(version)).run_id
                    found.append([model.name, str(version), run_id, name])
        return found

    def logged_models(self, run_id: str, experiment_id: str) -> list:
        from .search_source import literal

        found = _every(self.client.search_logged_models, experiment_ids=[experiment_id],
                       filter_string=f"source_run_id = {literal(run_id)}")
        return [[m.model_id, m.name, m.artifact_location or "", m.creation_timestamp] for m in found]

    def model_versions(self, name: str, run_id: str) -> list:
        from .search_source import literal

        found = self.client.search_model_versions(f"name = {literal(name)} and run_id = {literal(run_id)}")
        return [[v.name, str(v.version), v.run_id, None, v.source or ""] for v in found]

    def model_version_uri(self, name: str, version: str) -> str | None:
        return _unless_missing(self.client.get_model_version_download_uri, name, str(version))

    def list_artifacts(self, run_id: str, folder: str) -> list:
        return [f.path for f in self.client.list_artifacts(run_id, folder) if not f.is_dir]

    def download_artifact(self, run_id: str, path: str, dest: str) -> str:
        return self.client.download_artifacts(run_id, path, dest)


def _unless_missing(read, *args):
    """``read(*args)``, or None when MLflow says there is no such thing."""
    from mlflow.exceptions import MlflowException

    try:
        return read(*args)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _every(search, **kwargs):
    """Every item of one of MlflowClient's paged searches."""
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def main() -> int:
    request = json.loads(sys.stdin.read())
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever mlflow prints must not corrupt the answer
    try:
        ops = _Ops(request["uri"])
        results = [getattr(ops, op)(**kwargs) for op, kwargs in request["calls"]]
        answer = {"results": results}
    except Exception as exc:
        from ..errors import one_line

        answer = {"error": one_line(exc), "type": type(exc).__name__}
    out.write(json.dumps(answer))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
