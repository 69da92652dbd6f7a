"""Drift speed: mm.drift on frames and on profiles next to a per-column SciPy loop.

Run: .venv/bin/python bench/drift.py [--rows 1000000] [--features 20] [--repeat 3] [--evidently]

On the same data in one process (reference and current, ``rows`` x ``features`` float64,
a third of the features shifted): ``mm.drift`` on the two DataFrames (auto: normed
Wasserstein, every row, exact), then once per method (ks, wasserstein, js); ``mm.profile``
of each frame and ``mm.drift`` between the two profiles; and the anchor, a loop over the
columns calling ``scipy.stats.ks_2samp``, ``scipy.stats.wasserstein_distance`` and
``scipy.spatial.distance.jensenshannon`` over shared bins (20 reference quantile bins).
``--evidently`` adds Evidently's DataDriftPreset when it is installed (slow: minutes).
Ratios are the anchor's time over ours. Never asserted in tests: machines are noisy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pandas as pd

from _timing import best_of


def frames(rows: int, features: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    ref = pd.DataFrame(rng.normal(size=(rows, features)), columns=names)
    cur = pd.DataFrame(rng.normal(size=(rows, features)), columns=names)
    for name in names[: features // 3]:
        cur[name] = cur[name] * 1.1 + 0.2
    return ref, cur


def scipy_loop(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[float, float, float, float]]:
    """Per column: KS statistic and p-value, W1 / reference std, JS distance over shared bins."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    out = {}
    for name in ref.columns:
        a, b = ref[name].to_numpy(), cur[name].to_numpy()
        ks = stats.ks_2samp(a, b)
        w1 = stats.wasserstein_distance(a, b) / np.std(a)
        edges = np.quantile(a, np.linspace(0, 1, 21))
        edges[0], edges[-1] = -np.inf, np.inf
        js = jensenshannon(np.histogram(a, edges)[0], np.histogram(b, edges)[0], base=2)
        out[name] = (ks.statistic, ks.pvalue, w1, js)
    return out


def evidently(ref: pd.DataFrame, cur: pd.DataFrame):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    return Report([DataDriftPreset()]).run(cur, ref)


def peak_mb(fn: Callable[[], object]) -> float:
    """Peak traced allocation of one call, in MB (numpy and pandas buffers included)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently", action="store_true", help="also time Evidently's DataDriftPreset")
    args = parser.parse_args()

    import mlops_magics as mm

    ref, cur = frames(args.rows, args.features)
    print(f"reference and current: {args.rows:,} rows x {args.features} float64 features "
          f"({args.features // 3} shifted), best of {args.repeat}\n")

    mm.drift(ref, cur)  # warm up: first-touch page faults of the sort buffers
    t_scipy, anchor = best_of(lambda: scipy_loop(ref, cur), 1)
    t_frames, report = best_of(lambda: mm.drift(ref, cur), args.repeat)
    per_method = {m: best_of(lambda m=m: mm.drift(ref, cur, method=m), args.repeat) for m in ("ks", "wasserstein", "js")}
    t_profile, profiles = best_of(lambda: (mm.profile(ref), mm.profile(cur)), args.repeat)
    t_profiles, from_profiles = best_of(lambda: mm.drift(*profiles), max(args.repeat, 10))
    t_json, _ = best_of(lambda: [type(p).from_json(p.to_json()) for p in profiles], args.repeat)

    rows = [
        ("scipy loop: ks_2samp + wasserstein_distance + jensenshannon", t_scipy, t_scipy),
        ("mm.drift(frames), auto (normed wasserstein)", t_frames, t_scipy),
        *[(f"mm.drift(frames, method={m!r})", t, t_scipy) for m, (t, _) in per_method.items()],
        ("  the three methods above together", sum(t for t, _ in per_method.values()), t_scipy),
        ("mm.profile(reference) + mm.profile(current)", t_profile, None),
        ("mm.drift(profile, profile)", t_profiles, t_scipy),
        ("profiles to JSON and back", t_json, None),
    ]
    t_ev = None
    if args.evidently:
        try:
            t_ev, _ = best_of(lambda: evidently(ref, cur), 1)
            rows.append(("Evidently DataDriftPreset (report.run)", t_ev, None))
        except ImportError:
            print("Evidently is not installed: pip install evidently\n")
    width = max(len(r[0]) for r in rows)
    for label, seconds, anchor_time in rows:
        ratio = f"{anchor_time / seconds:8.1f}x faster than the scipy loop" if anchor_time and label[:5] != "scipy" else ""
        print(f"{label:<{width}}  {seconds * 1000:10.1f} ms  {ratio}")
    if t_ev is not None:
        print(f"\nagainst Evidently: mm.drift(frames) {t_ev / t_frames:,.0f}x faster, "
              f"mm.drift(profiles) {t_ev / t_profiles:,.0f}x faster, the scipy loop {t_ev / t_scipy:,.1f}x")

    print(f"\npeak memory: mm.drift(frames) {peak_mb(lambda: mm.drift(ref, cur)):.0f} MB, "
          f"scipy loop {peak_mb(lambda: scipy_loop(ref, cur)):.0f} MB (inputs: {2 * ref.memory_usage().sum() / 1e6:.0f} MB)")
    profile_kb = len(profiles[0].to_json()) / 1000
    print(f"profile size: {profile_kb:.0f} kB for {args.features} columns ({profile_kb / args.features:.1f} kB a column)")

    ks_ours = per_method["ks"][1].table.set_index("feature")
    w1_ours = report.table.set_index("feature")["score"]
    w1_prof = from_profiles.table.set_index("feature")["score"]
    err_ks = max(abs(ks_ours.loc[n, "score"] - anchor[n][0]) for n in anchor)
    err_p = max(abs(ks_ours.loc[n, "p_value"] - anchor[n][1]) for n in anchor)
    err_w1 = max(abs(w1_ours[n] - anchor[n][2]) for n in anchor)
    err_w1_prof = max(abs(w1_prof[n] - anchor[n][2]) for n in anchor)
    print(f"agreement with scipy: KS D {err_ks:.1e}, KS p {err_p:.1e}, W1/std {err_w1:.1e} (frames), "
          f"W1/std {err_w1_prof:.1e} (profiles)")
    print(f"verdicts: frames '{report.verdict}'; profiles '{from_profiles.verdict}'")


if __name__ == "__main__":
    main()
