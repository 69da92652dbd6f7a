"""Exceptions of mlops-magics.

User mistakes print as one short line in IPython and Jupyter: ``_render_traceback_``
is the hook IPython calls instead of formatting a full traceback (subclasses of
``UsageError`` would print one).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MlopsError(Exception):
    """Base class: a problem the user can fix, shown as one line."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class FingerprintError(MlopsError, TypeError):
    """An object whose content cannot be fingerprinted."""


class NoActiveRunError(MlopsError):
    """A logging call made outside any tracked cell or job."""


class TrackingError(MlopsError):
    """MLflow refused or could not take a record."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message (at most 300 characters)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for one-line errors and tags (at most 300 characters)."""
    return f"{type(exc).__name__}: {first_line(exc)}"[:300]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""
