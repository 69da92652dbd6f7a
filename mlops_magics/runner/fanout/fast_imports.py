"""Imports of the processes this package owns (the command line, local sweep workers), made cheaper.

jsonschema, which nbformat imports, builds a grammar for the ``iri`` string formats at
import time when ``rfc3987-syntax`` is installed (jupyterlab's dependencies pull it in):
three quarters of a second of CPU in every process that reads a notebook with nbformat
(jsonschema#1392). Notebook schemas use no ``iri`` format, so a process that only runs
notebooks loses nothing without it. Never called in a user's process: there the
checker stays as installed.
"""

from __future__ import annotations

import sys


def skip_iri_grammar() -> None:
    """Have jsonschema skip its optional ``iri`` checkers (call before anything imports jsonschema)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]  # import -> ImportError
