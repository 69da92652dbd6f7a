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
from ..errors import MlopsError
from ..store_read import own_values
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


def _job_run(store, run_id: str):
    """The recorded job run (a ``store_read.Run``)."""
    run = store.get_run(run_id)  # ReadError "no run <id> at <store>" when there is none
    if run.tags.get(naming.KIND) != naming.KIND_JOB:
        raise MlopsError(f"run {run_id} is not a notebook job (mlops.kind={run.tags.get(naming.KIND)!r}); "
                         "only runs made by `mlops-magics run` or `sweep` can be reproduced")
    return run


def _notebook(run, use_current: bool) -> tuple[Path, bool]:
    path = Path(run.tags.get(naming.NOTEBOOK, ""))
    if not path.is_file():
        raise MlopsError(f"the job's notebook {path} is not there any more")
    recorded, now = run.tags.get(naming.NOTEBOOK_SHA256), file_sha256(path)
    changed = recorded is not None and recorded != now
    if changed and not use_current:
        raise MlopsError(f"{path.name} changed since run {run.run_id} (sha256 {recorded[:12]} then, "
                         f"{(now or '')[:12]} now): check out the recorded version, or pass --use-current")
    return path, changed


def _parameters(run, path: Path) -> list[tuple[str, str]]:
    from .parameters import read_notebook_parameters

    _, declared = read_notebook_parameters(path)
    return [(k, v) for k, v in run.params.items()
            if declared and k in declared and declared[k].type_name != "expression"]


def reproduce(run_id: str, *, rtol: float = 1e-9, use_current: bool = False, timeout: float | None = None,
              progress: bool = True, tracking_uri: str | None = None) -> Reproduction:
    """Re-run job ``run_id`` with its recorded parameters and compare data and metrics."""
    from ..store_read import Store

    from .run import JobSpec, run_job

    uri = locations.tracking_uri(tracking_uri)
    store = Store(uri)
    original = _job_run(store, run_id)
    path, changed = _notebook(original, use_current)
    experiment = store.experiment_by_id(original.experiment_id).name
    spec = JobSpec(experiment=experiment, timeout=timeout, progress=progress, tracking_uri=uri,
                   tags={naming.REPRODUCES: run_id})
    result = run_job(path, texts=_parameters(original, path), spec=spec)
    out = Reproduction(run_id, result.run_id, result.status, notebook_changed=changed)
    if result.run_id is None:
        raise MlopsError("the re-run's records have not reached MLflow yet: run `mlops-magics sync`, then compare")
    again = store.get_run(result.run_id)
    out.checks = _compare(original, again, rtol)
    return out


def _datasets(run) -> dict[tuple[str, str], str]:
    return {(d.name, d.context or ""): d.digest for d in run.inputs}


def _compare(original, again, rtol: float) -> list[Check]:
    checks = []
    before, after = _datasets(original), _datasets(again)
    for (name, context), digest in sorted(before.items()):
        now = after.get((name, context), "missing")
        checks.append(Check(f"data {name} ({context})", digest[:18], now[:18], now == digest))
    for key, value in sorted(own_values(original.metrics).items()):  # time and memory are not expected to repeat
        now = again.metrics.get(key)
        ok = now is not None and math.isclose(now, value, rel_tol=rtol)
        checks.append(Check(f"metric {key}", f"{value:.10g}", "missing" if now is None else f"{now:.10g}", ok))
    return checks
