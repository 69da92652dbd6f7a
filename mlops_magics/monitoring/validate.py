"""``mm.validate(data, reference)``: check new data against the reference's contract.

Checks, per column of the contract: present, dtype kind, share of rows outside the range,
share of rows with categories the reference never had, missing-rate rise; for the table:
extra columns (unless allowed) and row-count bounds (when set). Every row is read, with
numpy and pandas vector operations (a column of 1M rows takes milliseconds).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import MlopsError
from ._columns import CATEGORICAL, _as_numbers, _categorical, _names
from ._evaluate import percent
from .contract import ColumnRule, Contract, contract, dtype_kind, is_contract_path, kinds_match
from .validation_report import ValidationReport

TABLE = "(table)"  # the column named by table-wide checks (row count)
_SIGMAS = 3  # a share is exceeded only beyond this many binomial standard errors


class ValidationInputError(MlopsError, TypeError):
    """Data that cannot be validated."""


@dataclass
class Check:
    column: str
    check: str
    passed: bool
    expected: str
    observed: str


def validate(data, reference, *, tolerance: float | None = None) -> ValidationReport:
    """Check ``data`` against what ``reference`` held; return a ``ValidationReport``.

    Parameters
    ----------
    data
        A DataFrame (or Series, numpy array, Arrow table), or a CSV / Parquet file.
    reference
        A DataFrame, a ``Profile``, ``"runs:/<run id>/<data name>"`` (the profile a tracked
        run logged, e.g. the champion's training data), a profile JSON or data file, or a
        contract (``mm.contract(...)`` or its saved YAML file).
    tolerance
        Share of rows allowed outside the reference's range or with categories it never
        had, and the rise allowed in a column's missing rate. Default 0.01 (or the
        contract's; a column's own tolerance in a contract file wins).

    Checks: columns missing, and extra (unless the contract allows them); dtype kind
    (integer, float, boolean, string, datetime, timedelta; integer columns may arrive as
    floats holding whole numbers); values outside ``[min, max]``; unseen categories;
    missing rate (NaN, None, NaT, +-inf); row count when the contract sets bounds.
    A reference is a sample: new values fall outside its range about 2 / (n + 1) of the
    time and outside its listed categories as often as its ``other`` share, so both are
    allowed on top of the tolerance; a share fails only when it exceeds what is allowed
    by more than three binomial standard errors of the data's row count (on 100 rows,
    1% allowed admits 4%; on 1M rows, 1.03%). ``report.table`` says each bound in effect.
    """
    rules = contract(reference, tolerance=tolerance)
    ref_given = reference
    frame, described = _frame(data)
    checks = _check(frame, rules)
    return ValidationReport(checks, rules, data=described, reference=_describe(ref_given))


def _check(frame: pd.DataFrame, rules: Contract) -> list[Check]:
    names = _names(frame.columns)
    position = {n: i for i, n in enumerate(names)}
    rows = len(frame)
    checks: list[Check] = []
    if rules.rows_min is not None or rules.rows_max is not None:
        ok = (rules.rows_min is None or rows >= rules.rows_min) and (rules.rows_max is None or rows <= rules.rows_max)
        checks.append(Check(TABLE, "row count", ok, _rows_expected(rules), f"{rows:,}"))
    for name, rule in rules.columns.items():
        if name not in position:
            checks.append(Check(name, "column", False, "present", "missing"))
            continue
        checks.append(Check(name, "column", True, "present", "present"))
        tol = rules.tolerance if rule.tolerance is None else rule.tolerance
        checks += _column(rule, frame.iloc[:, position[name]], rows, tol, rules.reference_rows)
    if rules.extra_columns == "fail":
        checks += [Check(n, "column", False, "not in the contract", "extra") for n in names if n not in rules.columns]
    return checks


def _column(rule: ColumnRule, s: pd.Series, rows: int, tol: float, ref_rows: int | None) -> list[Check]:
    out = []
    x = _as_numbers(s)
    finite = np.isfinite(x) if x is not None else None
    kind = dtype_kind(str(s.dtype), "numeric" if x is not None else "")
    if rule.dtype != "any":
        whole = kind == "float" and rule.dtype == "integer" and _whole(x, finite)
        passed = kinds_match(rule.dtype, kind, whole)
        shown = f"{s.dtype} ({kind}{', whole numbers' if whole else ''})"
        out.append(Check(rule.name, "dtype", passed, rule.dtype, shown))
    if x is not None:
        n_finite = int(np.count_nonzero(finite))
        missing = rows - n_finite
    else:
        absent = s.isna().to_numpy(dtype=bool)
        missing = int(np.count_nonzero(absent))
    if x is not None and (rule.min is not None or rule.max is not None):
        out.append(_range(rule, x, n_finite, rows, tol + (2 / (ref_rows + 1) if ref_rows else 0.0)))
    if rule.categories is not None:
        absent = ~finite if x is not None else absent
        out.append(_categories(rule, s, absent, rows, tol + rule.other))
    if rule.missing is not None:
        allowed = _bound(min(1.0, rule.missing + tol), rows)
        share = missing / rows if rows else 0.0
        out.append(Check(rule.name, "missing rate", share <= allowed + 1e-12,
                         f"≤ {percent(allowed)} (reference {percent(rule.missing)})",
                         _observed(share, missing)))
    return out


def _whole(x: np.ndarray, finite: np.ndarray) -> bool:
    v = x[finite]
    return bool(np.array_equal(v, np.trunc(v)))


def _range(rule: ColumnRule, x: np.ndarray, n_finite: int, rows: int, base: float) -> Check:
    lo = -np.inf if rule.min is None else rule.min
    hi = np.inf if rule.max is None else rule.max
    # -inf < lo and +inf > hi always: they are missing values, not out of range
    n_inf = rows - n_finite - int(np.count_nonzero(np.isnan(x)))
    n = int(np.count_nonzero(x < lo)) + int(np.count_nonzero(x > hi)) - n_inf
    allowed = _bound(min(1.0, base), rows)
    share = n / rows if rows else 0.0
    expected = f"≤ {percent(allowed)} outside [{_value(rule.min, rule.dtype)}, {_value(rule.max, rule.dtype)}]"
    return Check(rule.name, "range", share <= allowed + 1e-12, expected,
                 _observed(share, n, _extremes(x, lo, hi, rule) if n else ""))


def _extremes(x: np.ndarray, lo: float, hi: float, rule: ColumnRule) -> str:
    """The most extreme values outside the range, for the observed text."""
    parts = []
    with np.errstate(invalid="ignore"):
        below, above = x[(x < lo) & np.isfinite(x)], x[(x > hi) & np.isfinite(x)]
    if below.size:
        parts.append(f"min {_value(float(below.min()), rule.dtype)}")
    if above.size:
        parts.append(f"max {_value(float(above.max()), rule.dtype)}")
    return ", ".join(parts)


def _categories(rule: ColumnRule, s: pd.Series, absent: np.ndarray, rows: int, base: float) -> Check:
    known = rule.categories
    try:
        hit = s.isin(known).to_numpy(dtype=bool) | absent  # vectorised (Arrow strings: pyarrow's is_in)
    except TypeError:  # unhashable values (lists): all go by their text below
        hit = absent.copy()
    n, unseen, more = 0, [], False
    if not hit.all():  # values that are not strings match by their text, as in a profile ("1" is 1)
        raw = _categorical(rule.name, str(s.dtype), s[~hit])
        if raw.kind == CATEGORICAL:
            new = raw.counts[~raw.counts.index.isin(known)]
            n, unseen, more = int(new.sum()), [str(v) for v in new.index[:3]], len(new) > 3
    allowed = _bound(min(1.0, base), rows)
    share = n / rows if rows else 0.0
    listed = f"{len(known):,} categor{'y' if len(known) == 1 else 'ies'}"
    extra = (f" (the reference's {percent(rule.other)} outside them included)" if rule.other else "")
    detail = ", ".join(repr(v) for v in unseen) + (", ..." if more else "")
    return Check(rule.name, "categories", share <= allowed + 1e-12,
                 f"≤ {percent(allowed)} not in the {listed}{extra}", _observed(share, n, detail))


def _bound(share: float, rows: int) -> float:
    """The largest share of ``rows`` rows that sampling at ``share`` explains (3 standard errors)."""
    if rows == 0 or share <= 0:
        return max(share, 0.0)
    return min(1.0, share + _SIGMAS * math.sqrt(share * (1 - share) / rows))


def _observed(share: float, n: int, detail: str = "") -> str:
    return f"{percent(share)} ({n:,} row{'' if n == 1 else 's'}{': ' + detail if detail else ''})"


def _value(v: float | None, kind: str) -> str:
    if v is None:
        return "-inf"
    if kind == "datetime":
        return str(pd.Timestamp(v, unit="s"))
    return f"{v:.6g}"


def _rows_expected(rules: Contract) -> str:
    lo, hi = rules.rows_min, rules.rows_max
    if lo is not None and hi is not None:
        return f"{lo:,} to {hi:,} rows"
    return f"≥ {lo:,} rows" if lo is not None else f"≤ {hi:,} rows"


def _frame(data) -> tuple[pd.DataFrame, str]:
    """``data`` as a DataFrame (files read) and how the report names it."""
    from . import _sources
    from .profile import Profile

    given = data
    if is_contract_path(data):
        raise ValidationInputError(f"{os.fspath(data)} is a contract: pass it as the reference (second argument)")
    data = _sources.resolve(data)
    if isinstance(data, Profile):
        raise ValidationInputError(f"cannot validate {_describe(given)}: a profile summarises the data, "
                                   "validation reads the rows; pass the data (a DataFrame, CSV or Parquet file)")
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame("value" if data.name is None else data.name)
    elif isinstance(data, np.ndarray) and data.ndim in (1, 2) and not data.dtype.names:
        frame = pd.DataFrame(data.reshape(len(data), -1), copy=False)
        if data.ndim == 1:
            frame.columns = ["value"]
    elif isinstance(data, Mapping) or isinstance(data, np.ndarray):
        frame = pd.DataFrame(data)
    elif hasattr(data, "to_pandas"):  # Arrow, polars
        frame = data.to_pandas()
    else:
        raise ValidationInputError(f"cannot validate a {type(data).__name__}: pass a DataFrame, Series, "
                                   "numpy array, Arrow table, or a CSV / Parquet file")
    return frame, _sources.describe(frame, given)


def _describe(given) -> str:
    from . import _sources

    if isinstance(given, Contract):
        return given.source or f"contract of {len(given.columns)} columns"
    return _sources.describe(given, given)
