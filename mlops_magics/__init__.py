"""mlops-magics: MLOps from inside the notebook, on MLflow.

``%load_ext mlops_magics`` (or the auto-loader) registers ``%%track``. Importing
this package is cheap: everything below loads on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["fingerprint", "log_metric", "log_metrics", "flush", "check_metric", "log_model", "promote",
           "profile", "drift", "Profile", "DriftReport", "run_notebook", "JobResult",
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
    "profile": ("mlops_magics.monitoring.profile", "profile"),
    "Profile": ("mlops_magics.monitoring.profile", "Profile"),
    "drift": ("mlops_magics.monitoring.drift", "drift"),
    "DriftReport": ("mlops_magics.monitoring.report", "DriftReport"),
    "run_notebook": ("mlops_magics.runner.execute", "run_notebook"),
    "JobResult": ("mlops_magics.runner.execute", "JobResult"),
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
