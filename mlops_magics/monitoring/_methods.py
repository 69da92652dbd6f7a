"""The drift scores, in numpy: on sorted raw values they match SciPy; on sketches they are
the same formulas over the sketch's CDF.

Buckets for psi, kl, js and chi2 come from the reference alone: for numbers, the
reference quantiles at i/B (B = Sturges' count, at most 20; one bucket per value when the
reference has at most 20 distinct values, each seen twice on average) between the
reference min and max, plus an explicit bucket below the min and one above the max; for
categories, the reference's top categories, ``(other)`` for its rarer ones and
``(unseen)`` for categories it never had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._dist import Dist
from ._pvalues import chi2_sf, ks_2samp_pvalue

MAX_BINS = 20
DISCRETE_LIMIT = 20
TOP = 100
PSEUDO_COUNT = 0.5  # added to each bucket for psi and kl (Jeffreys), so scores stay finite
BELOW, ABOVE, OTHER, UNSEEN = "(below min)", "(above max)", "(other)", "(unseen)"


@dataclass
class Buckets:
    """Bucket labels and the reference's and current's counts in them; ``new`` marks the
    buckets the reference cannot have (out of its range, or categories it never had)."""

    labels: list[str]
    ref: np.ndarray
    cur: np.ndarray
    new: np.ndarray
    edges: np.ndarray | None = None  # numeric range buckets: [min, e1, ..., max]
    new_names: list[str] = field(default_factory=list)  # categories the reference never had

    @property
    def unseen_share(self) -> float:
        total = self.cur.sum()
        return float(self.cur[self.new].sum() / total) if total > 0 else 0.0


# -- buckets ---------------------------------------------------------------------------------
def numeric_buckets(ref: Dist, cur: Dist, ref_distinct: int) -> Buckets:
    if ref_distinct <= DISCRETE_LIMIT and ref.n >= 2 * ref_distinct:  # values that repeat
        return _point_buckets(ref, cur)
    bins = min(MAX_BINS, int(math.ceil(math.log2(ref.n))) + 1)
    lo, hi = float(ref.x[0]), float(ref.x[-1])
    inner = np.unique(ref.quantile_knots(np.arange(1, bins) / bins))
    cuts = np.concatenate([[lo], inner[(inner > lo) & (inner < hi)], [hi]])
    counts = [_range_counts(d, cuts) for d in (ref, cur)]
    labels = [BELOW] + [f"[{_g(cuts[0])}, {_g(cuts[1])}]"] + \
        [f"({_g(a)}, {_g(b)}]" for a, b in zip(cuts[1:-1], cuts[2:])] + [ABOVE]
    new = np.zeros(len(labels), bool)
    new[[0, -1]] = True
    return Buckets(labels, counts[0], counts[1], new, cuts)


def _range_counts(d: Dist, cuts: np.ndarray) -> np.ndarray:
    """Counts below cuts[0], in [cuts[0], cuts[1]], (cuts[1], cuts[2]], ..., above cuts[-1]."""
    cum = np.concatenate([d.cdf(cuts[:1], "left"), d.cdf(cuts[1:], "right"), [1.0]])
    return np.diff(np.concatenate([[0.0], cum])) * d.n


def _point_buckets(ref: Dist, cur: Dist) -> Buckets:
    values = np.unique(ref.support())
    counts = []
    for d in (ref, cur):
        mass = (d.cdf(values, "right") - d.cdf(values, "left")) * d.n
        counts.append(np.concatenate([mass, [max(d.n - mass.sum(), 0.0)]]))
    labels = [_g(v) for v in values] + [UNSEEN]
    new = np.zeros(len(labels), bool)
    new[-1] = True
    return Buckets(labels, counts[0], counts[1], new)


def category_buckets(ref: pd.Series, ref_other: float, ref_all: pd.Index | None,
                     cur: pd.Series, cur_other: float) -> Buckets:
    """``ref_all``: every category the reference had, or None when its rarer ones are not
    known (a profile that lists only its top categories): a current category outside the
    reference's top then counts as ``(other)``, not ``(unseen)``. So does the current's own
    ``other`` (categories below its top 100)."""
    top = ref.iloc[:TOP]
    rest = float(ref.iloc[TOP:].sum()) + ref_other
    pos = top.index.get_indexer(cur.index) if len(cur) else np.array([], dtype=np.int64)
    counts = cur.to_numpy(dtype=np.float64)
    listed = pos >= 0
    unseen = ~listed & (False if ref_all is None else ~cur.index.isin(ref_all))
    cur_counts = np.concatenate([np.bincount(pos[listed], weights=counts[listed], minlength=len(top)),
                                 [counts[~listed & ~unseen].sum() + cur_other, counts[unseen].sum()]])
    ref_counts = np.concatenate([top.to_numpy(dtype=np.float64), [rest, 0.0]])
    new = np.zeros(len(ref_counts), bool)
    new[-1] = True
    return Buckets(list(map(str, top.index)) + [OTHER, UNSEEN], ref_counts, cur_counts, new,
                   new_names=list(cur.index[unseen][:5]))


# -- scores on bucket counts ----------------------------------------------------------------------
def _kept(b: Buckets) -> tuple[np.ndarray, np.ndarray]:
    keep = (b.ref > 0) | (b.cur > 0)
    return b.ref[keep], b.cur[keep]


def smoothed_shares(b: Buckets) -> tuple[np.ndarray, np.ndarray]:
    """Bucket shares with ``PSEUDO_COUNT`` added to each bucket used by either side."""
    p, q = _kept(b)
    return (p + PSEUDO_COUNT) / (p.sum() + PSEUDO_COUNT * len(p)), (q + PSEUDO_COUNT) / (q.sum() + PSEUDO_COUNT * len(q))


def psi(b: Buckets) -> float:
    p, q = smoothed_shares(b)
    return float(np.sum((p - q) * np.log(p / q)))


def kl(b: Buckets) -> float:
    """D_KL(reference || current) in nats."""
    p, q = smoothed_shares(b)
    return float(np.sum(p * np.log(p / q)))


def js(b: Buckets) -> float:
    """Jensen-Shannon distance, base 2 (0 = same, 1 = disjoint); no smoothing needed."""
    p, q = _kept(b)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(math.sqrt(max(np.sum(left + right) / 2 / math.log(2), 0.0)))


def chi2(b: Buckets) -> tuple[float, float]:
    """``(statistic, p)`` of chi2_contingency on the 2 x k table (Yates' correction at 1 dof)."""
    p, q = _kept(b)
    table = np.vstack([p, q])
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    dof = table.shape[1] - 1
    observed = table
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return stat, chi2_sf(stat, dof)


# -- what chance alone gives ----------------------------------------------------------------------
W1_NORMAL = math.sqrt(2 / math.pi) * 1.6147438534  # E[W1/std] * sqrt(nm/(n+m)) for normal data


def chance_level(method: str, b: Buckets, n: int, m: int) -> float:
    """The average score of two samples of ``n`` and ``m`` values drawn from one and the same
    distribution (large-sample approximations): with ``k`` buckets in use, PSI ~ chi2(k-1)
    * (1/n + 1/m), KL half of it, JS divergence chi2(k-1)/8 in nats (the distance is its
    square root, base 2); W1/std ~ sqrt(2/pi) * integral sqrt(F(1-F)) * sqrt(1/n + 1/m),
    the constant for normal data (1.29). 54 vs 400 rows over 10 buckets: PSI ~0.19, JS ~0.19."""
    if n <= 0 or m <= 0:
        return math.inf
    inv = 1.0 / n + 1.0 / m
    dof = max(int(np.count_nonzero((b.ref > 0) | (b.cur > 0))) - 1, 1)
    if method == "psi":
        return dof * inv
    if method == "kl":
        return dof * inv / 2
    if method == "js":
        return math.sqrt(dof * inv / (8 * math.log(2)))
    if method == "wasserstein":
        return W1_NORMAL * math.sqrt(inv)
    return 0.0


# -- scores on distributions ------------------------------------------------------------------------
def wasserstein(a: Dist, b: Dist) -> float:
    """W1 between the two distributions (SciPy's wasserstein_distance on raw values)."""
    if a.kind == "sample" and b.kind == "sample":
        return _w1_sorted(a.x, b.x)
    ta, la, ha = a.segments()
    tb, lb, hb = b.segments()
    grid = np.unique(np.concatenate([ta, tb]))
    lo, hi = grid[:-1], grid[1:]
    mid = (lo + hi) / 2
    da0, da1 = _at(ta, la, ha, mid, lo), _at(ta, la, ha, mid, hi)
    db0, db1 = _at(tb, lb, hb, mid, lo), _at(tb, lb, hb, mid, hi)
    d0, d1, width = da0 - db0, da1 - db1, hi - lo
    same_sign = d0 * d1 >= 0
    total = np.abs(d0) + np.abs(d1)
    area = np.where(same_sign, total / 2, np.divide(d0 ** 2 + d1 ** 2, 2 * total, out=np.zeros_like(total),
                                                    where=total > 0))
    return float(np.sum(area * width))


def _at(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, mid: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The segmented quantile function at ``at``, inside the segment holding ``mid``."""
    i = np.clip(np.searchsorted(t, mid, side="right") - 1, 0, len(lo) - 1)
    span = t[i + 1] - t[i]
    frac = np.divide(at - t[i], span, out=np.zeros_like(at), where=span > 0)
    return lo[i] + frac * (hi[i] - lo[i])


def _w1_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """W1 = integral over ranks of |Qa - Qb|; the rank breakpoints i/n and j/m merge by
    integer arithmetic, so no search over the values is needed."""
    n, m = len(a), len(b)
    if n == m:
        return float(np.mean(np.abs(a - b)))
    ea = np.arange(1, n + 1, dtype=np.int64) * m  # breakpoints, in units of 1/(n*m)
    jb = np.arange(1, m + 1, dtype=np.int64)
    eb = jb * n
    at_b = eb // m + (jb - 1)  # position of each b breakpoint in the merged order
    ends = np.empty(n + m, dtype=np.int64)
    is_b = np.zeros(n + m, dtype=bool)
    is_b[at_b] = True
    ends[at_b] = eb
    ends[~is_b] = ea
    width = np.diff(ends, prepend=0)
    ia = (ends + m - 1) // m - 1
    ib = (ends + n - 1) // n - 1
    return float(np.sum(np.abs(a[ia] - b[ib]) * width) / (n * m))


def ks(a: Dist, b: Dist) -> tuple[float, float]:
    """``(D, p)``: the two-sided KS statistic and SciPy's ks_2samp p-value (method auto)."""
    if a.kind == "sample" and b.kind == "sample":
        d = _ks_sorted(a.x, b.x)
    else:
        points = np.unique(np.concatenate([a.support(), b.support()]))
        d = max(float(np.max(np.abs(a.cdf(points, side) - b.cdf(points, side)))) for side in ("left", "right"))
    return ks_2samp_pvalue(d, a.n, b.n)


def _ks_sorted(a: np.ndarray, b: np.ndarray) -> float:
    n, m = len(a), len(b)
    pos = np.searchsorted(a, b, side="right")  # how many a <= b_j
    below = a[np.maximum(pos - 1, 0)]
    if not (np.any(a[1:] == a[:-1]) or np.any(b[1:] == b[:-1]) or np.any((pos > 0) & (below == b))):
        # no ties anywhere: just below and at each b_j, Fa = pos_j/n and Fb = j/m, then (j+1)/m
        j = np.arange(m, dtype=np.int64)
        gap = pos.astype(np.int64) * m - j * n
        return float(max(np.abs(gap).max(), np.abs(gap - n).max()) / (n * m))
    at_b = pos + np.arange(m)
    is_b = np.zeros(n + m, dtype=bool)
    is_b[at_b] = True
    values = np.empty(n + m)
    values[at_b] = b
    values[~is_b] = a
    cb = np.cumsum(is_b)
    ca = np.arange(1, n + m + 1) - cb
    last = np.append(values[1:] != values[:-1], True)  # F is evaluated after each tie group
    return float(np.max(np.abs(ca[last] / n - cb[last] / m)))


def _g(v: float) -> str:
    return f"{v:.4g}"
