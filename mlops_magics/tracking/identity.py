"""Which notebook cell a tracked execution ran, so "what changed" compares a cell only with itself.

Frontends without cell ids (papermill, nbclient, older ones) still leave the saved
notebook: the cell whose source best matches the code is the one that ran, when the
match is clear. When it is not, there is no identity, and nothing is compared.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re

log = logging.getLogger("mlops_magics")

SIMILAR = 0.8  # below this the code is not that cell (PCA vs GaussianMixture cells score ~0.5-0.7)
MARGIN = 0.05  # the best cell must beat the runner-up by this much, or the match is unsure
MAX_NOTEBOOK_BYTES = 64 << 20  # a bigger file is mostly outputs: not worth parsing on the cell's path


def body(source: str) -> str:
    """Cell code as compared: without a ``%%track`` line, surrounding blank lines and indentation."""
    lines = source.strip("\n").splitlines()
    if lines and lines[0].lstrip().startswith("%%track"):
        lines = lines[1:]
    return "\n".join(line.rstrip() for line in lines).strip()


LABEL_CHARS = 48  # of the label in a run's name
_PRAGMA = re.compile(r"^(!|\s*%%|\s*-\*-|\s*(noqa|type:|pragma|fmt:|pylint:|isort:))", re.I)
# String literals (any prefix; triple quotes first), then hex/octal/binary and decimal numbers.
_LITERAL = re.compile(r"""(?<![\w.])(?:[rRbBuUfF]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")"""
                      r"|0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?[jJ]?)")
_IMPORT = re.compile(r"^(import\s|from\s+\S+\s+import\s)")


def cell_label(source: str) -> str:
    """A short label for a cell's runs that does not change when the cell re-runs with other
    values: its leading comment (``# train the forest``), else its first line of code that is
    not an import, literals shown as ``…`` (``n_estimators = …``). Never the execution count."""
    code: list[str] = []
    for line in body(source).splitlines():
        text = line.strip()
        if not text or text[0] in "%!":  # blank, magics, shell escapes
            continue
        if text.startswith("#"):
            comment = text.lstrip("#").strip()
            if not code and comment and not _PRAGMA.match(text[1:]):
                return _clip(comment)
            continue
        code.append(text)
    if not code:
        return "cell"
    first = next((c for c in code if not _IMPORT.match(c)), code[0])
    return _clip(_LITERAL.sub("…", first.split("  #", 1)[0]))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1].rstrip() + "…"


class NotebookCells:
    """The code cells of a notebook file, re-read when the file changes, and the cell code matches."""

    def __init__(self) -> None:
        self._sig: tuple | None = None
        self._cells: list[tuple[str, str]] = []  # (identity, body)
        self._found: dict[str, str | None] = {}  # body -> identity, for the current file

    def locate(self, notebook: str | None, source: str) -> str | None:
        """The identity (``path#id`` or ``path#index``) of the saved cell ``source`` is, or None."""
        path = _readable(notebook)
        if path is None or not self._load(path):
            return None
        code = body(source)
        if code not in self._found:
            self._found[code] = _best(code, self._cells)
        return self._found[code]

    def _load(self, path: str) -> bool:
        try:
            st = os.stat(path)
            sig = (path, st.st_mtime_ns, st.st_size)
            if sig == self._sig:
                return bool(self._cells)
            self._sig, self._cells, self._found = sig, [], {}
            if st.st_size > MAX_NOTEBOOK_BYTES:
                return False
            with open(path, encoding="utf-8") as f:
                cells = json.load(f).get("cells", [])
        except (OSError, ValueError, AttributeError) as exc:
            log.debug("cannot read notebook %s: %s", path, exc)
            return False
        index = 0
        for cell in cells if isinstance(cells, list) else []:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            ident = cell.get("id") if isinstance(cell.get("id"), str) else f"#{index}"
            self._cells.append((f"{path}#{ident}", body(src)))
            index += 1
        return bool(self._cells)


def _readable(notebook: str | None) -> str | None:
    """The notebook's path on disk: as given, else its name in the working folder (the kernel's)."""
    if not notebook:
        return None
    for path in (notebook, os.path.basename(notebook)):
        if path.endswith(".ipynb") and os.path.isfile(path):
            return os.path.abspath(path)
    return None


def _best(code: str, cells: list[tuple[str, str]]) -> str | None:
    exact = [ident for ident, text in cells if text == code]
    if exact:
        return exact[0] if len(exact) == 1 else None  # two identical cells: which one ran is unknown
    scored = []
    for ident, text in cells:
        m = difflib.SequenceMatcher(None, code, text, autojunk=False)
        if m.real_quick_ratio() >= SIMILAR - MARGIN and m.quick_ratio() >= SIMILAR - MARGIN:
            scored.append((m.ratio(), ident))
    scored.sort(reverse=True)
    if not scored or scored[0][0] < SIMILAR:
        return None
    if len(scored) > 1 and scored[0][0] - scored[1][0] < MARGIN:
        return None
    return scored[0][1]
