"""``reproduce``: re-run a recorded job and prove it gives the same data and metrics.

The notebook must still be the one recorded (same sha256) unless the caller says
to use the current one; the parameters are the recorded ones. Data fingerprints
must match exactly, metrics within a relative tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .. import locations, naming
from ..errors import MlopsError, first_line
from ..tracking.lineage import file_sha256


@dataclass
class Check:
    what: str  # "data X_train (input)" or "metric f1"
    recorded: str
    now: str
    ok: bool


@dataclass
class Reproduction:
    original_run_id: str
    new_run_id: str | None
    status: str
    checks: list[Check] = field(default_factory=list)
    notebook_changed: bool = False

    @property
    def reproduced(self) -> bool:
        return self.status == "FINISHED" and bool(self.checks) and all(c.ok for c in self.checks)

    def why_not(self) -> str:
        if self.status != "FINISHED":
            return f"the re-run ended {self.status}"
        if not self.checks:
            return "the recorded run has no data fingerprints or metrics to compare"
        bad = [c.what for c in self.checks if not c.ok]
        return "differs: " + ", ".join(bad) if bad else ""


def _job_run(client, run_id: str):
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        raise MlopsError(f"no run {run_id} at {locations.display_uri(client.tracking_uri)}: "
                         f"{first_line(exc) or type(exc).__name__}") from None
    if run.data.tags.get(naming.KIND) != naming.KIND_JOB:
        raise MlopsError(f"run {run_id} is not a notebook job (mlops.kind={run.data.tags.get(naming.KIND)!r}); "
                         "only runs made by `mlops-magics run` or `sweep` can be reproduced")
    return run


def _notebook(run, use_current: bool) -> tuple[Path, bool]:
    path = Path(run.data.tags.get(naming.NOTEBOOK, ""))
    if not path.is_file():
        raise MlopsError(f"the job's notebook {path} is not there any more")
    recorded, now = run.data.tags.get(naming.NOTEBOOK_SHA256), file_sha256(path)
    changed = recorded is not None and recorded != now
    if changed and not use_current:
        raise MlopsError(f"{path.name} changed since run {run.info.run_id} (sha256 {recorded[:12]} then, "
                         f"{(now or '')[:12]} now): check out the recorded version, or pass --use-current")
    return path, changed


def _parameters(run, path: Path) -> list[tuple[str, str]]:
    from .parameters import read_notebook_parameters

    _, declared = read_notebook_parameters(path)
    return [(k, v) for k, v in run.data.params.items()
            if declared and k in declared and declared[k].type_name != "expression"]


def reproduce(run_id: str, *, rtol: float = 1e-9, use_current: bool = False, timeout: float | None = None,
              progress: bool = True, tracking_uri: str | None = None) -> Reproduction:
    """Re-run job ``run_id`` with its recorded parameters and compare data and metrics."""
    from mlflow import MlflowClient

    from .execute import run_notebook

    uri = locations.tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    original = _job_run(client, run_id)
    path, changed = _notebook(original, use_current)
    experiment = client.get_experiment(original.info.experiment_id).name
    result = run_notebook(path, texts=_parameters(original, path), experiment=experiment, timeout=timeout,
                          progress=progress, tracking_uri=uri, tags={naming.REPRODUCES: run_id})
    out = Reproduction(run_id, result.run_id, result.status, notebook_changed=changed)
    if result.run_id is None:
        raise MlopsError("the re-run's records have not reached MLflow yet: run `mlops-magics sync`, then compare")
    again = client.get_run(result.run_id)
    out.checks = _compare(original, again, rtol)
    return out


def _datasets(run) -> dict[tuple[str, str], str]:
    return {(i.dataset.name, next((t.value for t in i.tags if t.key == naming.DATASET_CONTEXT_TAG), "")):
            i.dataset.digest for i in run.inputs.dataset_inputs}


def _compare(original, again, rtol: float) -> list[Check]:
    checks = []
    before, after = _datasets(original), _datasets(again)
    for (name, context), digest in sorted(before.items()):
        now = after.get((name, context), "missing")
        checks.append(Check(f"data {name} ({context})", digest[:18], now[:18], now == digest))
    for key, value in sorted(original.data.metrics.items()):
        if key.startswith("system."):
            continue  # time and memory are not expected to repeat
        now = again.data.metrics.get(key)
        ok = now is not None and math.isclose(now, value, rel_tol=rtol)
        checks.append(Check(f"metric {key}", f"{value:.10g}", "missing" if now is None else f"{now:.10g}", ok))
    return checks
