"""``run_notebook``: one parameterised notebook, executed by papermill in a fresh kernel, as one job run."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import locations, naming
from ..errors import MlopsError, did_you_mean
from ..tracking.lineage import NOTEBOOK_ENV
from .failures import EXIT_CODES, Failure, JobInterrupted, add_banner, classify, input_indices
from .parameters import merged, read_notebook_parameters, resolve

log = logging.getLogger("mlops_magics")
RETRYABLE = (naming.FAILURE_TIMEOUT, naming.FAILURE_KERNEL_DIED)


@dataclass
class JobResult:
    """How a notebook job ended.

    ``status`` is ``"FINISHED"`` or ``"FAILED"``; ``failure`` is None, ``"error"``,
    ``"timeout"`` or ``"kernel_died"``; ``run_id`` is MLflow's id of the job run
    (None while MLflow has not taken it yet: it waits in the journal).
    """

    run_id: str | None
    status: str
    output_path: str
    failure: str | None
    key: str
    parameters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    failed_cell: int | None = None
    attempts: int = 1
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.failure]


def _check_kernel(kernel: str | None, nb) -> str:
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    name = kernel or nb.metadata.get("kernelspec", {}).get("name") or NATIVE_KERNEL_NAME
    if name in ("python", NATIVE_KERNEL_NAME):
        return NATIVE_KERNEL_NAME  # jupyter_client's own, always there ("python" is its alias)
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
        return name
    except Exception:  # NoSuchKernel, or a broken kernel.json
        pass
    specs = manager.find_kernel_specs()
    if name not in specs:
        raise MlopsError(f"no Jupyter kernel named {name!r}.{did_you_mean(name, specs)}"
                         f" Installed: {', '.join(sorted(specs)) or 'none'}")
    return name


def kernel_env(*, job_key: str, uri: str, experiment: str, notebook: Path, home: str | os.PathLike | None = None,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a job's kernel: where to record, and which run is the job's.

    ``base``: the environment to start from (a sweep's own, on its workers), else this process's.
    """
    return {**(os.environ if base is None else base), locations.TRACKING_URI_ENV: uri,
            locations.EXPERIMENT_ENV: experiment, locations.HOME_ENV: str(Path(home or locations.home()).resolve()),
            locations.JOB_RUN_ENV: job_key,
            NOTEBOOK_ENV: str(notebook), "PYTHONUNBUFFERED": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # no download bars in the executed notebook


def start_kernel(kernel_name: str, env: dict[str, str], cwd: str | None = None, forks: str | None = None):
    """A fresh kernel for exactly one job (start it early to hide its start-up time).

    ``forks``: the socket of a ``KernelForks`` server to fork the kernel from.
    """
    from jupyter_client.manager import (
        AsyncKernelManager,  # nbclient's timeouts need the async one
    )
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name=kernel_name)
    if forks:
        from .kernels.forks import use_forks

        use_forks(km, forks)
    # The kernel's own start-up warnings (e.g. "running over TCP without encryption" on
    # 127.0.0.1) would be printed into the terminal of every job.
    run_sync(km.start_kernel)(env=env, cwd=cwd or os.getcwd(), extra_arguments=["--IPKernelApp.log_level=ERROR"])
    return km


def stop_kernel(km) -> None:
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        log.debug("kernel shutdown failed", exc_info=True)


def _default_output(notebook: Path, key: str, home: Path) -> Path:
    from ._job_secrets import private_folder

    private_folder(home)  # 0700 even when it existed: job copies hold whatever the cells printed
    private_folder(home / "jobs")
    return home / "jobs" / f"{notebook.stem}-{key[:8]}.ipynb"


@dataclass(frozen=True)
class JobSpec:
    """How one job runs and where it records, besides the notebook and its parameter values.

    ``run_notebook`` makes one from its keywords; schedules, sweeps, reproductions and the
    Jupyter server make their own with what only they set (``tags``, ``cwd``, the sweep's
    ``parent_key``, ``flush_timeout``) and call :func:`run_job`.
    """

    experiment: str | None = None
    output: str | os.PathLike | None = None
    timeout: float | None = None
    kernel: str | None = None
    retries: int = 0
    progress: bool = True
    tracking_uri: str | None = None
    tags: dict[str, str] | None = None  # more tags on the job's run (a schedule's, a reproduction's)
    cwd: str | None = None  # the kernel's working folder (default: this process's)
    parent_key: str | None = None  # a sweep's run: the job's run is its child
    flush_timeout: float = 30.0  # seconds to wait for MLflow at the end (0: the caller delivers)
    home: str | None = None  # the journal's folder (default: where locations puts it for this process)
    env: dict[str, str] | None = None  # the kernel's base environment (default: this process's)


def run_notebook(path: str | os.PathLike, parameters: dict[str, Any] | None = None, *,
                 experiment: str | None = None, output: str | os.PathLike | None = None,
                 timeout: float | None = None, kernel: str | None = None, retries: int = 0,
                 texts: list[tuple[str, str]] | None = None, progress: bool = True,
                 tracking_uri: str | None = None) -> JobResult:
    """Run a notebook as a parameterised job: one fresh kernel, one MLflow run.

    Parameters
    ----------
    path
        The notebook. Its cell tagged ``parameters`` declares the parameters.
    parameters
        Typed overrides, checked against the declared names and types.
    experiment
        MLflow experiment (default ``$MLFLOW_EXPERIMENT_NAME`` or ``Default``).
    output
        Where the executed notebook goes (default ``.mlops_magics/jobs/<name>-<key>.ipynb``).
    timeout
        Seconds any one cell may run before the job fails with ``timeout``.
    kernel
        Kernel name (default: the notebook's).
    retries
        Re-run this many times after ``timeout`` or ``kernel_died`` (never after a cell error).
    texts
        ``(name, text)`` overrides as typed on a command line; converted to each default's type.

    Returns
    -------
    JobResult

    Raises
    ------
    JobInterrupted
        (a ``KeyboardInterrupt``) on Ctrl-C, after the kernel was shut down and the job's
        run ended FAILED with ``mlops.failure=interrupted``; ``.result`` is its JobResult.

    Parameters whose names look like credentials (``token``, ``db_password``) and values
    of a secret shape (a password in a URL) reach the kernel only: the output notebook,
    its HTML and the run show ``***``.
    """
    spec = JobSpec(experiment=experiment, output=output, timeout=timeout, kernel=kernel, retries=retries,
                   progress=progress, tracking_uri=tracking_uri)
    return run_job(path, parameters, texts=texts, spec=spec)


def run_job(path: str | os.PathLike, parameters: dict[str, Any] | None = None, *,
            texts: list[tuple[str, str]] | None = None, spec: JobSpec = JobSpec(), prepared=None) -> JobResult:
    """:func:`run_notebook` with every setting in ``spec``; ``prepared``: ``(job key, kernel
    manager)`` of a kernel a sweep started ahead of time."""
    from ._job_secrets import JobSecrets

    notebook = Path(path).resolve()
    nb, declared = read_notebook_parameters(notebook)
    overrides = resolve(declared, given=parameters, texts=texts, notebook=notebook.name)
    final = merged(declared, overrides)
    plan = _Plan(notebook=notebook, nb=nb, final=final, secrets=JobSecrets(overrides, final),
                 kernel_name=_check_kernel(spec.kernel, nb), uri=locations.tracking_uri(spec.tracking_uri),
                 experiment=locations.experiment_name(spec.experiment), output=spec.output, timeout=spec.timeout,
                 progress=spec.progress, parent_key=spec.parent_key, tags=spec.tags, cwd=spec.cwd,
                 home=Path(spec.home) if spec.home else locations.home(), env=spec.env)
    from ..journal.delivery import OUTAGE_GRACE, ProcessDelivery
    from ..journal.store import Journal

    journal = Journal(plan.home / locations.JOURNAL_FILE)
    delivery = ProcessDelivery(plan.uri, journal)  # the journal's one delivery process delivers
    started = time.monotonic()
    try:
        attempt = 0
        while True:
            attempt += 1
            result = _attempt(plan, delivery, attempt, prepared if attempt == 1 else None)
            if result.failure not in RETRYABLE or attempt > spec.retries:
                break
            log.warning("job %s: %s; retrying (%d of %d)", notebook.name, result.failure, attempt, spec.retries)
        stopped = result.failure == naming.FAILURE_INTERRUPTED
        # The kernel's records too, if it died; with MLflow down they wait in the journal
        # (stopped: briefly, the user asked to stop; `mlops-magics sync` delivers the rest).
        delivery.flush(min(spec.flush_timeout, _STOPPED_FLUSH_S) if stopped else spec.flush_timeout, everyone=not stopped,
                       outage_grace=OUTAGE_GRACE)
        result.run_id = journal.run_id(plan.uri, result.key)
        result.attempts, result.duration_s = attempt, time.monotonic() - started
        if stopped:
            raise JobInterrupted(result.error or "interrupted", result)
        return result
    finally:
        delivery.close(timeout=0)
        journal.close()


_STOPPED_FLUSH_S = 3.0


@dataclass
class _Plan:
    """One job as asked: what runs, with which parameters, where it records."""

    notebook: Path
    nb: Any  # the input notebook as read
    final: dict[str, Any]
    secrets: Any  # JobSecrets
    kernel_name: str
    uri: str
    experiment: str
    output: Any
    timeout: float | None
    progress: bool
    parent_key: str | None
    tags: dict[str, str] | None
    cwd: str | None
    home: Path  # the journal's folder
    env: dict[str, str] | None  # the kernel's base environment


def _attempt(plan: _Plan, delivery, attempt: int, prepared) -> JobResult:
    from .recorder import JobRecorder

    recorder = JobRecorder(delivery, experiment=plan.experiment, notebook=plan.notebook, parameters=plan.final,
                           parent_key=plan.parent_key, tags=plan.tags, mask=plan.secrets.text)
    if prepared is not None:  # a kernel started ahead of time, with its job key
        recorder.key, km = prepared
    recorder.start()  # the job's run opens in the journal before its kernel records into it
    out = _output_path(plan, recorder.key)
    try:
        if prepared is None:
            km = start_kernel(plan.kernel_name, kernel_env(job_key=recorder.key, uri=plan.uri,
                                                           experiment=plan.experiment, notebook=plan.notebook,
                                                           home=plan.home, base=plan.env),
                              plan.cwd)
    except KeyboardInterrupt as exc:  # stopped while the kernel started: nothing ran
        failure = classify(exc, None)
    else:
        failure = _execute(plan, out, km, recorder)
    plan.secrets.notebook(out)
    if failure is not None:
        add_banner(out, failure)
    recorder.end(failure=failure, output_path=out, attempt=attempt)
    return JobResult(run_id=None, status="FINISHED" if failure is None else "FAILED", output_path=out,
                     failure=None if failure is None else failure.kind, key=recorder.key, parameters=plan.final,
                     error=None if failure is None else failure.message,
                     failed_cell=None if failure is None else failure.cell_index)


def _output_path(plan: _Plan, key: str) -> str:
    """Where the executed notebook goes; under the journal home it is private from the start."""
    from ._job_secrets import private_file

    out = Path(plan.output).resolve() if plan.output else _default_output(plan.notebook, key, plan.home)
    if out.parent.is_dir() and out.is_relative_to(plan.home.resolve()):
        private_file(out)
    return str(out)


def _execute(plan: _Plan, out: str, km, recorder) -> Failure | None:
    import papermill as pm

    current: dict[str, Any] = {"index": None}
    total, positions, replies = [0], [], {}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index
        recorder.on_cell(cell_index, total[0] or cell_index + 1, cell)

    def on_notebook_start(notebook):
        total[0] = len(notebook.cells)
        positions[:] = input_indices(plan.nb.cells, notebook.cells)

    def on_cell_error(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply.get("content", {})

    hooks = {"on_cell_start": on_cell_start, "on_notebook_start": on_notebook_start, "on_cell_error": on_cell_error}
    assign = plan.secrets.hook(km, plan.kernel_name, _language(plan.nb))
    if assign is not None:
        hooks["on_cell_executed"] = assign
    try:
        pm.execute_notebook(str(plan.notebook), out, parameters=plan.secrets.shown, kernel_name=plan.kernel_name,
                            km=km, progress_bar=plan.progress, execution_timeout=_whole_seconds(plan.timeout),
                            cwd=plan.cwd, store_widget_state=False,  # so HTML exports show the widgets' static images
                            **hooks)
        return None
    except (Exception, KeyboardInterrupt) as exc:
        failure = classify(exc, current["index"], replies)
        failure.cell_index = _input_index(positions, failure.cell_index)
        failure.message = plan.secrets.text(failure.message)
        return failure
    finally:
        stop_kernel(km)


def _input_index(positions: list[int | None], index: int | None) -> int | None:
    """The executed notebook's cell ``index`` as counted in the input notebook (papermill's
    injected parameters cell counts as the parameters cell before it)."""
    if index is None or index >= len(positions):
        return index
    before = [p for p in positions[: index + 1] if p is not None]
    return positions[index] if positions[index] is not None else (before[-1] if before else 0)


def _language(nb) -> str | None:
    from papermill.utils import nb_language

    try:
        return nb_language(nb)
    except Exception:  # no language in the metadata: the translator goes by the kernel name
        return None


def _whole_seconds(timeout: float | None) -> int | None:
    """nbclient takes whole seconds; round up so a cell always gets at least what was asked."""
    import math

    return None if timeout is None else max(1, math.ceil(timeout))
