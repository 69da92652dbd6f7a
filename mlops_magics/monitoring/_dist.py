"""One numeric column's distribution in one of three forms, all with the same CDF interface.

- ``sample``: the sorted values themselves (raw data, or a profile of at most
  ``EXACT_LIMIT`` values). Exact.
- ``values``: distinct values with counts (a profile of a column with at most
  ``VALUES_LIMIT`` distinct values). Exact.
- ``quantiles``: the sketch: the values at a FIXED grid of ranks, ``RANKS`` (every
  1/256 plus 1e-6 ... 1e-3 from each end), inverse-CDF definition: knot k is the smallest
  value x with F(x) >= RANKS[k]. The grid is the same for every profile, so two sketches
  compare (and merge) without going back to the data; it is scale-free, unlike
  log-bucketed histograms, which lump a column like years or latitudes into one bucket.

Error of the sketch (documented in ``mm.profile``): the CDF at a knot is exact to within
1/n for continuous data; between knots it is interpolated linearly, off by at most the
rank gap, 1/256 (0.0039), and in practice by far less for smooth densities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

QUANTILES = 256
_TAIL = np.array([1e-6, 1e-5, 1e-4, 1e-3])
RANKS = np.unique(np.concatenate([np.arange(QUANTILES + 1) / QUANTILES, _TAIL, 1 - _TAIL]))
RANK_GAP = 1 / QUANTILES  # largest gap between grid ranks: the sketch's worst-case CDF error
GRID = f"q{QUANTILES}+tails6"  # names the grid in the JSON, so a future grid is recognised
EXACT_LIMIT = 1000
VALUES_LIMIT = 64


@dataclass(eq=False)
class Dist:
    """``kind`` is ``sample``, ``values`` or ``quantiles``; ``n`` counts the finite values."""

    kind: str
    n: int
    x: np.ndarray
    w: np.ndarray | None = None  # counts, for kind "values"
    _cache: dict = field(default_factory=dict, repr=False)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_sorted(cls, s: np.ndarray, *, summarise: bool = True) -> Dist:
        """From sorted finite values: exact when small or discrete, else the sketch."""
        n = len(s)
        if not summarise:
            return cls("sample", n, s)
        if n and distinct(s) <= VALUES_LIMIT:
            values, counts = value_counts(s)
            return cls("values", n, values, counts.astype(np.float64))
        if n <= EXACT_LIMIT:
            return cls("sample", n, np.array(s, dtype=np.float64))
        return cls("quantiles", n, s[knot_index(n)].astype(np.float64))

    # -- the CDF ----------------------------------------------------------------------
    def cdf(self, x: np.ndarray, side: str = "right") -> np.ndarray:
        """F(x) = P(X <= x) for side="right", P(X < x) for side="left"."""
        x = np.asarray(x, dtype=np.float64)
        if self.n == 0:
            return np.zeros(x.shape)
        if self.kind == "sample":
            return np.searchsorted(self.x, x, side=side) / self.n
        if self.kind == "values":
            cum = np.concatenate([[0.0], np.cumsum(self.w)])
            return cum[np.searchsorted(self.x, x, side=side)] / self.n
        return self._sketch_cdf(x, side)

    def _sketch_cdf(self, x: np.ndarray, side: str) -> np.ndarray:
        u, left, right = self._knots()
        j = np.searchsorted(u, x, side="right") - 1
        jc = np.clip(j, 0, len(u) - 1)
        exact = (j >= 0) & (u[jc] == x)
        nxt = np.minimum(jc + 1, len(u) - 1)
        span = u[nxt] - u[jc]
        frac = np.divide(x - u[jc], span, out=np.zeros(x.shape), where=span > 0)
        out = right[jc] + frac * (left[nxt] - right[jc])
        out = np.where(exact, left[jc] if side == "left" else right[jc], out)
        return np.where(j < 0, 0.0, np.where((j == len(u) - 1) & ~exact, 1.0, out))

    def _knots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct knot values with F just below (``left``) and at (``right``) each."""
        if "knots" not in self._cache:
            t, r = RANKS, knot_ranks(self.n)
            u, first, counts = np.unique(self.x, return_index=True, return_counts=True)
            last = first + counts - 1
            left, right = t[first].copy(), r[last].copy()
            left[0], right[-1] = 0.0, 1.0
            left[1:] = np.maximum(left[1:], right[:-1])  # keep F monotone when n is small
            self._cache["knots"] = (u, left, right)
        return self._cache["knots"]

    def support(self) -> np.ndarray:
        """The points where the CDF may jump or bend."""
        return self.x

    # -- the quantile function, as segments ---------------------------------------------
    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t, lo, hi)``: on rank interval (t[i], t[i+1]) the quantile function runs
        linearly from ``lo[i]`` to ``hi[i]`` (steps for exact forms)."""
        if self.kind == "sample":
            return np.arange(self.n + 1) / self.n, self.x, self.x
        if self.kind == "values":
            return np.concatenate([[0.0], np.cumsum(self.w)]) / self.n, self.x, self.x
        r = knot_ranks(self.n)
        return np.concatenate([[0.0], r]), np.concatenate([self.x[:1], self.x[:-1]]), self.x

    def quantile_knots(self, ranks: np.ndarray) -> np.ndarray:
        """Values at (about) ``ranks``: exact for exact forms, the nearest grid knot for sketches."""
        if self.kind == "quantiles":
            return self.x[np.abs(RANKS[None, :] - ranks[:, None]).argmin(axis=1)]
        if self.kind == "sample":
            return self.x[np.clip(np.ceil(ranks * self.n).astype(np.int64) - 1, 0, self.n - 1)]
        t, lo, _ = self.segments()
        idx = np.searchsorted(t, ranks, side="left") - 1
        return lo[np.clip(idx, 0, len(lo) - 1)]

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        if self.kind == "values":
            return {"values": _floats(self.x), "counts": [int(c) for c in self.w]}
        if self.kind == "sample":
            return {"sample": _floats(self.x)}
        return {"grid": GRID, "quantiles": _floats(self.x)}

    @classmethod
    def from_dict(cls, data: dict, n: int) -> Dist:
        if "values" in data:
            return cls("values", n, np.array(data["values"], float), np.array(data["counts"], float))
        if "sample" in data:
            return cls("sample", n, np.array(data["sample"], float))
        if data.get("grid") != GRID or len(data["quantiles"]) != len(RANKS):
            raise ValueError(f"unknown sketch grid {data.get('grid')!r} (this version reads {GRID})")
        return cls("quantiles", n, np.array(data["quantiles"], float))


def knot_index(n: int) -> np.ndarray:
    """Index into n sorted values of each grid knot (inverse-CDF quantiles)."""
    return np.clip(np.ceil(RANKS * n).astype(np.int64) - 1, 0, n - 1)


def knot_ranks(n: int) -> np.ndarray:
    """F at each knot (exact to 1/n when the knot value is not repeated)."""
    return np.maximum(np.ceil(RANKS * n), 1) / n


def distinct(s: np.ndarray) -> int:
    return int(np.count_nonzero(s[1:] != s[:-1])) + 1 if len(s) else 0


def value_counts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of sorted ``s`` and their counts."""
    last = np.flatnonzero(np.concatenate([s[1:] != s[:-1], [True]]))
    return s[last].astype(np.float64), np.diff(np.concatenate([[-1], last]))


def merge(a: Dist, b: Dist) -> Dist:
    """The distribution of both samples together: exact while the forms allow, else the
    sketch of the mixture CDF (each merge may add up to ``RANK_GAP`` of rank error)."""
    if a.n == 0 or b.n == 0:
        return b if a.n == 0 else a
    n = a.n + b.n
    if a.kind != "quantiles" and b.kind != "quantiles":
        xa, wa = _weighted(a)
        xb, wb = _weighted(b)
        values, inverse = np.unique(np.concatenate([xa, xb]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([wa, wb]))
        if len(values) <= VALUES_LIMIT:
            return Dist("values", n, values, counts)
        if n <= EXACT_LIMIT:
            return Dist("sample", n, np.repeat(values, counts.astype(np.int64)))
        at = np.searchsorted(np.cumsum(counts), np.maximum(np.ceil(RANKS * n), 1), side="left")
        return Dist("quantiles", n, values[np.minimum(at, len(values) - 1)])
    points = np.unique(np.concatenate([a.support(), b.support()]))
    cum = (a.n * a.cdf(points) + b.n * b.cdf(points)) / n
    knots = np.interp(RANKS, cum, points)
    knots[0], knots[-1] = points[0], points[-1]
    return Dist("quantiles", n, np.maximum.accumulate(knots))


def _weighted(d: Dist) -> tuple[np.ndarray, np.ndarray]:
    if d.kind == "values":
        return d.x, d.w
    return d.x, np.ones(d.n)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in a.tolist()]
