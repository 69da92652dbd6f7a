"""``mm.drift(reference, current)``: per-feature drift scores and a dataset verdict."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from .. import naming
from ..errors import MlopsError, did_you_mean
from . import _sources
from ._evaluate import DEFAULT_THRESHOLDS, METHODS, P_VALUE_METHODS, Row, evaluate
from .profile import ColumnProfile, Profile, load_columns
from .report import DriftReport
from .verdict import DEFAULT_SHARE

_ALIASES = {"jensenshannon": "js", "jensen_shannon": "js", "kl_div": "kl", "chisquare": "chi2",
            "chi-square": "chi2", "emd": "wasserstein", "kolmogorov_smirnov": "ks"}
_CORRECTIONS = {"bonferroni": "bonferroni", "bh": "bh", "fdr": "bh", "benjamini-hochberg": "bh"}
_PARALLEL_ROWS = 50_000


class DriftOptionError(MlopsError, ValueError):
    """A drift option that does not exist or does not fit."""


def drift(reference, current, *, method: str = "auto", threshold: float | Mapping[str, float] | None = None,
          features: Sequence[str] | str | None = None, share: float = DEFAULT_SHARE,
          correction: str | None = None) -> DriftReport:
    """Compare ``current`` data with ``reference`` data, feature by feature.

    Parameters
    ----------
    reference, current
        DataFrames (or Series, numpy arrays, Arrow tables), Profiles from ``mm.profile``,
        ``"runs:/<run_id>/<data name>"`` (the profile a tracked run logged), or paths to
        CSV / Parquet files or profile JSON. Two data sets are compared on every row,
        exactly; when either side is a profile, both are compared through profiles.
    method
        ``auto`` (default) picks per column, as Evidently's defaults do but decided on the
        smaller side: with at most 1,000 values on either side, ``ks`` for numbers with more
        than 5 distinct (reference) values, else ``chi2``; with more than 1,000 on both,
        ``wasserstein`` for numbers with more than 5 distinct values, else ``js``. A
        distance on a small sample reaches its threshold by chance alone (PSI on 54 rows
        over 10 buckets averages 0.19 with no shift at all); a test's p-value accounts for
        the size. Or one of:

        - ``psi``: population stability index over the buckets (smoothed);
        - ``kl``: D_KL(reference || current) over the buckets, in nats (smoothed: 0.5 is
          added to every bucket either side uses, so scores stay finite);
        - ``js``: Jensen-Shannon *distance* over the buckets, base 2 (0 same, 1 disjoint),
          as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``; Evidently's 0.1 in
          its natural-log scale is 0.12 here;
        - ``wasserstein``: W1 divided by the reference's (population) std, as Evidently;
          a constant reference is normed by the pooled std;
        - ``ks``: the two-sample Kolmogorov-Smirnov statistic and p-value, as
          ``scipy.stats.ks_2samp``;
        - ``chi2``: ``scipy.stats.chi2_contingency`` on the 2 x buckets table.

        ``ks`` and ``wasserstein`` on a categorical column fall back to ``chi2`` and ``js``.
    threshold
        A number for whichever method runs, or ``{method: value}``; key ``missing`` sets
        the missing-rate signal. Defaults: 0.1 for psi, kl, js and wasserstein (drift when
        score >= it); 0.05 for ks and chi2 (drift when p <= it); missing 0.05.
    features
        Column names (a list or "a,b"); default every column of either side.
    share
        The data set drifts when at least this share of compared features drift (default
        ``naming.DRIFT_SHARE``, 0.5: the same rule as ``DriftWidget``, ``%drift`` and the CLI).
    correction
        ``"bonferroni"`` or ``"bh"`` (Benjamini-Hochberg) across the p-value methods.

    Buckets come from the reference alone: reference quantiles (at most 20 buckets, one
    per value for at most 20 distinct values) plus a bucket below its min and one above
    its max; for categories, its top 100, ``(other)`` and ``(unseen)``. Values out of range
    and new categories therefore count as drift with finite scores. A change in the
    missing rate (NaN, None, +-inf) of 0.05 or more that a two-proportion z-test finds
    significant flags the feature too. Empty columns stay in the report, marked.

    Small samples: a distance whose chance level at these sizes (the average score of two
    samples of one distribution) reaches half its threshold, or a test on fewer than 100
    values, gets a note in its row and a caveat line under the verdict (``report.caveats``).

    When ``reference`` is ``runs:/<run_id>/...`` and that run logged feature importances
    (``importance.<feature>`` metrics, ``mm.log_importance``), the table lists the features
    most important first (``report.importance``), so the drift that matters comes first.

    From profiles, scores come from the sketches: KS D is within 2/256 of the raw value
    (typically 2e-4), W1/std and JS typically within 1e-3 (heavy tails: 1e-2), PSI and KL
    within a few percent. p-values from sketches at large n are indicative only: there a
    tiny error in D moves them a lot.
    """
    options = _options(method, threshold, share, correction)
    ref_given, cur_given = reference, current
    reference, current = _sources.resolve(reference, current), _sources.resolve(current, reference)
    exact = not isinstance(reference, Profile) and not isinstance(current, Profile)
    names = _feature_names(reference, current, features)
    if exact:
        rows = _compare_data(reference, current, names, options)
    else:
        rows = _compare_profiles(_as_profile(reference, names), _as_profile(current, names), names, options)
    _correct(rows, correction and _CORRECTIONS[correction.lower()])
    report = DriftReport(rows, share=share, correction=correction and _CORRECTIONS[correction.lower()],
                         reference=_sources.describe(reference, ref_given),
                         current=_sources.describe(current, cur_given), exact=exact,
                         importance=run_importance(ref_given, names))
    report.inputs = dict(reference=ref_given, current=cur_given, method=method, threshold=threshold,
                         features=features, share=share, correction=correction)
    return report


def run_importance(given, names: Sequence[str]) -> dict[str, float]:
    """``{feature: importance}`` from the ``importance.<feature>`` metrics of the run a
    ``runs:/<run_id>/...`` reference names; empty for other inputs or a run without them."""
    if not (isinstance(given, str) and given.startswith(_sources.RUNS_SCHEME)):
        return {}
    run_id = given[len(_sources.RUNS_SCHEME):].strip("/").partition("/")[0]
    try:
        metrics = _sources.run_metrics(run_id)
    except MlopsError:  # the profile was readable; importances are a nicety
        return {}
    found = {name: metrics.get(naming.metric_importance(name)) for name in names}
    return {name: float(v) for name, v in found.items() if v is not None and math.isfinite(v)}


def method_name(method: str) -> str:
    """The canonical name of a method or of an alias Evidently users know (``jensenshannon``)."""
    return _ALIASES.get(str(method).lower(), str(method).lower())


def _options(method: str, threshold, share: float, correction: str | None) -> tuple[str, dict[str, float]]:
    method = method_name(method)
    if method != "auto" and method not in METHODS:
        raise DriftOptionError(f"unknown drift method {method!r}.{did_you_mean(method, ('auto', *METHODS))}"
                               f" Methods: auto, {', '.join(METHODS)}")
    thresholds = dict(DEFAULT_THRESHOLDS)
    if isinstance(threshold, Mapping):
        for key, value in threshold.items():
            key = method_name(key)
            if key not in thresholds:
                raise DriftOptionError(f"no threshold {key!r}.{did_you_mean(key, thresholds)}"
                                       f" Keys: {', '.join(thresholds)}")
            thresholds[key] = _number(value, f"threshold {key!r}")
    elif threshold is not None:
        value = _number(threshold, "threshold")
        thresholds |= {m: value for m in METHODS}
    if not (isinstance(share, (int, float)) and 0 < share <= 1):
        raise DriftOptionError(f"share must be in (0, 1], got {share!r}")
    if correction is not None and str(correction).lower() not in _CORRECTIONS:
        raise DriftOptionError(f"unknown correction {correction!r}.{did_you_mean(str(correction), _CORRECTIONS)}"
                               " Corrections: bonferroni, bh")
    return method, thresholds


def _number(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DriftOptionError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise DriftOptionError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def _names_of(obj) -> list[str]:
    if isinstance(obj, Profile):
        return list(obj.columns)
    from ._columns import columns

    return [name for name, _ in columns(obj)[0]]


def _feature_names(reference, current, features) -> list[str]:
    ref, cur = _names_of(reference), _names_of(current)
    if ref and cur and not set(ref) & set(cur):
        raise DriftOptionError(f"no column in common: reference has {_listed(ref)}, current has {_listed(cur)}; "
                               "compare two samples of the same table")
    available = ref + [n for n in cur if n not in ref]
    for side in (reference, current):  # a capped profile covers its first columns only
        if isinstance(side, Profile) and side.capped:
            available = [n for n in available if n in side.columns]
    if features is None:
        return available
    wanted = [f.strip() for f in features.split(",")] if isinstance(features, str) else [str(f) for f in features]
    for name in wanted:
        if name not in available:
            raise DriftOptionError(f"no feature {name!r} in either data set.{did_you_mean(name, available)}")
    return list(dict.fromkeys(wanted))


def _listed(names: list[str], most: int = 4) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(map(str, names[:most])) + more


def _as_profile(obj, names: list[str]) -> Profile:
    if isinstance(obj, Profile):
        return obj
    cols, rows = load_columns(obj, names)
    return Profile(rows, {n: ColumnProfile.from_raw(c) for n, c in cols.items()})


def _compare_profiles(ref: Profile, cur: Profile, names, options) -> list[Row]:
    method, thresholds = options
    return [evaluate(n, ref.columns.get(n), cur.columns.get(n), method, thresholds) for n in names]


def _compare_data(reference, current, names: list[str], options) -> list[Row]:
    """Raw columns, loaded and compared one feature at a time (in parallel when large)."""
    from ._columns import columns

    method, thresholds = options
    ref_loaders, ref_rows = columns(reference)
    cur_loaders, cur_rows = columns(current)
    ref_by, cur_by = dict(ref_loaders), dict(cur_loaders)

    def one(name: str) -> Row:
        ref = ref_by[name]() if name in ref_by else None
        cur = cur_by[name]() if name in cur_by else None
        return evaluate(name, ref, cur, method, thresholds)

    workers = min(os.cpu_count() or 1, len(names))
    if workers <= 1 or max(ref_rows, cur_rows) < _PARALLEL_ROWS:
        return [one(n) for n in names]
    with ThreadPoolExecutor(workers) as pool:  # sorts and searches release the GIL
        return list(pool.map(one, names))


def _correct(rows: list[Row], correction: str | None) -> None:
    """Adjust the p-values of the p-value methods for testing many features at once."""
    if correction is None:
        return
    tested = [r for r in rows if r.method in P_VALUE_METHODS and math.isfinite(r.p_value)]
    m = len(tested)
    if correction == "bonferroni":
        adjusted = [min(1.0, r.p_value * m) for r in tested]
    else:  # Benjamini-Hochberg step-up
        order = sorted(range(m), key=lambda i: tested[i].p_value)
        adjusted, running = [1.0] * m, 1.0
        for rank in range(m, 0, -1):
            i = order[rank - 1]
            running = min(running, tested[i].p_value * m / rank)
            adjusted[i] = min(running, 1.0)
    for row, p in zip(tested, adjusted):
        row.p_adjusted = p
        row.method_drift = p <= row.threshold
