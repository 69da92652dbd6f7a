"""Profiles and drift in pure numpy and pandas: ``mm.profile(obj)`` (``profile.py``) and
``mm.drift(reference, current)`` (``drift.py``, scores in ``_methods.py``, ``report.py``)."""

from .profile import ColumnProfile, Profile
from .report import DriftReport

__all__ = ["ColumnProfile", "DriftReport", "Profile"]
