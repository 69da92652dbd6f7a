"""Data contracts: what ``mm.validate`` checks, taken from a reference and kept as YAML.

A contract lists the reference's columns with their dtype kind, numeric range, categories
and missing rate, plus a tolerance, optional row-count bounds and whether extra columns are
allowed. ``mm.contract(reference)`` builds one from a DataFrame, a ``Profile``, a
``runs:/<run id>/<data name>`` URI or a profile file; ``.save(path)`` writes it as YAML a
person edits; the saved file stands in for the reference anywhere one is taken.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlopsError, did_you_mean
from ._columns import CATEGORICAL, NUMERIC

FORMAT = "mlops-magics.contract/1"
DEFAULT_TOLERANCE = 0.01
MAX_CATEGORIES = 1000  # a contract built from data lists this many categories (a profile keeps 100)
KINDS = ("integer", "float", "number", "boolean", "string", "datetime", "timedelta", "any")
_NUMBERS = {"integer", "float", "number"}
_SUFFIXES = (".yaml", ".yml")
_TOP_KEYS = ("format", "source", "reference_rows", "tolerance", "rows", "extra_columns", "columns")
_COLUMN_KEYS = ("dtype", "min", "max", "categories", "other", "missing", "tolerance")

_HEADER = """\
# mlops-magics data contract. Use it in place of the reference:
#   mm.validate(data, "{path}")   or   mlops-magics validate DATA {path}
# Edit freely; delete a key to skip its check.
#   tolerance        share of rows allowed outside a range or with unseen categories, and the
#                    rise allowed in a missing rate (a column may set its own tolerance)
#   reference_rows   rows the bounds were taken from (new data falls outside a sample's range
#                    about 2 / (reference_rows + 1) of the time: that much is allowed too)
#   rows             {{min: N, max: N}}: row-count bounds (null: not checked)
#   extra_columns    allow | fail: columns this contract does not list
#   columns          per column: dtype, min / max, categories (other: the reference's share
#                    outside those listed), missing (the reference's missing rate)
#   dtype kinds      {kinds}
"""


class ContractError(MlopsError, ValueError):
    """A contract that cannot be read or built."""


def dtype_kind(dtype: str, kind: str = "") -> str:
    """The kind of a dtype name (``int64`` -> integer, ``category`` -> string, ...)."""
    d = dtype.lower()
    if "datetime" in d:
        return "datetime"
    if "timedelta" in d:
        return "timedelta"
    if d.startswith("bool"):
        return "boolean"
    if d.startswith(("int", "uint")):
        return "integer"
    if d.startswith("float"):
        return "float"
    if kind == NUMERIC:  # an object column of numbers
        return "number"
    if d in ("object", "category", "str") or d.startswith("string"):
        return "string"
    return "any"


def kinds_match(expected: str, observed: str, whole: bool = False) -> bool:
    """Same kind; numbers of any kind where ``number`` is expected; floats for an integer
    column when their values are ``whole`` (a missing value turns a CSV's integers to floats)."""
    if expected in ("any", observed) or observed == "any":
        return True
    if expected in _NUMBERS and observed in _NUMBERS:
        return not (expected == "integer" and observed == "float") or whole
    return False


@dataclass(eq=False)
class ColumnRule:
    """What one column must hold. ``None`` skips that check. Datetimes' bounds are seconds."""

    name: str
    dtype: str = "any"
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    other: float = 0.0  # share of reference values not among ``categories``
    missing: float | None = None  # the reference's missing rate
    tolerance: float | None = None

    def to_dict(self) -> dict:
        out: dict = {"dtype": self.dtype}
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _bound_out(value, self.dtype, up=key == "max")
        if self.categories is not None:
            out["categories"] = list(self.categories)
            if self.other:
                out["other"] = self.other
        if self.missing is not None:
            out["missing"] = self.missing
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance
        return out


@dataclass(eq=False)
class Contract:
    """Columns with their rules, a tolerance, row-count bounds and the extra-columns policy."""

    columns: dict[str, ColumnRule] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE
    rows_min: int | None = None
    rows_max: int | None = None
    extra_columns: str = "fail"
    reference_rows: int | None = None
    source: str = ""

    def to_dict(self) -> dict:
        out: dict = {"format": FORMAT}
        if self.source:
            out["source"] = self.source
        if self.reference_rows is not None:
            out["reference_rows"] = self.reference_rows
        out |= {"tolerance": self.tolerance, "rows": {"min": self.rows_min, "max": self.rows_max},
                "extra_columns": self.extra_columns,
                "columns": {name: rule.to_dict() for name, rule in self.columns.items()}}
        return out

    def to_yaml(self, path: str = "contract.yaml") -> str:
        import yaml

        class Dumper(yaml.SafeDumper):  # a key per line, each list on one line
            pass

        Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
        header = _HEADER.format(path=path, kinds=", ".join(KINDS))
        return header + yaml.dump(self.to_dict(), Dumper=Dumper, sort_keys=False, default_flow_style=False,
                                  allow_unicode=True, width=100)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the contract as YAML at ``path`` (``.yaml`` or ``.yml``) and return the path."""
        target = Path(path).expanduser()
        if target.suffix.lower() not in _SUFFIXES:
            raise ContractError(f"a contract is saved as .yaml or .yml, not {target.name!r}")
        try:
            target.write_text(self.to_yaml(os.fspath(path)), encoding="utf-8")
        except OSError as exc:
            raise ContractError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> Contract:
        """Read a contract YAML file; a mistake is one line naming the line and the key."""
        p = Path(path).expanduser()
        if not p.is_file():
            folder = p.parent if p.parent.is_dir() else None
            hint = did_you_mean(p.name, [q.name for q in folder.iterdir()]) if folder else ""
            raise ContractError(f"no contract file {os.fspath(path)}." + hint)
        from ._contract_yaml import parse

        return parse(p.read_text(encoding="utf-8"), os.fspath(path))

    def __repr__(self) -> str:
        return f"Contract of {len(self.columns)} columns (tolerance {self.tolerance:g})\n{self.to_yaml()}"


def is_contract_path(obj: object) -> bool:
    return isinstance(obj, (str, os.PathLike)) and os.fspath(obj).lower().endswith(_SUFFIXES)


def contract(reference, *, tolerance: float | None = None,
             rows: Sequence[int | None] | None = None) -> Contract:
    """The contract ``mm.validate`` checks against, taken from ``reference``.

    Parameters
    ----------
    reference
        A DataFrame (or Series, numpy array, Arrow table), a ``Profile``, a
        ``"runs:/<run id>/<data name>"`` URI (the profile a tracked run logged), a CSV /
        Parquet / profile JSON file, a contract YAML file or a ``Contract``.
    tolerance
        Share of rows allowed outside a range or with unseen categories, and the rise
        allowed in a missing rate (default 0.01, or the contract file's).
    rows
        ``(min, max)`` row-count bounds for the data validated (either may be None).

    ``.save("contract.yaml")`` writes it for editing; the file is then a reference too.
    """
    from . import _sources
    from .profile import Profile

    if isinstance(reference, Contract):
        out = Contract(**reference.__dict__)
    elif is_contract_path(reference):
        out = Contract.load(reference)
    else:
        given = reference
        resolved = _sources.resolve(reference)
        source = _sources.describe(resolved, given)
        out = from_profile(resolved, source) if isinstance(resolved, Profile) else from_data(resolved, source)
    if tolerance is not None:
        out.tolerance = check_tolerance(tolerance)
    if rows is not None:
        out.rows_min, out.rows_max = _rows(rows)
    return out


def check_tolerance(value, where: str = "tolerance") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ContractError(f"{where} must be a share between 0 and 1, got {value!r}")
    return float(value)


def _rows(rows) -> tuple[int | None, int | None]:
    if isinstance(rows, int) or len(rows) != 2:
        raise ContractError(f"rows must be (min, max), either may be None; got {rows!r}")
    lo, hi = (None if v is None else int(v) for v in rows)
    if lo is not None and hi is not None and lo > hi:
        raise ContractError(f"rows: min {lo} is above max {hi}")
    return lo, hi


def from_profile(prof, source: str = "") -> Contract:
    """A contract from a ``Profile``: its columns' kinds, ranges, top categories, missing rates."""
    rules = {name: _rule(col, col.counts, col.other) for name, col in prof.columns.items()}
    return Contract(rules, extra_columns="allow" if prof.capped else "fail",
                    reference_rows=prof.rows, source=source)


def from_data(obj, source: str = "") -> Contract:
    """A contract from data: every column, up to ``MAX_CATEGORIES`` categories each."""
    from .profile import ColumnProfile, load_columns

    raw, rows = load_columns(obj)
    rules = {}
    for name, col in raw.items():
        counts = col.counts.iloc[:MAX_CATEGORIES] if col.counts is not None else None
        other = int(col.counts.iloc[MAX_CATEGORIES:].sum()) if col.counts is not None else 0
        rules[name] = _rule(ColumnProfile.from_raw(col), counts, other)
    return Contract(rules, reference_rows=rows, source=source)


def _rule(col, counts, other: int) -> ColumnRule:
    rule = ColumnRule(col.name, dtype_kind(col.dtype, col.kind))
    rule.missing = col.missing / col.rows if col.rows else 0.0
    if col.kind == NUMERIC:
        rule.min, rule.max = col.min, col.max
    elif col.kind == CATEGORICAL:
        rule.categories = [str(c) for c in counts.index]
        rule.other = other / col.count if col.count else 0.0
    else:  # empty or unsupported: nothing known but its presence and missing rate
        rule.dtype = "any"
    return rule


def _bound_out(value: float, kind: str, up: bool):
    if kind == "datetime":  # to the microsecond, outwards: the reference's own values stay inside
        import pandas as pd

        micros = math.ceil(value * 1e6) if up else math.floor(value * 1e6)
        return pd.Timestamp(micros, unit="us").isoformat()
    if kind == "integer" and float(value).is_integer():
        return int(value)
    return float(value)
