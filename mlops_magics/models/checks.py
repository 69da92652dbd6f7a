"""The checks ``promote`` runs before a model may take an alias.

- ``baseline``: the run's ``<metric>`` beats its ``baseline.<metric>`` (logged by
  ``eval=(X, y)``: the dummy model's score on the same held-out data);
- ``loads``: a fresh Python process loads the model from MLflow and predicts on its input
  example (:mod:`.load_check`), as serving would;
- ``signature``: its input and output schema match the alias holder's.

Each gives ``passed``, ``failed: <reason>`` or ``skipped: <reason>`` (nothing to check
against), recorded on the run as ``mlops.promotion.check.<name>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from .. import naming

LOAD_TIMEOUT_S = 300.0


@dataclass
class Check:
    """One check: ``passed`` is None when it was skipped (``reason`` says why)."""

    name: str
    passed: bool | None
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.passed is False

    def tag_value(self) -> str:
        if self.passed:
            return naming.CHECK_PASSED + (f": {self.reason}" if self.reason else "")
        state = naming.CHECK_FAILED if self.passed is False else naming.CHECK_SKIPPED
        return f"{state}: {self.reason}"


def baseline(run, metric: str, value: float, greater_is_better: bool) -> Check:
    """``<metric>`` beats ``baseline.<metric>`` on the run (strictly)."""
    key = naming.metric_baseline(metric)
    base = run.data.metrics.get(key)
    if base is None:
        return Check("baseline", None, f"no {key} on the run (log the model with eval=(X, y) or --eval X,Y)")
    beats = value > base if greater_is_better else value < base
    sign = ">" if greater_is_better else "<"
    if beats:
        return Check("baseline", True, f"{metric}={value:.4g} {sign} {key}={base:.4g}")
    return Check("baseline", False, f"{metric}={value:.4g} does not beat its baseline {key}={base:.4g} "
                                    "(a dummy model scores as well)")


def loads(model_uri: str, tracking_uri: str, timeout: float = LOAD_TIMEOUT_S) -> Check:
    """Load ``model_uri`` in a fresh ``python`` and predict on its input example."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_REGISTRY_URI=tracking_uri)
    argv = [sys.executable, "-m", "mlops_magics.models.load_check", model_uri]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Check("loads", False, f"loading and predicting took over {timeout:.0f} s in a fresh process")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("loads", False, f"the fresh process failed: {naming.clip(tail, 300)}")
    answer = json.loads(lines[-1])
    return Check("loads", bool(answer["ok"]), naming.clip(answer["detail"], 500))


def signature(mine, theirs, holder: str | None) -> Check:
    """``mine`` and ``theirs`` (MLflow ``ModelSignature`` or None) describe the same inputs and outputs."""
    if holder is None:
        return Check("signature", None, "no alias holder to compare with")
    if theirs is None:
        return Check("signature", None, f"{holder} has no signature")
    if mine is None:
        return Check("signature", False, f"this model has no signature while {holder} has one "
                                         "(log it with an input example)")
    for part in ("inputs", "outputs"):
        a, b = _columns(getattr(mine, part)), _columns(getattr(theirs, part))
        if a != b:
            return Check("signature", False, f"{part} differ from {holder}'s: {_difference(a, b)}")
    return Check("signature", True, f"same inputs and outputs as {holder}")


def _columns(schema) -> list[tuple[str | None, str]]:
    if schema is None:
        return []
    out = []
    for spec in schema.to_dict():
        out.append((spec.get("name"), str(spec.get("type") or spec.get("tensor-spec", {}).get("dtype"))))
    return out


def _difference(mine: list, theirs: list) -> str:
    names_mine = [n for n, _ in mine]
    names_theirs = [n for n, _ in theirs]
    if names_mine != names_theirs:
        extra = [n for n in names_mine if n not in names_theirs]
        missing = [n for n in names_theirs if n not in names_mine]
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(str, missing[:5]))}")
        if extra:
            parts.append(f"extra {', '.join(map(str, extra[:5]))}")
        if not parts:
            parts.append("columns in another order")
        if len(mine) != len(theirs):
            parts.append(f"{len(mine)} columns vs {len(theirs)}")
        return "; ".join(parts)
    for (n, t1), (_, t2) in zip(mine, theirs):
        if t1 != t2:
            return f"{n or 'the output'} is {t1}, was {t2}"
    return "they differ"


def signature_of(location: str, tracking_uri: str):
    """The ``ModelSignature`` in the MLmodel at model ``location`` (None when it has none or cannot be read)."""
    import mlflow.artifacts
    from mlflow.models import Model

    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=location.rstrip("/") + "/MLmodel",
                                                   tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return Model.load(path).signature
    except Exception:
        return None


def summary(checks: list[Check]) -> str:
    """The failed checks in one line: ``baseline: ...; loads: ...``."""
    return "; ".join(f"{c.name}: {c.reason}" for c in checks if c.failed)
