"""Reads an MLflow tracking server over its REST API with urllib: no mlflow import.

Credentials come from where MLflow's client takes them (``MLFLOW_TRACKING_TOKEN``,
``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, a ``user:password@`` in the URI) and go only into
request headers: never into a message, a log line or the cache.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import locations, naming
from .model import Dataset, Experiment, LoggedModel, ModelVersion, ReadError, Run
from .search_source import SearchSource, literal

TIMEOUT_S = 15.0
PAGE = 10_000  # runs per search request
_USERINFO = re.compile(r"^(?P<scheme>https?://)(?P<userinfo>[^/?#@]*)@")


def handles(uri: str) -> bool:
    """True when this module can read ``uri`` (plain http(s), no auth plugin)."""
    return uri.startswith(("http://", "https://")) and not os.environ.get("MLFLOW_TRACKING_AUTH")


class RestSource(SearchSource):
    def __init__(self, uri: str) -> None:
        self.shown = locations.display_uri(uri)
        m = _USERINFO.match(uri)
        self._headers = {"Content-Type": "application/json", "User-Agent": "mlops-magics"}
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if m:
            user, _, password = urllib.parse.unquote(m["userinfo"]).partition(":")
            uri = m["scheme"] + uri[m.end():]
        self.base = uri.rstrip("/")
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif user:
            self._headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        self._ssl = _tls() if self.base.startswith("https://") else None

    # -- one request ---------------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None, query: dict | None = None, *, raw: bool = False):
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, headers=self._headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=self._ssl) as resp:
                content = resp.read()
            return content if raw else json.loads(content or b"{}")
        except urllib.error.HTTPError as exc:
            return self._http_error(exc, path)
        except (urllib.error.URLError, OSError):
            raise ReadError(f"cannot reach MLflow at {self.shown}: is the server running?") from None

    def _http_error(self, exc: urllib.error.HTTPError, path: str):
        try:
            answer = json.loads(exc.read() or b"{}")
        except ValueError:
            answer = {}
        if exc.code == 404 or answer.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
            return None
        if exc.code in (401, 403):
            raise ReadError(f"MLflow at {self.shown} refused the read (HTTP {exc.code}): set MLFLOW_TRACKING_TOKEN "
                            "or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD") from None
        message = str(answer.get("message") or exc.reason).splitlines()[0][:300] if (answer or exc.reason) else ""
        raise ReadError(f"MLflow at {self.shown} could not answer {path} (HTTP {exc.code}): {message}") from None

    # -- operations ----------------------------------------------------------------------------
    def batch(self, calls: list[tuple[str, dict]]) -> list:
        return [getattr(self, "_op_" + op)(**kwargs) for op, kwargs in calls]

    def _every(self, path: str, key: str, body: dict | None = None, query: dict | None = None):
        """Every item under ``key`` of a paged search: a POST of ``body``, else a GET of ``query``."""
        token = None
        while True:
            more = {"page_token": token} if token else {}
            if body is not None:
                page = self._request(path, {**body, **more}) or {}
            else:
                page = self._request(path, query={**(query or {}), **more}) or {}
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def _op_experiments(self) -> list[Experiment]:
        body = {"max_results": 1000, "view_type": "ALL"}
        found = self._every("/api/2.0/mlflow/experiments/search", "experiments", body)
        return [Experiment(str(e["experiment_id"]), e["name"], e.get("lifecycle_stage", "active"),
                           e.get("artifact_location", "")) for e in found]

    def _op_search(self, experiment_id: str, filter: str = "", deleted: bool = False) -> list[Run]:
        body = {"experiment_ids": [experiment_id], "filter": filter, "max_results": PAGE,
                "run_view_type": "DELETED_ONLY" if deleted else "ACTIVE_ONLY",
                "order_by": ["attributes.start_time DESC"]}
        return [_run(r) for r in self._every("/api/2.0/mlflow/runs/search", "runs", body)]

    def _op_get_run(self, run_id: str) -> Run | None:
        answer = self._request("/api/2.0/mlflow/runs/get", query={"run_id": run_id})
        return _run(answer["run"]) if answer and "run" in answer else None

    def _op_alias_holders(self, alias: str | None) -> list[ModelVersion]:
        found = []
        for model in self._every("/api/2.0/mlflow/registered-models/search", "registered_models",
                                 query={"max_results": 1000}):
            for held in model.get("aliases", []):
                if alias in (None, held["alias"]):
                    version = self._request("/api/2.0/mlflow/model-versions/get",
                                            query={"name": model["name"], "version": held["version"]}) or {}
                    run_id = version.get("model_version", {}).get("run_id")
                    found.append(ModelVersion(model["name"], str(held["version"]), run_id, held["alias"]))
        return found

    def _op_logged_models(self, run_id: str, experiment_id: str) -> list[LoggedModel]:
        body = {"experiment_ids": [experiment_id], "filter": f"source_run_id = {literal(run_id)}"}
        found = [m.get("info", {}) for m in self._every("/api/2.0/mlflow/logged-models/search", "models", body)]
        return [LoggedModel(i["model_id"], i.get("name", ""), i.get("artifact_uri", ""),
                            int(i["creation_timestamp_ms"]) if i.get("creation_timestamp_ms") is not None else None)
                for i in found]

    def _op_model_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        query = {"filter": f"name = {literal(name)} and run_id = {literal(run_id)}", "max_results": 1000}
        return [ModelVersion(v["name"], str(v["version"]), v.get("run_id"), None, v.get("source", ""))
                for v in self._every("/api/2.0/mlflow/model-versions/search", "model_versions", query=query)]

    def _op_model_version_uri(self, name: str, version: str) -> str | None:
        answer = self._request("/api/2.0/mlflow/model-versions/get-download-uri",
                               query={"name": name, "version": str(version)})
        return (answer or {}).get("artifact_uri")

    def _op_list_artifacts(self, run_id: str, folder: str) -> list[str]:
        answer = self._request("/api/2.0/mlflow/artifacts/list", query={"run_id": run_id, "path": folder}) or {}
        return [f["path"] for f in answer.get("files", []) if not f.get("is_dir")]

    def _op_download_artifact(self, run_id: str, path: str, dest: str) -> str:
        content = self._request("/get-artifact", query={"run_uuid": run_id, "path": path}, raw=True)
        if content is None:
            raise ReadError(f"run {run_id} has no artifact {path} at {self.shown}")
        target = Path(dest, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return str(target)


def _tls() -> ssl.SSLContext:
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return ssl._create_unverified_context()  # the user asked for it, as with MLflow's client
    ctx = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    if cert:
        ctx.load_cert_chain(cert)
    return ctx


def _number(value) -> float:
    return float(value)  # protobuf's JSON writes NaN and Infinity as strings, float() reads both


def _run(r: dict) -> Run:
    info, data = r.get("info", {}), r.get("data", {})
    inputs = []
    for d in (r.get("inputs") or {}).get("dataset_inputs", []):
        tags = {t["key"]: t.get("value") for t in d.get("tags", [])}
        ds = d.get("dataset", {})
        inputs.append(Dataset(ds.get("name", ""), ds.get("digest", ""), tags.get(naming.DATASET_CONTEXT_TAG)))
    end = info.get("end_time")
    return Run(info.get("run_id") or info.get("run_uuid"), str(info.get("experiment_id")), info.get("run_name", ""),
               info.get("status", ""), int(info["start_time"]) if info.get("start_time") is not None else None,
               int(end) if end is not None else None, info.get("lifecycle_stage", "active"),
               info.get("artifact_uri", ""),
               {p["key"]: p.get("value", "") for p in data.get("params", [])},
               {m["key"]: _number(m.get("value", "nan")) for m in data.get("metrics", [])},
               {t["key"]: t.get("value", "") for t in data.get("tags", [])}, tuple(inputs))

