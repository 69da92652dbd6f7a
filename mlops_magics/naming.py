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
GIT_NOTEBOOK = "mlops.git.notebook"  # the notebook file in git: one of the three below
GIT_NOTEBOOK_UNTRACKED = "untracked"  # git has never seen it (or ignores it): the run is dirty
GIT_NOTEBOOK_MODIFIED = "modified"  # differs from the commit (staged or not)
GIT_NOTEBOOK_CLEAN = "clean"
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
ALERT = "mlops.alert"  # "drift", "metric" or "validation"
ALERT_DRIFT = "drift"
ALERT_METRIC = "metric"
ALERT_VALIDATION = "validation"
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
PROMOTION_REFUSED = "refused"  # mlops.promotion when a check failed (and no --force)
PROMOTION_FORCED = "mlops.promotion.forced"  # "true: <failed checks>" when --force overrode them
MODEL_SAVE_ID = "mlops.model.save_id"  # on a logged model: which save it is (a replay finds it again)
CHECK_PASSED = "passed"
CHECK_FAILED = "failed"
CHECK_SKIPPED = "skipped"
PROMOTION_CHECKS = ("baseline", "loads", "signature")


def promotion_check(name: str) -> str:
    """``mlops.promotion.check.<name>``: ``passed``, ``failed: <reason>`` or ``skipped: <reason>``."""
    return f"mlops.promotion.check.{name}"


def metric_baseline(metric: str) -> str:
    """``baseline.<metric>``: the dummy baseline's score next to the model's (``eval=(X, y)``)."""
    return f"baseline.{metric}"


# The MLflow UI: which view an experiment opens in, and a saved runs-table layout.
MLFLOW_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_MODEL_TRAINING = "custom_model_development"  # not the GenAI view
MLFLOW_SHARED_VIEW = "mlflow.sharedViewState."  # + key: the runs table's columns, filter, order
UI_VIEW_KEY = "mlops-magics"

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
SYSTEM_PREFIX = "system."  # time and memory: not what a run is judged on
DRIFT_PREFIX = "drift."  # what DriftReport.log() writes

# Dataset inputs.
DATASET_CONTEXT_TAG = "mlflow.data.context"
CONTEXT_INPUT = "input"
CONTEXT_OUTPUT = "output"
CONTEXT_EVAL = "eval"  # the held-out data of eval=(X, y)
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
# The dataset verdict rule, for every caller (report, widget, %drift, CLI, demo): the data set
# drifts when at least this share of the compared features drift (monitoring/verdict.py).
DRIFT_SHARE = 0.5


def metric_drift(feature: str, method: str, suffix: str = "") -> str:
    """``drift.<feature>.<method>`` (``.p_value`` and such as ``suffix``), MLflow-safe."""
    return sanitize_key(f"drift.{feature}.{method}" + (f".{suffix}" if suffix else ""))


# Quality metrics: mm.log_slices, mm.log_importance, mm.compare_models.
_BAD_PART_CHARS = re.compile(r"[^\w.\-]")
MAX_KEY_PART = 120


def key_part(text: object) -> str:
    """One segment of a metric name made from data (a group value, a feature name): MLflow-safe
    and never a path (spaces, ``/`` and other characters become ``_``), at most 120 characters."""
    part = _BAD_PART_CHARS.sub("_", str(text).strip()) or "_"
    return part[:MAX_KEY_PART]


def distinct_keys(keys: list[str], sep: str = "_") -> list[str]:
    """``keys`` with repeats told apart (``_2``, ``_3``...): two values may sanitise alike
    (two columns may have one label: ``sep="."`` gives ``.2``, ``.3``...)."""
    seen: set[str] = set()
    out = []
    for key in keys:
        candidate, n = key, 1
        while candidate in seen:
            n += 1
            candidate = f"{key}{sep}{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def metric_slice(metric: str, group: object) -> str:
    """``<metric>.slice.<group>``: the metric on one group's rows."""
    return f"{metric}.slice.{key_part(group)}"


def metric_worst_slice(metric: str) -> str:
    """``<metric>.worst_slice``: the lowest of the groups' values."""
    return f"{metric}.worst_slice"


def metric_slice_gap(metric: str) -> str:
    """``<metric>.slice_gap``: best group's value minus the worst's."""
    return f"{metric}.slice_gap"


IMPORTANCE_PREFIX = "importance."
ARTIFACT_IMPORTANCE = "mlops/importance.json"  # features, original names, mean and std
ARTIFACT_IMPORTANCE_CHART = "mlops/importance.vl.json"  # a Vega-Lite bar chart of the same


def metric_importance(feature: object) -> str:
    """``importance.<feature>``: mean permutation importance."""
    return IMPORTANCE_PREFIX + key_part(feature)


METRIC_COMPARE_AGREEMENT = "compare.agreement"  # classifiers: share of equal predictions
METRIC_COMPARE_CORRELATION = "compare.correlation"  # regressors: Pearson correlation of predictions
METRIC_COMPARE_MEAN_ABS_DIFF = "compare.mean_abs_diff"  # regressors: mean |b - a|
COMPARE_A = "mlops.compare.a"  # tags: what was compared (a URI or the model's class)
COMPARE_B = "mlops.compare.b"
ARTIFACT_COMPARE = "mlops/compare.json"  # the last comparison of the run


def metric_compare(metric: str, part: str) -> str:
    """``compare.<metric>.<part>``: part is ``a``, ``b``, ``delta`` (b - a), ``ci_low``, ``ci_high``."""
    return f"compare.{key_part(metric)}.{part}"


# Validation metrics (ValidationReport.log()).
METRIC_VALIDATION_FAILED = "validation.failed"  # failed checks; per kind as validation.failed.<check>
METRIC_VALIDATION_CHECKS = "validation.checks"  # checks made
ARTIFACT_VALIDATION = "mlops/validation.json"  # the last ValidationReport.log() of the run, as JSON


def metric_validation_failed(check: str) -> str:
    """``validation.failed.<check>`` (``missing rate`` as ``missing_rate``), MLflow-safe."""
    return sanitize_key(f"{METRIC_VALIDATION_FAILED}.{check.replace(' ', '_')}")


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
