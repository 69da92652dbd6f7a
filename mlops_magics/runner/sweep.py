"""``run_sweep``: one notebook over a grid of parameters, one job run per point, in parallel on Dask.

papermill runs one notebook at a time (papermill#2, open since 2017). Here every point of
the cartesian product is a ``run_notebook`` job on a Dask worker process (``fanout/dask_points.py``), a
child run of one sweep run (``mlops.kind=sweep``). Records go through the shared journal;
the journal's one delivery process delivers everything, started before the cluster. The
points are ranked by the metrics the journal kept for each job, and the best is tagged on
the sweep run.
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import locations, naming
from ..errors import MlopsError, one_line
from ..journal.delivery import OUTAGE_GRACE, ProcessDelivery
from ..journal import records
from ..tracking.lineage import source_tags
from .run import JobResult
from .parameters import ParameterError, read_notebook_parameters, resolve

log = logging.getLogger("mlops_magics")

# Primary-metric names picked automatically, best guesses first, by direction.
_HIGHER = ("f1", "f1_score", "accuracy", "balanced_accuracy", "roc_auc", "auc", "r2", "precision",
           "recall", "score")
_LOWER = ("loss", "val_loss", "log_loss", "rmse", "mse", "mae", "error")
_DELIVERY_TIMEOUT = 120.0


@dataclass
class SweepPoint:
    """One grid point: its values, how its job ended, and its primary metric (None if absent)."""

    parameters: dict[str, Any]
    job: JobResult
    value: float | None = None


@dataclass
class SweepResult:
    """How a sweep ended. ``points`` are sorted best first; failed points come last."""

    run_id: str | None
    key: str
    notebook: str
    metric: str | None
    greater_is_better: bool
    points: list[SweepPoint] = field(default_factory=list)
    note: str = ""  # why nothing was ranked, or what is still pending

    @property
    def best(self) -> SweepPoint | None:
        first = self.points[0] if self.points else None
        return first if first is not None and first.value is not None else None

    @property
    def finished(self) -> int:
        return sum(p.job.status == "FINISHED" for p in self.points)

    @property
    def status(self) -> str:
        """FAILED only when every point failed."""
        return "FINISHED" if self.finished else "FAILED"

    def table(self):
        from ..display import Table

        names = list(self.points[0].parameters) if self.points else []
        rows = []
        for p in self.points:
            outcome = p.job.status if p.job.failure is None else f"FAILED ({p.job.failure}: {p.job.error or ''})"
            value = "" if p.value is None else f"{p.value:.6g}"
            mark = "*" if p is self.best else ""
            run = p.job.run_id or ("(pending)" if p.job.key else "")  # no key: the task never reported
            rows.append([mark, *(_short(p.parameters[n]) for n in names), naming.clip(outcome, 70), value, run])
        direction = "higher" if self.greater_is_better else "lower"
        caption = (f"sweep of {Path(self.notebook).name}: {len(self.points)} points, {self.finished} finished, "
                   f"{len(self.points) - self.finished} failed; sweep run {self.run_id or '(pending)'}")
        if self.metric:
            caption += f"; sorted by {self.metric} ({direction} is better), * = best"
        if self.note:
            caption += f"\n{self.note}"
        return Table(["", *names, "status", self.metric or "metric", "run id"], rows, caption=caption)

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def _short(value: Any) -> str:
    from ..tracking.values import param_string

    return naming.clip(param_string(value), 30)


# -- the grid ------------------------------------------------------------------------
def parse_grid(items) -> dict[str, list[str]]:
    """``NAME=V1,V2`` texts as given to ``--grid``. Commas inside brackets or quotes stay in a value."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--grid wants NAME=V1,V2, got {item!r}")
        if name in grid:
            raise ParameterError(f"--grid {name} given twice: put all its values in one NAME=V1,V2")
        grid[name] = [_unquote(v.strip()) for v in _split_values(text)]
        if not any(grid[name]):
            raise ParameterError(f"--grid {name} has no values: give NAME=V1,V2")
    return grid


def _split_values(text: str) -> list[str]:
    out, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    return [*out, text[start:]]


def _unquote(value: str) -> str:
    """``'a,b'`` or ``"a,b"``: the quotes only protect the comma."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        try:
            return str(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            pass
    return value


def grid_points(declared, grid: dict[str, list], notebook: str) -> list[dict[str, Any]]:
    """Every point of the grid, typed by the notebook's declared parameters (text is converted).

    Raises ParameterError, naming the closest declared name, before anything runs.
    """
    if not grid:
        raise ParameterError("the grid is empty: give at least one NAME=V1,V2")
    typed: dict[str, list] = {}
    for name, values in grid.items():
        values = [values] if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") else list(values)
        if not values:
            raise ParameterError(f"grid {name!r} has no values")
        typed[name] = [_typed(declared, name, v, notebook) for v in values]
    return [dict(zip(typed, combo)) for combo in itertools.product(*typed.values())]


def _typed(declared, name: str, value: Any, notebook: str) -> Any:
    if isinstance(value, str):
        return resolve(declared, texts=[(name, value)], notebook=notebook)[name]
    return resolve(declared, given={name: value}, notebook=notebook)[name]


# -- the sweep -----------------------------------------------------------------------
def run_sweep(path: str | os.PathLike, grid: dict[str, list], *, workers: int | None = None,
              cluster: str | None = None, experiment: str | None = None, timeout: float | None = None,
              kernel: str | None = None, metric: str | None = None, greater_is_better: bool = True,
              progress: bool = True, tracking_uri: str | None = None) -> SweepResult:
    """Run a notebook once per point of ``grid`` (the cartesian product), in parallel.

    Parameters
    ----------
    path
        The notebook; its ``parameters`` cell declares the names the grid may use.
    grid
        ``{name: [values]}``. Text values (as from ``--grid``) are converted to each
        parameter's type; every point is checked before any kernel starts.
    workers
        Processes of the local Dask cluster (default: the number of CPUs, at most one per point).
    cluster
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead. Its workers
        need this package; those on other hosts get the notebook's text if its path is missing
        there, and deliver their own records to MLflow.
    experiment, timeout, kernel, tracking_uri
        As for ``run_notebook``: the experiment of the sweep and its jobs, seconds any cell may
        run, the kernel, where MLflow is.
    metric
        The metric that ranks the points. Default: ``f1`` if every finished job logged it, else
        a well-known name they all logged (accuracy, ..., score; with ``greater_is_better=False``
        loss, rmse, ...), else the first in alphabetical order.
    greater_is_better
        Direction of ``metric``.
    progress
        A progress bar over the points (on stderr).

    Returns
    -------
    SweepResult
        The sweep run (``mlops.kind=sweep``), FAILED only when every point failed; each
        point's values, JobResult and metric value, best first. The best job's run id is
        tagged on the sweep run (``mlops.sweep.best_run``).

    A failing point (cell error, timeout, dead kernel) is a FAILED job run and never stops
    the others. A point whose Dask worker process dies is run again on another worker, as
    Dask retries; the run it left behind is ended FAILED with ``mlops.failure=kernel_died``.
    """
    from ..journal.store import Journal
    from .fanout.local_processes import warm_forkserver
    from .run import _check_kernel
    from .kernels.forks import KernelForks

    if cluster and workers:
        raise MlopsError("--workers sizes the local cluster: with --cluster the scheduler's workers run the points")
    notebook = Path(path).resolve()
    nb, declared = read_notebook_parameters(notebook)
    points = grid_points(declared, grid, notebook.name)  # refused here, before any process starts
    kernel_name = _check_kernel(kernel, nb)
    # The helper processes start first: their imports overlap all that follows here (Dask
    # alone takes this process half a second). Forking a process that has loaded system
    # frameworks is unsafe on macOS: there the kernels start the usual way.
    forks = KernelForks() if not cluster and sys.platform.startswith("linux") else None
    journal = Journal(locations.journal_path())
    # The journal's one delivery process delivers for the whole sweep: started now, it loads
    # mlflow (two seconds of CPU) while the cluster starts. This process never imports mlflow.
    delivery = ProcessDelivery(locations.tracking_uri(tracking_uri), journal)
    result = None
    try:
        if forks is not None:
            forks.start()
        if not cluster:
            warm_forkserver()
        delivery.warm()
        result = _sweep(notebook, grid, points, kernel_name, delivery, forks, workers=workers, cluster=cluster,
                        experiment=experiment, timeout=timeout, metric=metric,
                        greater_is_better=greater_is_better, progress=progress)
    finally:
        if forks is not None:
            forks.close()
        delivery.close(timeout=_DELIVERY_TIMEOUT if result is not None else 10.0)
        left = delivery.pending(everyone=True)  # the kernels' records too
        journal.close()
    if left and not result.note:
        result.note = f"{left} records wait in the journal for MLflow: `mlops-magics sync` delivers them"
    return result


def _sweep(notebook: Path, grid, points, kernel_name: str, delivery, forks, *, workers, cluster, experiment,
           timeout, metric, greater_is_better, progress) -> SweepResult:
    from .fanout import dask_points as _fanout

    spec = _fanout.SweepTask(
        notebook=str(notebook), source=notebook.read_text(encoding="utf-8") if cluster else "", uri=delivery.uri,
        experiment=locations.experiment_name(experiment), home=str(locations.home().resolve()), cwd=os.getcwd(),
        kernel=kernel_name, timeout=timeout, sweep_key=records.new_key(), host=socket.gethostname(),
        env=None if cluster else dict(os.environ), forks=forks.path if forks else None)
    started, stopped = False, []
    try:
        with _fanout.Dask(cluster, min(workers or os.cpu_count() or 1, len(points))) as dask:
            delivery.submit([_start_op(spec, grid, len(points))])
            started = True
            jobs = _fanout.run_points(dask.client, spec, points, delivery, progress, stopped)
            dask.close_soon()  # the cluster winds down while MLflow takes the last records
            result = _rank(spec, points, jobs, delivery, metric, greater_is_better)
        delivery.submit(_end_ops(spec.sweep_key, result))
        return result
    except BaseException as exc:
        if started:  # the cluster is closed here: no worker records into these runs any more
            ops = [op for key in stopped for op in _interrupted_ops(key, exc)]
            delivery.submit(ops + _interrupted_ops(spec.sweep_key, exc))
        raise


def _start_op(spec, grid: dict[str, list], count: int) -> records.Op:
    shown = {k: [v if isinstance(v, (int, float, str, bool)) else repr(v) for v in vs] for k, vs in grid.items()}
    tags = {naming.KIND: naming.KIND_SWEEP, **source_tags(spec.notebook),
            naming.SWEEP_GRID: naming.clip(json.dumps(shown), naming.MAX_TAG_VAL_LENGTH),
            naming.SWEEP_POINTS: str(count)}
    name = f"sweep {Path(spec.notebook).stem} " + " ".join(f"{k}x{len(v)}" for k, v in grid.items())
    return records.start(spec.sweep_key, experiment=spec.experiment, name=name[:250],
                         start_ms=records.now_ms(), tags=tags)


def _end_ops(key: str, result: SweepResult) -> list[records.Op]:
    tags = {naming.SWEEP_FAILED: str(len(result.points) - result.finished)}
    if result.metric:
        tags[naming.SWEEP_METRIC] = result.metric
        tags[naming.SWEEP_GOAL] = "max" if result.greater_is_better else "min"
    if result.best is not None and result.best.job.run_id:
        tags[naming.SWEEP_BEST] = result.best.job.run_id
    if not result.finished:
        first = next((p.job.error for p in result.points if p.job.error), "")
        tags.update({naming.FAILURE: naming.FAILURE_ERROR,
                     naming.ERROR: naming.clip(f"every point failed; the first: {first}", naming.MAX_TAG_VAL_LENGTH)})
    return [records.log(key, tags=tags), records.end(key, status=result.status, end_ms=records.now_ms())]


def _interrupted_ops(key: str, exc: BaseException) -> list[records.Op]:
    """A run the sweep's end cut short: Ctrl-C / SIGTERM (``interrupted``), or an error of the sweep."""
    kind = naming.FAILURE_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else naming.FAILURE_ERROR
    error = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyboardInterrupt) else one_line(exc)
    tags = {naming.FAILURE: kind, naming.ERROR: naming.clip(f"the sweep stopped: {error}", naming.MAX_TAG_VAL_LENGTH)}
    return [records.log(key, tags=tags), records.end(key, status="FAILED", end_ms=records.now_ms())]


# -- ranking -------------------------------------------------------------------------
def pick_metric(metrics: list[dict[str, float]], greater_is_better: bool = True) -> str | None:
    """The primary metric among those every run logged: f1, else a well-known name, else the first."""
    from ..store_read import own_metrics

    own = [set(own_metrics(m)) for m in metrics]
    common = set.intersection(*own) if own else set()
    for name in (_HIGHER if greater_is_better else _LOWER):
        if name in common:
            return name
    return min(common) if common else None


def _rank(spec, points, jobs: list[JobResult], delivery, metric: str | None,
          greater_is_better: bool) -> SweepResult:
    delivery.flush(_DELIVERY_TIMEOUT, everyone=True, outage_grace=OUTAGE_GRACE)
    for job in jobs:
        if job.run_id is None and job.key:
            job.run_id = delivery.run_id(job.key)
    result = SweepResult(run_id=delivery.run_id(spec.sweep_key), key=spec.sweep_key, notebook=spec.notebook,
                         metric=metric, greater_is_better=greater_is_better)
    logged = _job_metrics(spec, delivery.journal, jobs)
    done = [logged.get(j.key, {}) for j in jobs if j.status == "FINISHED" and j.key]
    result.metric = metric or pick_metric(done, greater_is_better)
    for point, job in zip(points, jobs):
        value = logged.get(job.key, {}).get(result.metric) if job.status == "FINISHED" else None
        result.points.append(SweepPoint(parameters=point, job=job, value=value))
    sign = -1.0 if greater_is_better else 1.0
    result.points.sort(key=lambda p: (p.job.status != "FINISHED", p.value is None,
                                      sign * p.value if p.value is not None else 0.0))
    result.note = _note(result, done, metric)
    return result


def _note(result: SweepResult, done: list[dict], asked: str | None) -> str:
    from ..errors import did_you_mean
    from ..store_read import own_metrics

    names = own_metrics({k for m in done for k in m})
    if asked and done and result.best is None:
        return (f"no finished point logged the metric {asked!r}.{did_you_mean(asked, names)} "
                f"They logged: {', '.join(names) or 'none'}")
    if done and result.metric is None:
        return "the finished points logged no metric in common, so they are not ranked: pass --metric"
    return ""


def _job_metrics(spec, journal, jobs: list[JobResult]) -> dict[str, dict[str, float]]:
    """Each job's latest metrics, as MLflow shows them once delivered: {job key: {name: value}}.

    From this host's journal, which keeps them as they are recorded (delivered or not, and
    without loading mlflow here); jobs that ran on other hosts of a ``--cluster`` recorded
    into their own journals and delivered: theirs are read back from MLflow.
    """
    found = journal.latest_metrics(spec.uri, [j.key for j in jobs if j.key])
    elsewhere = {j.run_id: j.key for j in jobs if spec.env is None and j.run_id and not found.get(j.key)}
    if elsewhere:
        found.update({elsewhere[run_id]: m for run_id, m in _mlflow_metrics(spec).items() if run_id in elsewhere})
    return found


def _mlflow_metrics(spec) -> dict[str, dict[str, float]]:
    """The metrics of the sweep's job runs in MLflow: {run id: {name: value}}."""
    from ..store_read import NoExperiment, Store

    try:
        runs = Store(spec.uri).runs(spec.experiment)
    except NoExperiment:
        return {}
    except Exception as exc:
        log.warning("could not read the sweep's metrics back from MLflow: %s", one_line(exc))
        return {}
    return {r.run_id: dict(r.metrics) for r in runs if r.tags.get(naming.PARENT_SWEEP) == spec.sweep_key}
