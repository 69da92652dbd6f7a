"""One feature's drift: the method (chosen or given), its score, and the side signals
(missing-rate change, unseen share, schema changes). Never raises on content."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _dist, _methods
from ._columns import CATEGORICAL, EMPTY, NUMERIC, UNSUPPORTED
from ._pvalues import two_proportion_pvalue
from .verdict import MIN_ROWS

METHODS = ("psi", "kl", "js", "wasserstein", "ks", "chi2")
P_VALUE_METHODS = ("ks", "chi2")
DEFAULT_THRESHOLDS = {"psi": 0.1, "kl": 0.1, "js": 0.1, "wasserstein": 0.1, "ks": 0.05, "chi2": 0.05,
                      "missing": 0.05}
SMALL = 1000  # Evidently's cut between tests (p-values) and distances, on the smaller side
FEW_VALUES = 5
_MISSING_ALPHA = 0.05
_NUMERIC_ONLY = {"ks": "chi2", "wasserstein": "js"}  # stand-ins on categorical columns


@dataclass
class Row:
    feature: str
    method: str = ""
    score: float = math.nan
    threshold: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan
    null_rate_change: float = math.nan
    unseen_share: float = math.nan
    status: str = "ok"
    reason: str = ""
    details: list[str] = field(default_factory=list)
    counted: bool = True  # part of the drift share
    method_drift: bool = False
    missing_drift: bool = False
    schema_drift: bool = False
    buckets: _methods.Buckets | None = None
    n_ref: int = 0  # values compared on each side
    n_cur: int = 0
    caveat: str = ""  # small sample: "chance" (a distance near its threshold by chance), "power" (a test), ""
    chance: float = math.nan  # a distance's chance level at these sizes

    @property
    def drifted(self) -> bool:
        return self.method_drift or self.missing_drift or self.schema_drift


def evaluate(name: str, ref, cur, method: str, thresholds: dict[str, float]) -> Row:
    """Compare column ``ref`` with ``cur`` (RawColumn or ColumnProfile; None when absent)."""
    row = Row(name)
    try:
        if _schema(row, ref, cur) and _missing(row, ref, cur, thresholds["missing"]) and _values(row, ref, cur):
            _score(row, ref, cur, method, thresholds)
    except Exception as exc:  # one bad column never sinks the report
        row.status, row.counted = f"error: {type(exc).__name__}: {exc}"[:200], False
    return row


def _schema(row: Row, ref, cur) -> bool:
    if ref is None:
        row.status, row.counted = "new in current", False
    elif cur is None:
        row.status, row.schema_drift = "missing in current", True
    elif UNSUPPORTED in (ref.kind, cur.kind):
        note = ref.note if ref.kind == UNSUPPORTED else cur.note
        row.status, row.counted = "unsupported" + (f": {note}" if note else ""), False
    elif EMPTY not in (ref.kind, cur.kind) and ref.kind != cur.kind:
        row.status, row.schema_drift = f"type changed: {ref.kind} -> {cur.kind}", True
    else:
        return True
    return False


def _missing(row: Row, ref, cur, limit: float) -> bool:
    """The missing-rate signal: drift when it moves by ``limit`` or more, significantly."""
    if ref.rows == 0 or cur.rows == 0:
        row.status = "no rows in " + ("reference" if ref.rows == 0 else "current")
        row.counted = False
        return False
    before, after = ref.missing / ref.rows, cur.missing / cur.rows
    row.null_rate_change = after - before
    p = two_proportion_pvalue(ref.missing, ref.rows, cur.missing, cur.rows)
    if abs(row.null_rate_change) >= limit and p <= _MISSING_ALPHA:
        row.missing_drift = True
        row.details.append(f"missing {percent(before)} -> {percent(after)}")
    return True


def _values(row: Row, ref, cur) -> bool:
    if ref.count == 0 and cur.count == 0:
        row.status, row.counted = "empty", row.missing_drift
    elif ref.count == 0:
        row.status = "no values in reference"
    elif cur.count == 0:
        row.status = "no values in current"
    else:
        return True
    return False


def choose(method: str, ref, cur=None) -> tuple[str, str]:
    """The method for column ``ref`` (compared with ``cur``) and why: Evidently's defaults
    table, decided on the smaller side: a distance (wasserstein, js) only when both sides
    have more than 1,000 values, a test (ks, chi2) otherwise. A distance on a few dozen rows
    reaches its threshold by chance alone; a test's p-value accounts for the sample size."""
    n_ref = ref.count
    n_cur = n_ref if cur is None else cur.count
    n = min(n_ref, n_cur)
    side = "reference" if n_ref <= n_cur else "current"
    size = f"<= {SMALL:,} {side} values" if n <= SMALL else f"> {SMALL:,} values each side"
    if ref.kind == CATEGORICAL:
        if method in _NUMERIC_ONLY:
            return _NUMERIC_ONLY[method], f"{method} needs numbers: {_NUMERIC_ONLY[method]} on the categories"
        if method != "auto":
            return method, "given"
        return ("chi2" if n <= SMALL else "js"), f"auto: categorical, {size}"
    if method != "auto":
        return method, "given"
    few = _distinct(ref) <= FEW_VALUES
    values = f"{'<=' if few else '>'} {FEW_VALUES} distinct"
    if n <= SMALL:
        return ("chi2" if few else "ks"), f"auto: numeric, {size}, {values}"
    return ("js" if few else "wasserstein"), f"auto: numeric, {size}, {values}"


def _score(row: Row, ref, cur, method: str, thresholds: dict[str, float]) -> None:
    row.method, row.reason = choose(method, ref, cur)
    row.n_ref, row.n_cur = int(ref.count), int(cur.count)
    row.threshold = thresholds[row.method]
    numeric = ref.kind == NUMERIC
    row.buckets = b = _buckets(ref, cur) if numeric else _category_buckets(ref, cur)
    row.unseen_share = b.unseen_share
    if row.method == "wasserstein":
        row.score = _normed_w1(row, ref, cur)
    elif row.method == "ks":
        row.score, row.p_value = _methods.ks(ref.dist, cur.dist)
    elif row.method == "chi2":
        row.score, row.p_value = _methods.chi2(b)
    else:
        row.score = getattr(_methods, row.method)(b)
    if row.method in P_VALUE_METHODS:
        row.method_drift = row.p_value <= row.threshold
    else:
        row.method_drift = row.score >= row.threshold
    _describe_new(row, b, numeric)
    if row.method == "ks" and "quantiles" in (ref.dist.kind, cur.dist.kind):
        row.details.append(f"D from sketches, within {2 * _dist.RANK_GAP:.4f}")
    _small_sample(row, b)


def _small_sample(row: Row, b: _methods.Buckets) -> None:
    """A caveat when the sample is too small for the score to mean what it says: a distance
    whose chance level (the average score of two samples of one distribution at these
    sizes) reaches half its threshold, so unshifted features get flagged; a test on fewer
    than ``MIN_ROWS`` values, which sees only large shifts."""
    n, m = row.n_ref, row.n_cur
    if row.method in P_VALUE_METHODS:
        if min(n, m) < MIN_ROWS:
            row.details.append("few values: only large shifts show")
            row.caveat = "power"
        return
    row.chance = _methods.chance_level(row.method, b, n, m)
    if row.chance >= row.threshold / 2:
        row.details.append(f"small sample: ~{row.chance:.2g} by chance")
        row.caveat = "chance"


def _buckets(ref, cur) -> _methods.Buckets:
    return _methods.numeric_buckets(ref.dist, cur.dist, _distinct(ref))


def _category_buckets(ref, cur) -> _methods.Buckets:
    other = getattr(ref, "other", 0)
    return _methods.category_buckets(ref.counts, other, ref.counts.index if other == 0 else None,
                                     cur.counts, getattr(cur, "other", 0))


def _normed_w1(row: Row, ref, cur) -> float:
    w = _methods.wasserstein(ref.dist, cur.dist)
    n1, m1, s1 = _moments(ref)
    if s1 > 0:
        return w / s1
    n2, m2, s2 = _moments(cur)
    pooled = math.sqrt((n1 * s1 ** 2 + n2 * s2 ** 2 + (m2 - m1) ** 2 * n1 * n2 / (n1 + n2)) / (n1 + n2))
    row.details.append("constant reference: W1 normed by the pooled std" if pooled > 0 else "both constant, equal")
    return w / pooled if pooled > 0 else w


def _moments(col) -> tuple[int, float, float]:
    if getattr(col, "std", None) is not None and not callable(col.std):
        return col.count, col.mean, col.std
    x = col.dist.x
    return len(x), float(x.mean()), float(x.std())


def _distinct(col) -> int:
    known = getattr(col, "distinct", None)
    return known if isinstance(known, int) else _dist.distinct(col.dist.x)


def _describe_new(row: Row, b: _methods.Buckets, numeric: bool) -> None:
    share = row.unseen_share
    if not share > 0:
        return
    if numeric and b.edges is not None:
        row.details.append(f"{percent(share)} of current outside the reference range")
    elif numeric:
        row.details.append(f"{percent(share)} of current at values the reference never had")
    else:
        names = ", ".join(repr(n) for n in b.new_names[:3]) + (", ..." if len(b.new_names) > 3 else "")
        row.details.append(f"new categories {names} ({percent(share)})" if names else
                           f"new categories ({percent(share)})")
    if not np.isfinite(row.score):
        row.details.append("score not finite")


def percent(share: float) -> str:
    """A share as a percentage that never shows a non-zero share as 0.0%."""
    return f"{share:.1%}" if share == 0 or abs(share) >= 0.001 else f"{share * 100:.2g}%"
