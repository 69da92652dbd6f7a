"""mlops-magics: MLOps from inside the notebook, on MLflow.

``%load_ext mlops_magics`` (or the auto-loader) registers ``%%track``. Importing
this package is cheap: everything below loads on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["fingerprint", "log_metric", "log_metrics", "flush", "check_metric", "log_model", "promote",
           "log_slices", "log_importance", "compare_models",
           "profile", "drift", "Profile", "DriftReport", "validate", "contract", "ValidationReport",
           "Contract", "run_notebook", "JobResult",
           "load_ipython_extension", "unload_ipython_extension"]

_LAZY = {
    "fingerprint": ("mlops_magics.fingerprints", "fingerprint"),
    "Fingerprint": ("mlops_magics.fingerprints", "Fingerprint"),
    "log_metric": ("mlops_magics.api", "log_metric"),
    "log_metrics": ("mlops_magics.api", "log_metrics"),
    "flush": ("mlops_magics.api", "flush"),
    "check_metric": ("mlops_magics.api", "check_metric"),
    "log_model": ("mlops_magics.models.save", "log_model"),
    "promote": ("mlops_magics.models.promote", "promote"),
    "log_slices": ("mlops_magics.models.slices", "log_slices"),
    "log_importance": ("mlops_magics.models.importance", "log_importance"),
    "compare_models": ("mlops_magics.models.compare", "compare_models"),
    "profile": ("mlops_magics.monitoring.profile", "profile"),
    "Profile": ("mlops_magics.monitoring.profile", "Profile"),
    "drift": ("mlops_magics.monitoring.drift", "drift"),
    "DriftReport": ("mlops_magics.monitoring.report", "DriftReport"),
    "validate": ("mlops_magics.monitoring.validate", "validate"),
    "ValidationReport": ("mlops_magics.monitoring.validation_report", "ValidationReport"),
    "contract": ("mlops_magics.monitoring.contract", "contract"),
    "Contract": ("mlops_magics.monitoring.contract", "Contract"),
    "run_notebook": ("mlops_magics.runner.run", "run_notebook"),
    "JobResult": ("mlops_magics.runner.run", "JobResult"),
    "MlopsError": ("mlops_magics.errors", "MlopsError"),
    "FingerprintError": ("mlops_magics.errors", "FingerprintError"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = globals()[name] = getattr(importlib.import_module(module), attr)  # once: mm.log_metric in loops
        return value
    raise AttributeError(f"module 'mlops_magics' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """Called by ``%load_ext mlops_magics``."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    """Called by ``%unload_ext mlops_magics`` and ``%reload_ext``."""
    from .magics import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension (``mlops_magics.jupyter``): REST API, delivery, schedules."""
    return [{"module": "mlops_magics.jupyter"}]
