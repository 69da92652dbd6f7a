"""Every name mlops-magics writes into MLflow: tags, metric prefixes, artifact paths.

One module owns these so that the tracker, the writer, the CLI and the tests agree.
"""

from __future__ import annotations

import re

PREFIX = "mlops."

# Run kinds (tag KIND).
KIND = "mlops.kind"
KIND_SESSION = "session"
KIND_CELL = "cell"
KIND_JOB = "job"
KIND_SWEEP = "sweep"

# Identity and lineage.
RUN_KEY = "mlops.run_key"  # client-generated key, stable across replays
SESSION_KEY = "mlops.session"
NOTEBOOK = "mlops.notebook"
NOTEBOOK_SHA256 = "mlops.notebook.sha256"
CELL_SHA256 = "mlops.cell.sha256"
CELL_ID = "mlops.cell.id"
EXECUTION_COUNT = "mlops.execution_count"
GIT_COMMIT = "mlops.git.commit"
GIT_DIRTY = "mlops.git.dirty"
GIT_BRANCH = "mlops.git.branch"
ENV_SHA256 = "mlops.env.sha256"
ENV_PYTHON = "mlops.env.python"
UNHASHED = "mlops.unhashed"
NONFINITE = "mlops.nonfinite"

# Notebook jobs.
JOB_CELL = "mlops.job.cell"  # the cell a running job is on: "3/12"
JOB_FAILED_CELL = "mlops.job.failed_cell"  # index of the failing cell in the notebook
JOB_ATTEMPT = "mlops.job.attempt"
JOB_OUTPUT = "mlops.job.output"  # where the executed notebook was written
PAPERMILL_VERSION = "mlops.papermill.version"
REPRODUCES = "mlops.reproduces"
SWEEP_BEST = "mlops.sweep.best_run"  # on the sweep run: run id of the best point
SWEEP_METRIC = "mlops.sweep.metric"  # on the sweep run: the metric that ranked the points
SWEEP_GOAL = "mlops.sweep.goal"  # on the sweep run: "max" or "min", the metric's direction
SWEEP_GRID = "mlops.sweep.grid"  # on the sweep run: the grid as JSON
SWEEP_POINTS = "mlops.sweep.points"  # on the sweep run: how many points
SWEEP_FAILED = "mlops.sweep.failed"  # on the sweep run: how many points failed
PARENT_SWEEP = "mlops.sweep"  # on each job run of a sweep: the sweep run's client key

# Outcome.
FAILURE = "mlops.failure"
FAILURE_ERROR = "error"
FAILURE_TIMEOUT = "timeout"
FAILURE_KERNEL_DIED = "kernel_died"
FAILURE_INTERRUPTED = "interrupted"  # SIGINT / SIGTERM to the job or sweep
ERROR = "mlops.error"
ALERT = "mlops.alert"  # "drift" or "metric"
ALERT_DRIFT = "drift"
ALERT_METRIC = "metric"
ALERT_REASON = "mlops.alert.reason"

# Schedules (tags on a scheduled job run).
SCHEDULE = "mlops.schedule"  # the schedule's name
SCHEDULE_SLOT = "mlops.schedule.slot"  # the slot's time, ISO 8601 in the schedule's timezone
SCHEDULE_CAUGHT_UP = "mlops.schedule.caught_up"  # missed slots this run stands for
TRIGGERED_BY = "mlops.triggered_by"  # run id whose alert started this run (--on-alert)
TRIGGER_PARAMETER = "trigger_run_id"  # passed to a triggered notebook that declares it

# Models (mm.log_model, %%track --log-model, mm.promote).
MODEL = "mlops.model"  # artifact paths of the models logged in the run, comma-separated
ARTIFACT_MODEL = "model"  # default artifact path: runs:/<run id>/model
PROMOTION = "mlops.promotion"  # "promoted" or "kept"
PROMOTION_PROMOTED = "promoted"
PROMOTION_KEPT = "kept"
PROMOTION_MODEL = "mlops.promotion.model"
PROMOTION_VERSION = "mlops.promotion.version"
PROMOTION_ALIAS = "mlops.promotion.alias"
PROMOTION_METRIC = "mlops.promotion.metric"
PROMOTION_VALUE = "mlops.promotion.value"  # this run's metric
PROMOTION_HOLDER_VALUE = "mlops.promotion.holder_value"  # the alias holder's metric ("none": no holder)
PROMOTION_HOLDER_VERSION = "mlops.promotion.holder_version"
PROMOTION_REASON = "mlops.promotion.reason"

# MLflow's own tags we fill in.
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MLFLOW_USER = "mlflow.user"
MLFLOW_NOTE = "mlflow.note.content"

# Operational metrics of a tracked cell.
SYSTEM_WALL = "system.cell.wall_s"
SYSTEM_CPU = "system.cell.cpu_s"
SYSTEM_PEAK_MEM = "system.cell.peak_mem_mb"

# Dataset inputs.
DATASET_CONTEXT_TAG = "mlflow.data.context"
CONTEXT_INPUT = "input"
CONTEXT_OUTPUT = "output"
DATASET_SOURCE_TYPE = "mlops_magics"

# Artifacts.
ARTIFACT_CELL = "mlops/cell.py"
ARTIFACT_REQUIREMENTS = "mlops/requirements.txt"
ARTIFACT_JOB_NOTEBOOK = "mlops/job/output.ipynb"
ARTIFACT_JOB_HTML = "mlops/job/output.html"


def artifact_job_cell(execution_count: int | None) -> str:
    """A tracked cell's source inside a job run (one job, several tracked cells)."""
    return f"mlops/cells/cell-{execution_count if execution_count is not None else 'x'}.py"


ARTIFACT_PROFILES = "mlops/profiles"
ARTIFACT_DRIFT = "mlops/drift.json"  # the last DriftReport.log() of the run, as JSON


def artifact_profile(name: str) -> str:
    """Artifact path of the profile of data input ``name``."""
    return f"{ARTIFACT_PROFILES}/{sanitize_key(name)}.json"


# Drift metrics (DriftReport.log()).
METRIC_DRIFT_SHARE = "drift.share"


def metric_drift(feature: str, method: str, suffix: str = "") -> str:
    """``drift.<feature>.<method>`` (``.p_value`` and such as ``suffix``), MLflow-safe."""
    return sanitize_key(f"drift.{feature}.{method}" + (f".{suffix}" if suffix else ""))


# MLflow limits (mlflow/utils/validation.py).
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_BATCH_BYTES = 1_000_000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 5000
MAX_KEY_LENGTH = 250
MAX_DIGEST_LENGTH = 36

_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")


def sanitize_key(key: str) -> str:
    """Make ``key`` acceptable to MLflow (``^[/\\w.\\- ]*$``, at most 250 characters)."""
    key = _BAD_KEY_CHARS.sub("_", str(key)).strip() or "_"
    return key[:MAX_KEY_LENGTH]


_MLFLOW_KEY = re.compile(r"^[/\w.\- :]*$")  # mlflow/utils/validation.py (POSIX; Windows has no colon)
MAX_STEP = 2**63 - 1  # steps are 64-bit integers


def key_problem(key: str) -> str | None:
    """Why MLflow would refuse ``key`` as a metric, param or tag name, or None when it takes it.

    MLflow's rules: alphanumerics, ``_ - . / :`` and spaces, at most 250 characters, and a
    name that stays itself read as a path (no ``..``, no leading ``/``, no ``//``).
    """
    import posixpath

    if not isinstance(key, str) or not key:
        return "a name cannot be empty"
    if not _MLFLOW_KEY.match(key):
        return "names may only hold letters, digits, _ - . / : and spaces"
    if len(key) > MAX_KEY_LENGTH:
        return f"names may be at most {MAX_KEY_LENGTH} characters"
    norm = posixpath.normpath(key)
    if norm.startswith(".."):
        return "MLflow refuses names that climb up a folder (..)"
    if norm.startswith("/"):
        return "MLflow refuses names that start with /"
    if norm != key or norm == ".":
        return f"MLflow refuses names that read as another path ({norm!r})"
    return None


def clip(value: str, limit: int) -> str:
    """Cut ``value`` to ``limit`` characters, marking the cut."""
    return value if len(value) <= limit else value[: limit - 3] + "..."
