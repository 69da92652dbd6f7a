"""A sweep's points as tasks on Dask workers: a local cluster of processes, or a scheduler's.

Each task is one ``run_notebook`` job on a fresh kernel. What hides kernel start-up is
that a worker starts the kernel of its next job while the current one runs (the kernel
is made with that job's key, so its tracked cells record into the right run), and, on
a local cluster, that kernels are forked from a process that has imported what a kernel
imports (``runner/kernels``); a kernel is never reused. Workers and kernels write records
into the sweep's journal and never deliver them: the journal's one delivery process does,
so none of them loads mlflow.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from ... import locations, naming
from ...errors import MlopsError, one_line
from ...journal import records
from ..run import JobResult

log = logging.getLogger("mlops_magics")

_REMOTE_DELIVERY_TIMEOUT = 120.0


@dataclass(frozen=True)
class SweepTask:
    """What a worker needs to run a point, passed explicitly: never the worker's own environment."""

    notebook: str
    source: str  # the notebook's text, for workers of a scheduler that cannot see its path
    uri: str
    experiment: str
    home: str  # the journal's folder
    cwd: str
    kernel: str
    timeout: float | None
    sweep_key: str
    host: str  # where the sweep runs: a worker on the same host shares its journal
    env: dict[str, str] | None = None  # the sweep's environment, for workers on its host
    plugin: str = ""
    parent_run_id: str | None = None  # for workers on other hosts, which cannot resolve the key
    forks: str | None = None  # a KernelForks server's socket, for workers on the sweep's host


class Dask:
    """A client on a new local cluster of process workers, or on the scheduler at ``address``."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address, self.workers = address, workers
        self.cluster = self.client = self._closing = None

    def __enter__(self) -> Dask:
        from distributed import Client

        if not self.address:
            self.cluster = _local_cluster(self.workers)
            self.client = Client(self.cluster)
            return self
        try:
            self.client = Client(self.address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise MlopsError(f"no Dask scheduler answers at {self.address}: {one_line(exc)}") from None
        try:
            self.client.wait_for_workers(1, timeout=30)
        except TimeoutError:
            self.client.close()
            raise MlopsError(f"the Dask scheduler at {self.address} has no workers: "
                             f"start one with `dask worker {self.address}`") from None
        return self

    def close_soon(self) -> None:
        """Start closing in the background (a local cluster takes a moment to wind down)."""
        self._closing = threading.Thread(target=self._close, name="mlops-magics-dask-close", daemon=True)
        self._closing.start()

    def __exit__(self, *exc) -> None:
        if self._closing is None:
            self._close()
        else:
            self._closing.join(timeout=60)

    def _close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    log.debug("closing Dask failed", exc_info=True)


def _local_cluster(workers: int):
    import dask
    from distributed import LocalCluster

    from .local_processes import warm_forkserver

    method = "forkserver" if warm_forkserver() else "spawn"
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        return LocalCluster(n_workers=workers, threads_per_worker=2, processes=True, dashboard_address=None,
                            silence_logs=logging.ERROR)


def started_jobs(client, spec: SweepTask) -> list[str]:
    """Keys of the job runs the workers have started for this sweep (they log one event each)."""
    try:
        return [event["key"] for _, event in client.get_events(_topic(spec))]
    except Exception:
        log.warning("could not ask the Dask scheduler which jobs started", exc_info=True)
        return []


def _topic(spec: SweepTask) -> str:
    return f"mlops-magics-sweep-{spec.sweep_key}"


def run_points(client, spec: SweepTask, points: list[dict], delivery, progress: bool,
               stopped: list[str] | None = None) -> list[JobResult]:
    """Run every point on the cluster; a failing point never stops the others.

    ``stopped``: on an interrupt (Ctrl-C, SIGTERM), the keys of the job runs started and
    not finished are put there, for the caller to end once the workers are gone.
    """
    from distributed import as_completed
    from tqdm import tqdm

    slots = sum(client.nthreads().values()) or 1
    spec = replace(spec, plugin=f"mlops-magics-kernels-{spec.sweep_key[:12]}",
                   parent_run_id=_run_id_for_other_hosts(client, spec, delivery))
    client.register_plugin(_SpareKernels(), name=spec.plugin)
    jobs: list = [None] * len(points)
    try:
        # A point starts its worker's next kernel unless it is among the last ones.
        futures = {client.submit(_run_point, spec, point, i < len(points) - slots, pure=False,
                                 key=f"mlops-sweep-{spec.sweep_key[:8]}-{i}"): i
                   for i, point in enumerate(points)}
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
    except KeyboardInterrupt:
        if stopped is not None:
            done = {job.key for job in jobs if job is not None}
            stopped.extend(key for key in started_jobs(client, spec) if key not in done)
        raise
    finally:
        try:
            client.unregister_worker_plugin(spec.plugin)  # stops kernels started for jobs that never came
        except Exception:
            log.debug("could not unregister the sweep's worker plugin", exc_info=True)


def _run_id_for_other_hosts(client, spec: SweepTask, delivery) -> str | None:
    """Workers on other hosts have their own journal: they get the sweep run's MLflow id."""
    hosts = client.run(socket.gethostname)
    if all(host == spec.host for host in hosts.values()):
        return None
    delivery.flush(_REMOTE_DELIVERY_TIMEOUT)
    found = delivery.run_id(spec.sweep_key)
    if found is None:
        log.warning("MLflow has not taken the sweep run yet: jobs on other hosts will not be its children")
    return found


def _outcome(future, point: dict) -> JobResult:
    """The job's result, or a failed one when the task itself broke (its worker died, ...)."""
    try:
        return future.result()
    except Exception as exc:
        died = type(exc).__name__ == "KilledWorker"
        return JobResult(run_id=None, status="FAILED", output_path="", key="", parameters=dict(point),
                         failure=naming.FAILURE_KERNEL_DIED if died else naming.FAILURE_ERROR,
                         error=one_line(exc))


# -- on the workers --------------------------------------------------------------------
class _SpareKernels(WorkerPlugin):
    """On each worker, for one sweep: kernels started ahead, each with its future job's key."""

    def setup(self, worker) -> None:
        self._lock, self._spares = threading.Lock(), []

    def take(self):
        from jupyter_core.utils import run_sync

        from ..run import stop_kernel

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
        from ..run import stop_kernel

        with self._lock:
            spares, self._spares = self._spares, []
        for _, km in spares:
            stop_kernel(km)


def _run_point(spec: SweepTask, point: dict, prestart: bool) -> JobResult:
    """On a worker: one point as a job, on a kernel started ahead when there is one."""
    from distributed import get_worker

    from ..run import JobSpec, run_job, stop_kernel

    shared = socket.gethostname() == spec.host
    notebook = _local_notebook(spec)
    cwd = spec.cwd if os.path.isdir(spec.cwd) else None
    worker = get_worker()
    spares = worker.plugins.get(spec.plugin)
    prepared = spares.take() if spares is not None else None
    if prepared is None:
        prepared = _start(spec, notebook, cwd)  # the job's key known here, to tell the sweep
    worker.log_event(_topic(spec), {"key": prepared[0]})
    if prestart and spares is not None:
        try:
            spares.put(_start(spec, notebook, cwd))  # the next job's kernel boots while this one runs
        except Exception:
            log.warning("could not start the next job's kernel ahead", exc_info=True)
    tags = {naming.PARENT_SWEEP: spec.sweep_key}
    if not shared and spec.parent_run_id:
        tags[naming.MLFLOW_PARENT_RUN_ID] = spec.parent_run_id
    try:
        job = JobSpec(experiment=spec.experiment, timeout=spec.timeout, kernel=spec.kernel, progress=False,
                      tracking_uri=spec.uri, parent_key=spec.sweep_key if shared else None, tags=tags, cwd=cwd,
                      flush_timeout=0.0 if shared else _REMOTE_DELIVERY_TIMEOUT,
                      home=_home(spec, shared), env=spec.env)
        return run_job(notebook, point, spec=job, prepared=prepared)
    except BaseException:
        if prepared is not None:
            stop_kernel(prepared[1])
        raise


def _home(spec: SweepTask, shared: bool) -> str | None:
    """A worker on the sweep's host records into the sweep's journal folder; elsewhere its own.

    Passed down in the job's spec, never set in this worker's environment: tasks run in the
    worker's threads, and the environment is the whole process's.
    """
    return spec.home if shared else None


def _start(spec: SweepTask, notebook: Path, cwd: str | None):
    from ..run import kernel_env, start_kernel

    key = records.new_key()
    shared = socket.gethostname() == spec.host
    env = kernel_env(job_key=key, uri=spec.uri, experiment=spec.experiment, notebook=notebook,
                     home=_home(spec, shared), base=spec.env)
    forks = spec.forks if socket.gethostname() == spec.host else None
    return key, start_kernel(spec.kernel, env, cwd, forks=forks)


def _local_notebook(spec: SweepTask) -> Path:
    path = Path(spec.notebook)
    if path.is_file():
        return path
    copy = locations.home() / "sweeps" / spec.sweep_key[:12] / path.name
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(spec.source, encoding="utf-8")
    return copy
