"""The ``parameters`` cell, read with ``ast``: names, defaults, types, help; typed overrides.

papermill guesses the type of ``-p`` values from the text (``007`` becomes 7, ``"[1,2]"``
stays a string) and reads the cell with a regex that skips lines with two ``=``.
Here the default's type (or the annotation) decides, and a value that does not
convert, or a name the notebook does not declare, is refused before a kernel starts.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MlopsError, did_you_mean

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "tuple": tuple}


class ParameterError(MlopsError):
    """A parameter the notebook does not declare, or a value that does not fit it."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    type_name: str  # int, float, str, bool, list, dict, tuple, None, or "expression"
    help: str = ""
    source: str = ""  # the default as written


def parameters_cell(nb) -> int | None:
    """Index of the first code cell tagged ``parameters``, or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def _comments(source: str) -> dict[int, str]:
    found = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return found


def _type_of(value: Any, annotation: str | None, literal: bool) -> str:
    if annotation in _TYPES:
        return annotation
    if not literal:
        return "expression"
    return "None" if value is None else type(value).__name__


def declared(source: str) -> dict[str, Parameter]:
    """The parameters a ``parameters`` cell declares, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"the parameters cell does not parse: {exc.msg} (line {exc.lineno})") from None
    comments = _comments(source)
    out: dict[str, Parameter] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value_node, annotation = stmt.targets[0].id, stmt.value, None
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            name, value_node = stmt.target.id, stmt.value
            annotation = ast.unparse(stmt.annotation)
        else:
            continue
        try:
            value, literal = ast.literal_eval(value_node), True
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value, literal = None, False
        text = ast.get_source_segment(source, value_node) or ""
        out[name] = Parameter(name, value, _type_of(value, annotation, literal),
                              comments.get(stmt.lineno, ""), text)
    return out


def read_notebook_parameters(path: str | Path) -> tuple[Any, dict[str, Parameter] | None]:
    """The notebook and its declared parameters (None when it has no ``parameters`` cell)."""
    try:
        nb = _read(Path(path))
    except FileNotFoundError:
        raise ParameterError(f"no notebook at {path}") from None
    except Exception as exc:
        raise ParameterError(f"{path} is not a readable notebook: {exc}") from None
    index = parameters_cell(nb)
    return nb, (None if index is None else declared(nb.cells[index].source))


class _Node(dict):
    """A notebook's JSON with nbformat's attribute access (``nb.cells[0].source``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _read(path: Path):
    """The notebook as version 4. Plain JSON when it is one already: importing nbformat
    costs most of a second of CPU (its JSON-schema checker builds a grammar), and reading
    parameters needs none of it. Older versions are converted by nbformat.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if not (isinstance(data, dict) and data.get("nbformat") == 4 and isinstance(data.get("cells"), list)):
        import nbformat

        return nbformat.reads(json.dumps(data), as_version=4)
    cells = []
    for cell in data["cells"]:
        if not isinstance(cell, dict) or "cell_type" not in cell:
            raise ValueError("a cell without a cell_type")
        source = cell.get("source", "")
        cells.append(_Node(cell, source="".join(source) if isinstance(source, list) else source,
                           metadata=_Node(cell.get("metadata") or {})))
    return _Node(data, cells=cells, metadata=_Node(data.get("metadata") or {}))


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "y", "on"):
        return True
    if low in ("false", "0", "no", "n", "off"):
        return False
    raise ValueError(raw)


def convert_text(param: Parameter, raw: str) -> Any:
    """Turn the text given on the command line into the parameter's type."""
    kind = param.type_name
    try:
        if kind == "str":
            return raw
        if kind == "bool":
            return _bool(raw)
        if kind == "int":
            return int(raw.strip().replace("_", ""))
        if kind == "float":
            return float(raw)
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError):
        if kind in ("None", "expression"):
            return raw  # no declared type: keep the text, as papermill's -r would
        raise ParameterError(f"parameter {param.name!r} wants {_article(kind)}, got {raw!r}") from None
    return check_value(param, value)


def check_value(param: Parameter, value: Any) -> Any:
    """Check (and widen int to float) a typed value given from Python or YAML."""
    kind = param.type_name
    if kind in ("None", "expression") or value is None:
        return value
    expected = _TYPES[kind]
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "tuple" and isinstance(value, list):
        return tuple(value)
    if kind == "list" and isinstance(value, tuple):
        return list(value)
    if not isinstance(value, expected) or (kind in ("int", "float") and isinstance(value, bool)):
        raise ParameterError(f"parameter {param.name!r} wants {_article(kind)}, got {value!r}")
    return value


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def resolve(declared_params: dict[str, Parameter] | None, *, given: dict[str, Any] | None = None,
            texts: list[tuple[str, str]] | None = None, notebook: str = "the notebook") -> dict[str, Any]:
    """Validate overrides and return them typed. ``given``: typed values; ``texts``: ``-p`` pairs."""
    given, texts = dict(given or {}), list(texts or [])
    if not given and not texts:
        return {}
    if declared_params is None:
        raise ParameterError(f"{notebook} has no cell tagged 'parameters', so it takes no parameters: "
                             "tag the cell that sets its defaults")
    out: dict[str, Any] = {}
    for name, value in [*given.items(), *texts]:
        if name not in declared_params:
            known = ", ".join(declared_params) or "none"
            raise ParameterError(f"unknown parameter {name!r} for {notebook}.{did_you_mean(name, declared_params)}"
                                 f" Its parameters: {known}")
    for name, value in given.items():
        out[name] = check_value(declared_params[name], value)
    for name, raw in texts:
        out[name] = convert_text(declared_params[name], raw)
    return out


def merged(declared_params: dict[str, Parameter] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The final parameters: the notebook's defaults with the overrides on top."""
    base = {p.name: (p.default if p.type_name != "expression" else p.source)
            for p in (declared_params or {}).values()}
    return {**base, **overrides}
