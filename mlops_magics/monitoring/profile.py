"""``mm.profile(obj)``: a small, JSON-serialisable per-column summary, enough for drift.

Numeric columns keep count, missing, min, max, mean, std (population), the number of
distinct values and a fixed-layout quantile sketch (``_dist``); categorical columns keep
their top ``TOP_CATEGORIES`` categories with counts and an ``other`` count. Profiles merge.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _dist
from ._columns import CATEGORICAL, EMPTY, NUMERIC, UNSUPPORTED, ColumnCounts, RawColumn, columns
from ._dist import Dist

FORMAT = "mlops-magics.profile/1"
TOP_CATEGORIES = 100
MAX_COLUMNS = 100  # a wider table keeps its first columns: a profile stays small whatever the shape
MAX_BYTES = 512 * 1024  # ... and at most this much JSON (a column of 1,000 exact values is ~20 kB)
_PARALLEL_ROWS = 50_000  # below this, threads cost more than they save


@dataclass(eq=False)
class ColumnProfile(ColumnCounts):
    """The summary of one column. ``missing`` counts NaN, None, NaT and +-inf."""

    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    distinct: int = 0
    distinct_exact: bool = True
    dist: Dist | None = None
    counts: pd.Series | None = None  # top categories, descending
    other: int = 0  # values outside the top categories
    note: str = ""

    @property
    def complete(self) -> bool:
        """True when every category is listed (none hides in ``other``)."""
        return self.other == 0

    @classmethod
    def from_raw(cls, raw: RawColumn) -> ColumnProfile:
        col = cls(raw.name, raw.kind, raw.dtype, raw.rows, raw.missing, note=raw.note)
        if raw.kind == NUMERIC:
            s = raw.dist.x
            col.min, col.max = float(s[0]), float(s[-1])
            col.mean, col.std = float(s.mean()), float(s.std())
            col.distinct = _dist.distinct(s)
            col.dist = Dist.from_sorted(s)
        elif raw.kind == CATEGORICAL:
            col.distinct = len(raw.counts)
            col.counts = raw.counts.iloc[:TOP_CATEGORIES]
            col.other = int(raw.counts.iloc[TOP_CATEGORIES:].sum())
        return col

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"kind": self.kind, "dtype": self.dtype, "rows": self.rows, "missing": self.missing}
        if self.kind == NUMERIC:
            out |= {"min": self.min, "max": self.max, "mean": _num(self.mean), "std": _num(self.std),
                    "distinct": self.distinct, "distinct_exact": self.distinct_exact, **self.dist.to_dict()}
        elif self.kind == CATEGORICAL:
            out |= {"distinct": self.distinct, "distinct_exact": self.distinct_exact,
                    "categories": list(self.counts.index), "counts": [int(c) for c in self.counts],
                    "other": self.other}
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, name: str, d: dict) -> ColumnProfile:
        col = cls(name, d["kind"], d.get("dtype", ""), int(d["rows"]), int(d["missing"]), note=d.get("note", ""))
        if col.kind == NUMERIC:
            col.min, col.max, col.mean, col.std = (_num(d.get(k)) for k in ("min", "max", "mean", "std"))
            col.distinct, col.distinct_exact = int(d["distinct"]), bool(d.get("distinct_exact", True))
            col.dist = Dist.from_dict(d, col.count)
        elif col.kind == CATEGORICAL:
            col.distinct, col.distinct_exact = int(d["distinct"]), bool(d.get("distinct_exact", True))
            index = pd.Index(d["categories"], dtype=np.dtype(object))  # np.dtype: no catch_warnings in pandas
            col.counts = pd.Series(np.asarray(d["counts"], dtype=np.int64), index=index)
            col.other = int(d.get("other", 0))
        return col

    # -- merging -------------------------------------------------------------------------------
    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """Both batches' column together (see ``Profile.merge``)."""
        a, b = self, other
        if a.kind == EMPTY or b.kind == EMPTY or a.kind != b.kind or a.kind == UNSUPPORTED:
            return _merge_kinds(a, b)
        out = ColumnProfile(a.name, a.kind, a.dtype, a.rows + b.rows, a.missing + b.missing)
        if a.kind == NUMERIC:
            _merge_numeric(out, a, b)
        else:
            _merge_categorical(out, a, b)
        return out


def _merge_kinds(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    rows, missing = a.rows + b.rows, a.missing + b.missing
    if b.kind == EMPTY or a.kind == EMPTY:
        keep = a if b.kind == EMPTY else b
        out = ColumnProfile(**{**keep.__dict__, "rows": rows, "missing": missing})
        return out
    note = f"{a.kind} in one batch, {b.kind} in another"
    return ColumnProfile(a.name, UNSUPPORTED, a.dtype, rows, missing, note=a.note or b.note or note)


def _merge_numeric(out: ColumnProfile, a: ColumnProfile, b: ColumnProfile) -> None:
    na, nb = a.count, b.count
    n = na + nb
    out.min, out.max = min(a.min, b.min), max(a.max, b.max)
    delta = b.mean - a.mean
    out.mean = a.mean + delta * nb / n
    m2 = a.std ** 2 * na + b.std ** 2 * nb + delta ** 2 * na * nb / n  # Chan et al.
    out.std = math.sqrt(max(m2, 0.0) / n)
    out.dist = _dist.merge(a.dist, b.dist)
    if out.dist.kind == "values" or (out.dist.kind == "sample" and a.distinct_exact and b.distinct_exact):
        out.distinct = len(np.unique(out.dist.x))
    else:
        out.distinct, out.distinct_exact = max(a.distinct, b.distinct), False


def _merge_categorical(out: ColumnProfile, a: ColumnProfile, b: ColumnProfile) -> None:
    total = a.counts.add(b.counts, fill_value=0).astype(np.int64).sort_values(ascending=False, kind="stable")
    out.counts = total.iloc[:TOP_CATEGORIES]
    out.other = out.count - int(out.counts.sum())
    if a.complete and b.complete:
        out.distinct = len(total)
    else:  # a category listed on one side may hide in the other's "other": counts are lower bounds
        out.distinct, out.distinct_exact = max(a.distinct, b.distinct, len(total)), False


@dataclass(eq=False)
class Profile:
    """Per-column summaries of one data set: ``profile[name]``, ``.to_json()``, ``.merge(other)``."""

    rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    total: int | None = None  # columns of the data, when more than were profiled (see MAX_COLUMNS)

    @property
    def capped(self) -> bool:
        """True when the data had more columns than the profile keeps (drift checks only these)."""
        return self.total is not None and self.total > len(self.columns)

    def _caption(self) -> str:
        more = f" (the first of {self.total:,} columns)" if self.capped else ""
        return f"Profile of {self.rows:,} rows x {len(self.columns)} columns{more}"

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def to_dict(self) -> dict:
        out = {"format": FORMAT, "rows": self.rows,
               "columns": {name: col.to_dict() for name, col in self.columns.items()}}
        if self.capped:
            out["columns_total"] = self.total
            out["note"] = (f"the first {len(self.columns)} of {self.total:,} columns are profiled "
                           f"(at most {MAX_COLUMNS} columns and {MAX_BYTES // 1024} kB of JSON)")
        return out

    def to_json(self, indent: int | None = None) -> str:
        """The profile as JSON text (what ``%%track`` logs as ``mlops/profiles/<name>.json``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> Profile:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a mlops-magics profile (format {data.get('format')!r}, expected {FORMAT!r})")
        cols = {name: ColumnProfile.from_dict(name, d) for name, d in data["columns"].items()}
        total = data.get("columns_total")
        return cls(int(data["rows"]), cols, int(total) if total is not None else None)

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        return cls.from_dict(json.loads(text))

    def merge(self, other: Profile) -> Profile:
        """The profile of both data sets stacked (rows of one batch, then the other's).

        Exact for counts, missing, min, max, mean and std, for numeric columns with at
        most 64 distinct values or 1,000 values, and for categories when both sides list
        all of theirs. Otherwise approximate: sketch ranks gain at most 1/256 per merge and
        a category in one side's top 100 that hides in the other's ``other`` is undercounted.
        A column missing from one side counts that side's rows as missing.
        """
        cols = {}
        for name in list(self.columns) + [n for n in other.columns if n not in self.columns]:
            a = self.columns.get(name) or _absent(name, self.rows)
            b = other.columns.get(name) or _absent(name, other.rows)
            cols[name] = a.merge(b)
        totals = [p.total for p in (self, other) if p.capped]
        return Profile(self.rows + other.rows, cols, max([len(cols), *totals]) if totals else None)

    def summary(self) -> pd.DataFrame:
        """One row per column: kind, count, missing, min/max/mean/std or the top category."""
        return pd.DataFrame([_summary_row(c) for c in self.columns.values()],
                            columns=["column", "kind", "count", "missing", "distinct", "min", "max", "mean", "std", "top"])

    def __repr__(self) -> str:
        return f"{self._caption()}\n{self.summary().to_string(index=False)}"

    def _repr_html_(self) -> str:
        caption = html.escape(self._caption())
        return f"<div><b>{caption}</b>{self.summary().to_html(index=False, na_rep='', float_format=_fmt)}</div>"


def _absent(name: str, rows: int) -> ColumnProfile:
    return ColumnProfile(name, EMPTY, "", rows, rows)


def _summary_row(c: ColumnProfile) -> list:
    top = f"{c.counts.index[0]} ({c.counts.iloc[0]:,})" if c.kind == CATEGORICAL else (c.note or "")
    distinct = f"{c.distinct:,}" + ("" if c.distinct_exact else "+")
    return [c.name, c.kind, c.count, c.missing, distinct, c.min, c.max, c.mean, c.std, top]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _num(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def load_columns(obj: object, names: list[str] | None = None) -> tuple[dict[str, RawColumn], int]:
    """Read the columns of ``obj`` (those in ``names`` when given), in parallel for large data."""
    found, rows = columns(obj)
    wanted = None if names is None else set(names)
    return _load([(n, load) for n, load in found if wanted is None or n in wanted], rows), rows


def _load(loaders: list, rows: int) -> dict[str, RawColumn]:
    workers = min(os.cpu_count() or 1, len(loaders)) if rows >= _PARALLEL_ROWS else 1
    if workers <= 1:
        return {n: load() for n, load in loaders}
    with ThreadPoolExecutor(workers) as pool:  # numpy sorts release the GIL
        loaded = list(pool.map(lambda item: item[1](), loaders))
    return {n: col for (n, _), col in zip(loaders, loaded)}


def profile(obj: object) -> Profile:
    """Summarise ``obj`` (DataFrame, Series, numpy 1-D/2-D array, Arrow table) per column.

    Every row is read. Numeric columns get count, missing (NaN, None, NaT, +-inf), min,
    max, mean, std (population), distinct count and a quantile sketch at a fixed grid of
    ranks (every 1/256 and 1e-6 ... 1e-3 from both ends), so any two profiles compare
    without the data: the CDF between grid points is interpolated, off by at most 1/256
    in rank (far less on smooth data). Up to 1,000 values or 64 distinct values are kept
    exactly instead. Strings, booleans and categories keep their 100 most frequent
    values with counts and the count of the rest. Datetimes are seconds since the epoch.
    About 6 kB of JSON per numeric column; note that sketches hold actual data values.

    Bounded whatever the shape: a table keeps its first ``MAX_COLUMNS`` columns, within
    ``MAX_BYTES`` of JSON (the profile says so, and drift checks those columns); a plain
    2-D array wider than 64 columns is one column, ``values``, of all its values.
    """
    found, rows = columns(obj)
    raw = _load(found[:MAX_COLUMNS], rows)
    cols: dict[str, ColumnProfile] = {}
    size = 0
    for name, col in raw.items():
        prof = ColumnProfile.from_raw(col)
        size += len(json.dumps(prof.to_dict(), allow_nan=False, ensure_ascii=False))
        if cols and size > MAX_BYTES:
            break
        cols[name] = prof
    return Profile(rows, cols, len(found) if len(found) > len(cols) else None)
