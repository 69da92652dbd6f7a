"""``run_sweep``: one notebook over a grid of parameters, one job run per point, in parallel on Dask.

papermill runs one notebook at a time (papermill#2, open since 2017). Here every point of
the cartesian product is a ``run_notebook`` job on a Dask worker process, a child run of
one sweep run (``mlops.kind=sweep``). A fresh kernel per job, never reused; what hides
kernel start-up is that each worker starts the next job's kernel while the current job
runs. Records go through the shared journal: this process holds the delivery lease for
the whole sweep, so workers and kernels never load mlflow.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from .. import locations, naming
from ..errors import MlopsError
from ..journal.flusher import Delivery
from ..tracking import records
from .execute import JobResult
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
            rows.append([mark, *(_short(p.parameters[n]) for n in names), naming.clip(outcome, 70), value,
                         p.job.run_id or "(pending)"])
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
        grid[name] = _split_values(text)
        if not any(v.strip() for v in grid[name]):
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
        Processes of the local Dask cluster (default: the number of CPUs).
    cluster
        Address of an existing Dask scheduler (``tcp://host:8786``) instead of a local cluster.
        Its workers need this package and the notebook's path (else it is shipped to them).
    experiment, timeout, kernel, tracking_uri
        As for ``run_notebook``: the experiment of the sweep and its jobs, seconds a cell may
        run, the kernel, where MLflow is.
    metric
        The metric that ranks the points (default: ``f1`` if the jobs logged it, else a
        well-known name such as accuracy or score, else the first metric all finished jobs logged).
    greater_is_better
        Direction of ``metric``.
    progress
        Show a progress bar over the points.

    Returns
    -------
    SweepResult
        The sweep run (``mlops.kind=sweep``; FAILED only when every point failed), each point's
        JobResult and metric value, best first; the best run's id is tagged on the sweep run.
    """
    if cluster and workers:
        raise MlopsError("--workers sizes the local cluster; with --cluster the scheduler's workers run the points")
    from .execute import _check_kernel
    from ..journal.store import Journal

    if not cluster:
        _warm_forkserver()
    notebook = Path(path).resolve()
    nb, declared = read_notebook_parameters(notebook)
    points = grid_points(declared, grid, notebook.name)
    spec = _JobSpec(notebook=str(notebook), source=notebook.read_text(encoding="utf-8"),
                    uri=locations.tracking_uri(tracking_uri), experiment=locations.experiment_name(experiment),
                    home=str(locations.home().resolve()), cwd=os.getcwd(), kernel=_check_kernel(kernel, nb),
                    timeout=timeout, sweep_key=records.new_key(), host=socket.gethostname())
    journal = Journal(locations.journal_path())
    delivery = _HeldDelivery(spec.uri, journal)
    try:
        delivery.submit([_start_op(spec, grid, len(points))])  # the flusher loads mlflow meanwhile
        with _Dask(cluster, workers) as client:
            jobs = _fan_out(client, spec, points, delivery, progress)
        result = _rank(spec, points, jobs, delivery, metric, greater_is_better)
        delivery.submit(_end_ops(spec.sweep_key, result))
        left = delivery.close(timeout=_DELIVERY_TIMEOUT)
        result.run_id = journal.run_id(spec.uri, spec.sweep_key)
        if left:
            result.note = f"{left} records wait in the journal for MLflow: `mlops-magics sync` delivers them"
        return result
    except BaseException:
        delivery.submit([records.log(spec.sweep_key, tags={naming.FAILURE: naming.FAILURE_ERROR,
                                                           naming.ERROR: "the sweep was interrupted"}),
                         records.end(spec.sweep_key, status="KILLED", end_ms=records.now_ms())])
        raise
    finally:
        delivery.close(timeout=10.0)
        journal.close()


class _HeldDelivery(Delivery):
    """Holds the URI's delivery lease from its first record to ``close``, even while idle.

    The workers' and kernels' flushers then find the lease taken and leave delivery, and
    the import of mlflow, to this process.
    """

    def _next(self):
        if not self.journal.acquire(self.uri, self.owner):
            return None
        if self.journal.pending(self.uri) == 0 and self.end_orphans() == 0:
            return None
        return self.journal.next_batch(self.uri)


def _start_op(spec: _JobSpec, grid: dict[str, list], count: int) -> records.Op:
    shown = {k: [v if isinstance(v, (int, float, str, bool)) else repr(v) for v in vs] for k, vs in grid.items()}
    tags = {naming.KIND: naming.KIND_SWEEP, naming.NOTEBOOK: spec.notebook,
            naming.MLFLOW_SOURCE_NAME: spec.notebook, naming.MLFLOW_SOURCE_TYPE: "NOTEBOOK",
            naming.SWEEP_GRID: naming.clip(json.dumps(shown), naming.MAX_TAG_VAL_LENGTH),
            naming.SWEEP_POINTS: str(count)}
    name = f"sweep {Path(spec.notebook).stem} " + " ".join(f"{k}×{len(v)}" for k, v in grid.items())
    return records.start(spec.sweep_key, experiment=spec.experiment, name=name[:250],
                         start_ms=records.now_ms(), tags=tags)


def _end_ops(key: str, result: SweepResult) -> list[records.Op]:
    failed = len(result.points) - result.finished
    tags = {naming.SWEEP_FAILED: str(failed)}
    if result.metric:
        tags[naming.SWEEP_METRIC] = f"{result.metric} ({'higher' if result.greater_is_better else 'lower'} is better)"
    if result.best is not None and result.best.job.run_id:
        tags[naming.SWEEP_BEST] = result.best.job.run_id
    if not result.finished:
        first = next((p.job.error for p in result.points if p.job.error), "")
        tags.update({naming.FAILURE: naming.FAILURE_ERROR,
                     naming.ERROR: naming.clip(f"every point failed; the first: {first}", naming.MAX_TAG_VAL_LENGTH)})
    return [records.log(key, tags=tags), records.end(key, status=result.status, end_ms=records.now_ms())]


# -- fan-out on Dask -----------------------------------------------------------------
@dataclass(frozen=True)
class _JobSpec:
    """What a worker needs to run a point, passed explicitly: never the worker's own environment."""

    notebook: str
    source: str  # the notebook's text, for workers that cannot see its path
    uri: str
    experiment: str
    home: str  # the journal's folder
    cwd: str
    kernel: str
    timeout: float | None
    sweep_key: str
    host: str  # where the sweep runs: a worker on the same host shares its journal
    plugin: str = ""
    parent_run_id: str | None = None  # for workers on other hosts, which cannot resolve the key


class _Dask:
    """A client on a new local cluster of process workers, or on the scheduler at ``address``."""

    def __init__(self, address: str | None, workers: int | None) -> None:
        self.address, self.workers = address, workers
        self.cluster = self.client = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if not self.address:
            import dask

            method = "forkserver" if _warm_forkserver() else "spawn"
            with dask.config.set({"distributed.worker.multiprocessing-method": method}):
                self.cluster = LocalCluster(n_workers=self.workers or os.cpu_count() or 1, threads_per_worker=1,
                                            processes=True, dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
            return self.client
        try:
            self.client = Client(self.address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise MlopsError(f"no Dask scheduler answers at {self.address}: {_one_line(exc)}") from None
        try:
            self.client.wait_for_workers(1, timeout=30)
        except TimeoutError:
            self.client.close()
            raise MlopsError(f"the Dask scheduler at {self.address} has no workers (start one: "
                             f"dask worker {self.address})") from None
        return self.client

    def __exit__(self, *exc) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    log.debug("closing Dask failed", exc_info=True)


# What a job needs on a worker: imported once in the fork server, not in every worker.
_WORKER_MODULES = ["distributed", "papermill", "nbconvert", "jupyter_client.manager",
                   "mlops_magics.runner.sweep", "mlops_magics.runner.job"]


def _warm_forkserver() -> bool:
    """Start the process local Dask workers fork from, with a job's modules imported.

    Spawned workers would each import them (seconds of CPU apiece); the fork server does it
    once, and started first it does so while this process checks the grid.
    """
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload(_WORKER_MODULES)
    forkserver.ensure_running()  # no-op when it runs already
    return True


def _fan_out(client, spec: _JobSpec, points: list[dict], delivery, progress: bool) -> list[JobResult]:
    from dataclasses import replace

    from distributed import as_completed
    from tqdm import tqdm

    slots = sum(client.nthreads().values()) or 1
    spec = replace(spec, plugin=f"mlops-magics-kernels-{spec.sweep_key[:12]}",
                   parent_run_id=_run_id_for_remote(client, spec, delivery))
    client.register_plugin(_SpareKernels(), name=spec.plugin)
    try:
        # A point pre-starts its worker's next kernel unless it is among the last ones.
        futures = {client.submit(_run_point, spec, point, i < len(points) - slots, pure=False,
                                 key=f"mlops-sweep-{spec.sweep_key[:8]}-{i}"): i
                   for i, point in enumerate(points)}
        jobs: list[JobResult | None] = [None] * len(points)
        failed = 0
        with tqdm(total=len(points), desc=f"sweep {Path(spec.notebook).name}", unit="point",
                  disable=not progress) as bar:
            for future in as_completed(futures):
                i = futures[future]
                jobs[i] = _outcome(future, points[i])
                failed += jobs[i].status != "FINISHED"
                bar.set_postfix(failed=failed, refresh=False)
                bar.update()
        return jobs
    finally:
        try:
            client.unregister_worker_plugin(spec.plugin)  # stops kernels started for jobs that never came
        except Exception:
            log.debug("could not unregister the sweep's worker plugin", exc_info=True)


def _run_id_for_remote(client, spec: _JobSpec, delivery) -> str | None:
    """Workers on other hosts have their own journal: give them the sweep run's MLflow id."""
    hosts = client.run(socket.gethostname)
    if all(h == spec.host for h in hosts.values()):
        return None
    delivery.flush(_DELIVERY_TIMEOUT)
    found = delivery.run_id(spec.sweep_key)
    if found is None:
        log.warning("MLflow has not taken the sweep run yet: jobs on other hosts will not be its children")
    return found


def _outcome(future, point: dict) -> JobResult:
    """The job's result, or a failed one when the task itself broke (a worker died, ...)."""
    try:
        return future.result()
    except Exception as exc:
        died = type(exc).__name__ == "KilledWorker"
        return JobResult(run_id=None, status="FAILED", output_path="", key="", parameters=dict(point),
                         failure=naming.FAILURE_KERNEL_DIED if died else naming.FAILURE_ERROR,
                         error=_one_line(exc))


def _one_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


class _SpareKernels(WorkerPlugin):
    """On each worker: kernels started ahead, each with the key of the job that will use it."""

    def setup(self, worker) -> None:
        import threading

        self._lock, self._spares = threading.Lock(), []

    def take(self):
        from jupyter_core.utils import run_sync

        from .execute import stop_kernel

        while True:
            with self._lock:
                if not self._spares:
                    return None
                key, km = self._spares.pop(0)
            if run_sync(km.is_alive)():
                return key, km
            stop_kernel(km)

    def put(self, spare) -> None:
        with self._lock:
            self._spares.append(spare)

    def teardown(self, worker) -> None:
        from .execute import stop_kernel

        with self._lock:
            spares, self._spares = self._spares, []
        for _, km in spares:
            stop_kernel(km)


def _run_point(spec: _JobSpec, point: dict, prestart: bool) -> JobResult:
    """On a worker: run one point as a job, on a kernel started ahead when there is one."""
    from distributed import get_worker

    from .execute import run_notebook, stop_kernel

    # The parent's journal folder: its records, and its lease, which leaves delivery to the parent.
    os.environ[locations.HOME_ENV] = spec.home
    notebook = _local_notebook(spec)
    cwd = spec.cwd if os.path.isdir(spec.cwd) else None
    spares = get_worker().plugins.get(spec.plugin)
    prepared = (spares.take() if spares is not None else None) or _start(spec, notebook, cwd)
    if prestart and spares is not None:
        spares.put(_start(spec, notebook, cwd))  # the next job's kernel boots while this job runs
    shared = socket.gethostname() == spec.host
    tags = {naming.PARENT_SWEEP: spec.sweep_key}
    if not shared and spec.parent_run_id:
        tags[naming.MLFLOW_PARENT_RUN_ID] = spec.parent_run_id
    try:
        return run_notebook(notebook, point, experiment=spec.experiment, timeout=spec.timeout,
                            kernel=spec.kernel, progress=False, tracking_uri=spec.uri,
                            parent_key=spec.sweep_key if shared else None, tags=tags, cwd=cwd,
                            flush_timeout=0.0 if shared else _DELIVERY_TIMEOUT, prepared=prepared)
    except BaseException:
        stop_kernel(prepared[1])
        raise


def _start(spec: _JobSpec, notebook: Path, cwd: str | None):
    from .execute import kernel_env, start_kernel

    key = records.new_key()
    env = kernel_env(job_key=key, uri=spec.uri, experiment=spec.experiment, notebook=notebook)
    return key, start_kernel(spec.kernel, env, cwd)


def _local_notebook(spec: _JobSpec) -> Path:
    path = Path(spec.notebook)
    if path.is_file():
        return path
    copy = Path(spec.home) / "sweeps" / spec.sweep_key[:12] / path.name
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(spec.source, encoding="utf-8")
    return copy


# -- ranking -------------------------------------------------------------------------
def pick_metric(metrics: list[dict[str, float]], greater_is_better: bool = True) -> str | None:
    """The primary metric among those every run logged: f1, else a well-known name, else the first."""
    own = [{k for k in m if not k.startswith("system.")} for m in metrics]
    common = set.intersection(*own) if own else set()
    for name in (_HIGHER if greater_is_better else _LOWER):
        if name in common:
            return name
    return min(common) if common else None


def _rank(spec: _JobSpec, points, jobs: list[JobResult], delivery, metric: str | None,
          greater_is_better: bool) -> SweepResult:
    left = delivery.flush(_DELIVERY_TIMEOUT, everyone=True)
    for job in jobs:
        if job.run_id is None and job.key:
            job.run_id = delivery.run_id(job.key)
    result = SweepResult(run_id=delivery.run_id(spec.sweep_key), key=spec.sweep_key, notebook=spec.notebook,
                         metric=metric, greater_is_better=greater_is_better)
    logged = _job_metrics(spec) if not left else {}
    done = [logged.get(j.run_id, {}) for j in jobs if j.status == "FINISHED" and j.run_id]
    result.metric = metric or pick_metric(done, greater_is_better)
    for point, job in zip(points, jobs):
        value = logged.get(job.run_id, {}).get(result.metric) if job.status == "FINISHED" else None
        result.points.append(SweepPoint(parameters=point, job=job, value=value))
    sign = -1.0 if greater_is_better else 1.0
    result.points.sort(key=lambda p: (p.job.status != "FINISHED", p.value is None,
                                      sign * p.value if p.value is not None else 0.0))
    result.note = _note(result, done, left, metric)
    return result


def _note(result: SweepResult, done: list[dict], left: int, asked: str | None) -> str:
    from ..errors import did_you_mean

    if left:
        return "MLflow has not taken every record yet, so the points are not ranked: `mlops-magics sync`"
    names = sorted({k for m in done for k in m if not k.startswith("system.")})
    if asked and done and result.best is None:
        return (f"no finished point logged the metric {asked!r}.{did_you_mean(asked, names)} "
                f"They logged: {', '.join(names) or 'none'}")
    if done and result.metric is None:
        return "the finished points logged no metric in common, so they are not ranked: pass --metric"
    return ""


def _job_metrics(spec: _JobSpec) -> dict[str, dict[str, float]]:
    """The metrics of the sweep's job runs, read back from MLflow: {run id: {name: value}}."""
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=spec.uri)
        exp = client.get_experiment_by_name(spec.experiment)
        if exp is None:
            return {}
        runs = client.search_runs([exp.experiment_id], f"tags.`{naming.PARENT_SWEEP}` = '{spec.sweep_key}'",
                                  max_results=10000)
        return {r.info.run_id: dict(r.data.metrics) for r in runs}
    except Exception as exc:
        log.warning("could not read the sweep's metrics back from MLflow: %s", _one_line(exc))
        return {}
