"""Reading a contract YAML file a person may have edited: every mistake is one line that
names the file, the line and the key (``contract.yaml line 12 (columns.age.min): ...``)."""

from __future__ import annotations

import math
import re

import yaml

from ..errors import did_you_mean
from .contract import _COLUMN_KEYS, _TOP_KEYS, FORMAT, KINDS, ColumnRule, Contract, ContractError


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so a category spelt ``no`` or ``on`` stays a word."""


_Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


class _Reader:
    def __init__(self, text: str, origin: str) -> None:
        self.origin = origin
        try:
            node = yaml.compose(text, Loader=_Loader)
            self.data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ContractError(f"{origin}{where}: not valid YAML ({problem})") from None
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._index(node, ())

    def _index(self, node, path: tuple) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[(*path, key.value)] = key.start_mark.line + 1
                self._index(value, (*path, key.value))
                self.lines[(*path, key.value)] = key.start_mark.line + 1

    def error(self, path: tuple, message: str) -> ContractError:
        line = None
        for end in range(len(path), -1, -1):  # the nearest key the file spells
            line = self.lines.get(tuple(str(p) for p in path[:end]))
            if line is not None:
                break
        where = f" line {line}" if line is not None else ""
        key = f" ({'.'.join(map(str, path))})" if path else ""
        return ContractError(f"{self.origin}{where}{key}: {message}")

    def mapping(self, value, path: tuple, keys: tuple) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping of keys, got {_shown(value)}")
        for key in value:
            if key not in keys:
                raise self.error((*path, key), f"unknown key {key!r}.{did_you_mean(str(key), keys)}"
                                 f" Keys: {', '.join(keys)}")
        return value

    def number(self, value, path: tuple, *, share: bool = False, integer: bool = False):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(path, f"expected a number, got {_shown(value)}")
        if integer and not float(value).is_integer():
            raise self.error(path, f"expected a whole number, got {_shown(value)}")
        if share and not 0 <= value <= 1:
            raise self.error(path, f"expected a share between 0 and 1, got {_shown(value)}")
        return int(value) if integer and not share else float(value)

    def bound(self, value, path: tuple, kind: str):
        if kind == "datetime" and value is not None and not isinstance(value, (int, float)):
            import pandas as pd

            try:
                stamp = pd.Timestamp(value)
            except (ValueError, TypeError):
                raise self.error(path, f"expected a date and time (ISO 8601), got {_shown(value)}") from None
            if stamp.tzinfo is not None:
                stamp = stamp.tz_convert("UTC").tz_localize(None)
            return float(stamp.as_unit("ns").value) / 1e9
        return self.number(value, path)


def parse(text: str, origin: str = "contract") -> Contract:
    """A ``Contract`` from YAML text; ``origin`` names it in errors."""
    r = _Reader(text, origin)
    top = r.mapping(r.data, (), _TOP_KEYS)
    if not top:
        raise ContractError(f"{origin}: empty: expected a contract (format: {FORMAT})")
    if top.get("format") != FORMAT:
        raise r.error(("format",), f"expected format: {FORMAT}, got {_shown(top.get('format'))}")
    out = Contract(source=str(top.get("source") or ""))
    if "tolerance" in top:
        out.tolerance = r.number(top["tolerance"], ("tolerance",), share=True)
    out.reference_rows = r.number(top.get("reference_rows"), ("reference_rows",), integer=True)
    rows = r.mapping(top.get("rows"), ("rows",), ("min", "max"))
    out.rows_min, out.rows_max = (r.number(rows.get(k), ("rows", k), integer=True) for k in ("min", "max"))
    if out.rows_min is not None and out.rows_max is not None and out.rows_min > out.rows_max:
        raise r.error(("rows",), f"min {out.rows_min} is above max {out.rows_max}")
    extra = top.get("extra_columns", "fail")
    if extra not in ("allow", "fail"):
        raise r.error(("extra_columns",), f"expected allow or fail, got {_shown(extra)}")
    out.extra_columns = extra
    columns = top.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise r.error(("columns",), "expected the columns, each a mapping (dtype, min, max, ...)")
    out.columns = {str(name): _column(r, str(name), spec) for name, spec in columns.items()}
    return out


def _column(r: _Reader, name: str, spec) -> ColumnRule:
    path = ("columns", name)
    spec = r.mapping(spec, path, _COLUMN_KEYS)
    kind = spec.get("dtype", "any") or "any"
    if kind not in KINDS:
        raise r.error((*path, "dtype"), f"unknown dtype kind {_shown(kind)}.{did_you_mean(str(kind), KINDS)}"
                      f" Kinds: {', '.join(KINDS)}")
    rule = ColumnRule(name, kind)
    rule.min, rule.max = (r.bound(spec.get(k), (*path, k), kind) for k in ("min", "max"))
    if rule.min is not None and rule.max is not None and rule.min > rule.max:
        raise r.error((*path, "min"), f"min is above max ({spec['min']} > {spec['max']})")
    cats = spec.get("categories")
    if cats is not None:
        if not isinstance(cats, list) or any(isinstance(c, (list, dict)) for c in cats):
            raise r.error((*path, "categories"), f"expected a list of values, got {_shown(cats)}")
        rule.categories = [_label(c) for c in cats if c is not None]
    rule.other = r.number(spec.get("other"), (*path, "other"), share=True) or 0.0
    rule.missing = r.number(spec.get("missing"), (*path, "missing"), share=True)
    rule.tolerance = r.number(spec.get("tolerance"), (*path, "tolerance"), share=True)
    return rule


def _label(value) -> str:
    """As a profile names a category: ``str`` of the value (YAML's ``1`` is the category "1")."""
    return value if isinstance(value, str) else str(value)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
