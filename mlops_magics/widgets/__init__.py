"""Drift and metric-history widgets for JupyterLab: ``DriftWidget``, ``HistoryWidget``.

They need the ``widgets`` extra: ``pip install 'mlops-magics[widgets]'``. Without it,
both names still import and say exactly that when used; ``charts`` needs only Altair.
"""

from __future__ import annotations

from importlib.util import find_spec

__all__ = ["DriftWidget", "HistoryWidget", "MissingDependency", "missing"]

_NEEDS = {"altair": "altair", "anywidget": "anywidget", "ipywidgets": "ipywidgets",
          "vl_convert": "vl-convert-python"}


class MissingDependency(ImportError):
    """The widgets' optional dependencies are not installed."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def missing() -> list[str]:
    """The pip names of the widget dependencies that are not installed."""
    return [pip for module, pip in _NEEDS.items() if find_spec(module) is None]


def _stand_in(name: str, absent: list[str]):
    def __init__(self, *args, **kwargs):
        raise MissingDependency(f"{name} needs {', '.join(absent)}: pip install 'mlops-magics[widgets]'")

    return type(name, (), {"__init__": __init__, "__doc__": f"Stand-in: install mlops-magics[widgets] for {name}."})


def __getattr__(name: str):
    if name not in ("DriftWidget", "HistoryWidget"):
        raise AttributeError(f"module 'mlops_magics.widgets' has no attribute {name!r}")
    absent = missing()
    if absent:
        return _stand_in(name, absent)
    if name == "DriftWidget":
        from ._drift_widget import DriftWidget

        return DriftWidget
    from ._history_widget import HistoryWidget

    return HistoryWidget
