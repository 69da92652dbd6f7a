"""mm.drift: scores against SciPy on raw data, profiles against raw scores, shifts found,
odd columns handled, the report, and .log() into MLflow (pure library but the last tests)."""

from __future__ import annotations

import html
import math
import zlib

import numpy as np
import pandas as pd
import pytest
from conftest import cell_runs, run
from scipy import stats
from scipy.spatial.distance import jensenshannon

import mlops_magics as mm
from mlops_magics import naming
from mlops_magics.errors import NoActiveRunError



@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's own id: what a test draws never depends on
    which tests ran before it, or in what order."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def score(report: mm.DriftReport, feature: str, column: str = "score") -> float:
    return report.table.set_index("feature").loc[feature, column]


def one(reference, current, **options) -> pd.Series:
    """The single row of a one-feature report."""
    report = mm.drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), **options)
    return report.table.iloc[0]


def documented_buckets(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numeric buckets drift documents, built independently: reference quantiles at i/B
    (B = min(20, ceil(log2 n) + 1)), closed on the right, plus below-min and above-max."""
    ref = np.sort(reference)
    bins = min(20, math.ceil(math.log2(len(ref))) + 1)
    inner = np.unique(np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf"))
    lo, hi = ref[0], ref[-1]
    edges = inner[(inner > lo) & (inner < hi)]

    def counts(x):
        inside = x[(x >= lo) & (x <= hi)]
        return np.concatenate([[np.sum(x < lo)], np.bincount(np.digitize(inside, edges, right=True),
                                                              minlength=len(edges) + 1), [np.sum(x > hi)]])

    p, q = counts(reference), counts(current)
    keep = (p > 0) | (q > 0)
    return p[keep].astype(float), q[keep].astype(float)


# -- agreement with SciPy on raw data -------------------------------------------------------
@pytest.mark.parametrize("n1, n2", [(40, 40), (300, 700), (999, 1200), (2000, 15000), (200_000, 150_000)])
def test_ks_matches_scipy(n1, n2, rng):
    a, b = rng.normal(0, 1, n1), rng.normal(0.1, 1.1, n2)
    expected = stats.ks_2samp(a, b)

    row = one(a, b, method="ks")

    assert row["score"] == pytest.approx(expected.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_ks_matches_scipy_with_ties(rng):
    a, b = rng.integers(0, 30, 3000).astype(float), rng.integers(0, 32, 2500).astype(float)
    expected = stats.ks_2samp(a, b)

    row = one(a, b, method="ks")

    assert (row["score"], row["p_value"]) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)


@pytest.mark.parametrize("n1, n2", [(5000, 5000), (3000, 7001), (2, 50)])
def test_wasserstein_is_scipys_normed_by_the_reference_std(n1, n2, rng):
    a, b = rng.lognormal(0, 1, n1), rng.lognormal(0.2, 1, n2)

    row = one(a, b, method="wasserstein")

    assert row["score"] == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-10)


def test_binned_scores_match_scipy_over_the_documented_buckets(rng):
    a = rng.normal(0, 1, 20_000)
    b = np.concatenate([rng.normal(0.3, 1.2, 19_000), rng.normal(6, 1, 1000)])  # some above the max
    p, q = documented_buckets(a, b)
    ps, qs = (p + 0.5) / (p.sum() + 0.5 * len(p)), (q + 0.5) / (q.sum() + 0.5 * len(q))

    assert one(a, b, method="js")["score"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert one(a, b, method="kl")["score"] == pytest.approx(stats.entropy(ps, qs), rel=1e-12)
    assert one(a, b, method="psi")["score"] == pytest.approx(np.sum((ps - qs) * np.log(ps / qs)), rel=1e-12)
    chi2 = stats.chi2_contingency(np.vstack([p, q]))
    row = one(a, b, method="chi2")
    assert (row["score"], row["p_value"]) == pytest.approx((chi2.statistic, chi2.pvalue), rel=1e-9)
    assert one(a, b, method="js")["unseen_share"] == pytest.approx(np.mean((b > a.max()) | (b < a.min())))


@pytest.mark.parametrize("categories", [["a", "b", "c", "d"], ["yes", "no"]])
def test_chi2_matches_chi2_contingency_on_raw_counts(categories, rng):
    a = rng.choice(categories, 800, p=np.full(len(categories), 1 / len(categories)))
    b = rng.choice(categories, 600, p=np.linspace(1, 2, len(categories)) / np.linspace(1, 2, len(categories)).sum())
    expected = stats.chi2_contingency(pd.crosstab(np.r_[["ref"] * 800, ["cur"] * 600], np.r_[a, b]))

    row = one(a, b)  # auto: categorical with <= 1,000 reference values

    assert row["method"] == "chi2" and row["reason"].startswith("auto: categorical")
    assert (row["score"], row["p_value"]) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)


def test_new_categories_share_one_unseen_bucket_with_finite_scores(rng):
    a = rng.choice(["a", "b", "c"], 5000)
    b = np.concatenate([rng.choice(["a", "b", "c"], 4700), ["new1"] * 200, ["new2"] * 100])
    table = pd.crosstab(np.r_[["r"] * 5000, ["c"] * 5000], np.where(np.isin(np.r_[a, b], ["a", "b", "c"]),
                                                                  np.r_[a, b], "unseen"))
    expected = stats.chi2_contingency(table)

    chi2 = one(a, b, method="chi2")
    js = one(a, b)

    assert chi2["score"] == pytest.approx(expected.statistic, rel=1e-9) and chi2["drifted"]
    assert js["method"] == "js" and math.isfinite(js["score"]) and js["drifted"]
    assert js["unseen_share"] == pytest.approx(0.06) and "new categories 'new1', 'new2' (6.0%)" in js["detail"]
    for method in ("psi", "kl", "js", "chi2"):
        assert math.isfinite(one(a, b, method=method)["score"])


# -- profiles against raw data -----------------------------------------------------------------
def test_profile_scores_are_within_the_documented_error_of_raw_scores(rng):
    n = 200_000
    ref = pd.DataFrame({"normal": rng.normal(0, 1, n), "offset": 1000 + rng.normal(0, 1, n),
                        "heavy": rng.pareto(2.5, n), "mixture": np.where(rng.random(n) < 0.3, -3.0, 2.0) + rng.normal(0, 0.5, n)})
    cur = ref.apply(lambda c: c * 1.05 + 0.1 * c.std()).sample(frac=0.7, random_state=1)
    pr, pc = mm.profile(ref), mm.profile(cur)

    for method, tolerance in (("ks", 2 / 256), ("wasserstein", 0.01), ("js", 0.002)):
        raw = mm.drift(ref, cur, method=method).table["score"]
        sketched = mm.drift(pr, pc, method=method).table["score"]
        assert np.abs(raw - sketched).max() <= tolerance, method
    for method in ("psi", "kl"):
        raw = mm.drift(ref, cur, method=method).table["score"]
        assert np.abs(mm.drift(pr, pc, method=method).table["score"] / raw - 1).max() <= 0.05, method
    mixed = mm.drift(ref, pc)  # a frame against a profile: the frame is profiled
    assert mixed.table["score"].tolist() == mm.drift(pr, pc).table["score"].tolist()


# -- known shifts at scale ---------------------------------------------------------------------
def test_known_shifts_are_found_and_unshifted_columns_are_not_at_1m_rows(rng):
    n = 1_000_000
    ref = pd.DataFrame({f"same{i}": rng.normal(0, 1, n) for i in range(4)})
    ref["mean"], ref["scale"], ref["cat"] = rng.normal(0, 1, n), rng.normal(0, 1, n), rng.choice(list("abc"), n)
    cur = pd.DataFrame({f"same{i}": rng.normal(0, 1, n) for i in range(4)})
    cur["mean"], cur["scale"] = rng.normal(0.25, 1, n), rng.normal(0, 1.5, n)
    cur["cat"] = rng.choice(list("abcd"), n, p=[0.3, 0.3, 0.3, 0.1])

    report = mm.drift(ref, cur)
    from_profiles = mm.drift(mm.profile(ref), mm.profile(cur))

    for r in (report, from_profiles):
        assert r.drifted_features == ["mean", "scale", "cat"]
        assert r.share == pytest.approx(3 / 7) and not r.drifted
        assert r.verdict == "3 of 7 features drifted (43%): dataset drift no"
    assert score(report, "mean") == pytest.approx(0.25, abs=0.01)  # W1/std of a 0.25 std shift
    assert score(report, "same0") < 0.01 and score(report, "cat", "method") == "js"


# -- odd columns ----------------------------------------------------------------------------------
def test_odd_columns_stay_in_the_report_marked(rng):
    n = 2000
    ref = pd.DataFrame({"ok": rng.normal(size=n), "all_nan": np.nan, "emptied": rng.normal(size=n),
                        "const": 3.0, "const_moved": 3.0, "typed": rng.normal(size=n), "gone": 1.0,
                        "holes": rng.normal(size=n)})
    cur = pd.DataFrame({"ok": rng.normal(size=n), "all_nan": np.nan, "emptied": np.nan, "const": 3.0,
                        "const_moved": 4.0, "typed": rng.choice(["a", "b"], n), "added": 1.0,
                        "holes": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n))})

    report = mm.drift(ref, cur)
    t = report.table.set_index("feature")

    assert list(t.index) == [*ref.columns, "added"]
    assert t.loc["all_nan", "status"] == "empty" and not t.loc["all_nan", "drifted"]
    assert t.loc["emptied", "status"] == "no values in current" and t.loc["emptied", "drifted"]
    assert t.loc["emptied", "null_rate_change"] == 1.0
    assert (t.loc["const", "method"], t.loc["const", "score"], t.loc["const", "drifted"]) == ("js", 0.0, False)
    assert t.loc["const_moved", "score"] == 1.0 and t.loc["const_moved", "drifted"]  # finite, maximal
    assert t.loc["typed", "status"] == "type changed: numeric -> categorical" and t.loc["typed", "drifted"]
    assert t.loc["gone", "status"] == "missing in current" and t.loc["gone", "drifted"]
    assert t.loc["added", "status"] == "new in current" and not t.loc["added", "drifted"]
    holes = t.loc["holes"]
    assert holes["method"] == "wasserstein" and holes["null_rate_change"] == pytest.approx(0.3, abs=0.03)
    assert holes["drifted"] and holes["score"] < 0.1 and "missing 0.0% -> " in holes["detail"]
    assert report.n_compared == 7 and report.n_skipped == 2  # all_nan and added are not compared
    assert report.verdict.endswith("; 2 not compared")


def test_small_missing_rate_wobbles_do_not_flag(rng):
    a = rng.normal(size=200)
    b = rng.permutation(a)  # the same values: only the missing rate differs
    a[:10], b[:20] = np.nan, np.nan  # 5% -> 10%: not significant at 200 rows

    row = one(a, b)

    assert row["null_rate_change"] == pytest.approx(0.05)
    assert "missing" not in row["detail"] and row["p_value"] > 0.5 and not row["drifted"]
    flagged = one(a, b, threshold={"missing": 0.01})  # the missing-rate signal alone, at a lower bar
    assert not flagged["drifted"]  # 5% vs 10% of 200 rows: p = 0.06, not significant either way


@pytest.mark.parametrize("reference, current", [
    ([1.0], [1.0]), ([1.0], [2.0]), ([5.0], np.random.default_rng(1).normal(size=50)),
    (np.random.default_rng(2).normal(size=50), [0.1]),
])
def test_single_rows_give_finite_scores(reference, current):
    for method in ("auto", "psi", "kl", "js", "wasserstein", "ks", "chi2"):
        row = one(np.asarray(reference), np.asarray(current), method=method)
        assert row["status"] == "ok" and math.isfinite(row["score"]), (method, row)


def test_a_zero_row_current_is_reported_not_raised():
    report = mm.drift(pd.DataFrame({"x": [1.0, 2.0]}), pd.DataFrame({"x": pd.Series([], dtype=float)}))

    assert report.table["status"].tolist() == ["no rows in current"]
    assert report.verdict == "0 of 0 features drifted (0%): dataset drift no; 1 not compared"


def test_a_constant_reference_is_normed_by_the_pooled_std(rng):
    row = one(np.full(5000, 2.0), rng.normal(2, 1, 5000), method="wasserstein")

    assert math.isfinite(row["score"]) and "pooled std" in row["detail"]


# -- choosing methods, thresholds, corrections --------------------------------------------------
def test_auto_follows_evidentlys_table_and_says_why(rng):
    small, big = 800, 5000
    ref = pd.DataFrame({"x": rng.normal(size=big), "few": rng.integers(0, 3, big), "s": rng.choice(list("ab"), big)})

    large = mm.drift(ref, ref).table.set_index("feature")
    little = mm.drift(ref.iloc[:small], ref).table.set_index("feature")

    assert large["method"].to_dict() == {"x": "wasserstein", "few": "js", "s": "js"}
    assert little["method"].to_dict() == {"x": "ks", "few": "chi2", "s": "chi2"}
    assert large.loc["x", "reason"] == "auto: numeric, > 1,000 values each side, > 5 distinct"
    assert little.loc["few", "reason"] == "auto: numeric, <= 1,000 reference values, <= 5 distinct"
    small_batch = mm.drift(ref, ref.iloc[:54]).table.set_index("feature")  # a big reference, 54 new rows
    assert small_batch["method"].to_dict() == {"x": "ks", "few": "chi2", "s": "chi2"}
    assert small_batch.loc["x", "reason"] == "auto: numeric, <= 1,000 current values, > 5 distinct"
    given = mm.drift(ref, ref, method="ks").table.set_index("feature")
    assert given.loc["x", "reason"] == "given"
    assert (given.loc["s", "method"], given.loc["s", "reason"]) == ("chi2", "ks needs numbers: chi2 on the categories")


def test_thresholds_per_method_and_for_missing(rng):
    a, b = rng.normal(0, 1, 5000), rng.normal(0.15, 1, 5000)

    assert one(a, b)["drifted"] and one(a, b)["threshold"] == 0.1
    assert not one(a, b, threshold=0.2)["drifted"]
    assert not one(a, b, threshold={"wasserstein": 0.2})["drifted"]
    assert one(a, b, threshold={"psi": 0.2})["threshold"] == 0.1
    holes = b.copy()
    holes[:150] = np.nan
    assert not one(a, holes, threshold={"wasserstein": 1})["drifted"]  # 3% missing: under 0.05
    assert one(a, holes, threshold={"wasserstein": 1, "missing": 0.01})["drifted"]


def test_corrections_adjust_p_values_across_features(rng):
    n = 300
    ref = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(20)})
    cur = pd.DataFrame({f"f{i}": rng.normal(0.22 if i < 3 else 0, 1, n) for i in range(20)})

    plain = mm.drift(ref, cur)
    bonferroni = mm.drift(ref, cur, correction="bonferroni")
    bh = mm.drift(ref, cur, correction="bh")

    p = plain.table["p_value"].to_numpy()
    np.testing.assert_allclose(bonferroni.table["p_adjusted"], np.minimum(p * 20, 1))
    order = np.argsort(p)
    expected_bh = np.minimum.accumulate((p[order] * 20 / np.arange(1, 21))[::-1])[::-1]
    np.testing.assert_allclose(bh.table["p_adjusted"].to_numpy()[order], np.minimum(expected_bh, 1))
    assert bonferroni.table["drifted"].sum() <= bh.table["drifted"].sum() <= plain.table["drifted"].sum()
    assert "p_adjusted" not in plain.table


@pytest.mark.parametrize("options, message", [
    ({"method": "kss"}, "unknown drift method 'kss'. Did you mean 'ks'?"),
    ({"threshold": {"pis": 0.2}}, "no threshold 'pis'. Did you mean 'psi'?"),
    ({"threshold": "high"}, "threshold must be a number, got 'high'"),
    ({"features": ["prise"]}, "no feature 'prise' in either data set. Did you mean 'price'?"),
    ({"correction": "bonferoni"}, "unknown correction 'bonferoni'. Did you mean 'bonferroni'?"),
    ({"share": 0}, "share must be in (0, 1], got 0"),
])
def test_bad_options_are_one_line_errors(options, message):
    df = pd.DataFrame({"price": [1.0, 2.0]})
    with pytest.raises(mm.MlopsError) as info:
        mm.drift(df, df, **options)
    assert str(info.value).startswith(message)
    assert info.value._render_traceback_() == [f"DriftOptionError: {info.value}"]


def test_features_selects_columns():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "c": ["x", "y"]})

    assert mm.drift(df, df, features="c, a").table["feature"].tolist() == ["c", "a"]


# -- the report -------------------------------------------------------------------------------------
def test_report_table_display_and_histogram(rng):
    ref = pd.DataFrame({"x": rng.normal(size=3000), "s": rng.choice(list("ab"), 3000)})
    cur = pd.DataFrame({"x": rng.normal(1, 1, 3000), "s": rng.choice(list("ab"), 3000)})

    report = mm.drift(ref, cur)

    assert list(report.table.columns) == ["feature", "method", "score", "threshold", "drifted", "p_value",
                                          "null_rate_change", "unseen_share", "status", "reason", "detail"]
    assert report.table["drifted"].dtype == bool
    text = repr(report).splitlines()
    assert text[0] == "1 of 2 features drifted (50%): dataset drift yes"
    assert text[1].split()[:4] == ["feature", "method", "score", "threshold"]
    assert any(line.strip().startswith("wasserstein: auto: numeric") for line in text)
    html = report._repr_html_()
    assert "1 of 2 features drifted (50%): dataset drift yes" in html and "<table>" in html
    hist = report.histogram("s")
    assert sorted(hist["bucket"][:2]) == ["a", "b"] and hist["bucket"][2:].tolist() == ["(other)", "(unseen)"]
    assert hist["reference"].sum() == pytest.approx(1) and hist["new"].tolist() == [False, False, False, True]
    with pytest.raises(mm.MlopsError, match="Did you mean 'x'"):
        report.histogram("xx")
    edges = report.edges("x")
    assert len(edges) == len(report.histogram("x")) - 1 and edges[0] == ref["x"].min()
    assert report.edges("s") is None


def small_split(rng, n_ref: int = 400, n_cur: int = 54, features: int = 13):
    """A reference and a small current batch of ``features`` numeric columns, only ``f0`` shifted."""
    ref = pd.DataFrame({f"f{i}": rng.normal(size=n_ref) for i in range(features)})
    cur = pd.DataFrame({f"f{i}": rng.normal(1.5 if i == 0 else 0, 1, n_cur) for i in range(features)})
    return ref, cur


def test_small_samples_get_a_caveat_and_auto_uses_a_test(rng):
    ref, cur = small_split(rng)

    psi = mm.drift(ref, cur, method="psi")  # what the demo's 54-row split did
    auto = mm.drift(ref, cur)

    t = psi.table.set_index("feature")
    assert t.loc["f0", "drifted"]
    assert (t["detail"].str.contains("small sample: ~0.")).all()  # every row says it
    [caveat] = psi.caveats
    assert caveat.startswith("psi on 400 reference vs 54 current values (13 features): scores near ")
    assert "arise by chance alone (threshold 0.1); method='auto' uses a test" in caveat
    level = float(caveat.split("scores near ")[1].split()[0].split("-")[-1])
    assert 0.12 < level < 0.3  # (k - 1) * (1/400 + 1/54) with 8 to 14 buckets in use
    assert repr(psi).splitlines()[1] == f"caveat: {caveat}" and html.escape(f"caveat: {caveat}") in psi._repr_html_()
    assert '"caveats": [' in psi.to_json()

    assert set(auto.table["method"]) == {"ks"}  # the 54-row side decides
    assert auto.drifted_features[0] == "f0" and auto.n_drifted <= 3
    assert auto.caveats == ["ks on 400 reference vs 54 current values (13 features): under 100 values "
                            "a test sees only large shifts; a 'no' is weak evidence"]


def test_no_caveat_at_sizes_where_scores_mean_what_they_say(rng):
    ref, cur = small_split(rng, n_ref=5000, n_cur=5000, features=3)

    for method in ("auto", "psi", "kl", "js", "wasserstein", "ks", "chi2"):
        report = mm.drift(ref, cur, method=method)
        assert report.caveats == [] and "small sample" not in " ".join(report.table["detail"]), method
        assert "caveat" not in repr(report)


def test_chance_levels_match_what_unshifted_samples_score(rng):
    """The caveat's numbers are the real average scores of same-distribution samples."""
    for method in ("psi", "js", "wasserstein"):
        scores, levels = [], []
        for _ in range(60):
            row = mm.drift(pd.DataFrame({"x": rng.normal(size=300)}), pd.DataFrame({"x": rng.normal(size=80)}),
                           method=method).table.iloc[0]
            scores.append(row["score"])
            levels.append(float(row["detail"].split("small sample: ~")[1].split()[0]))
        assert np.mean(scores) == pytest.approx(np.mean(levels), rel=0.25), method


def test_one_verdict_rule_for_report_cli_and_magic():
    from mlops_magics.cli.monitor import drift_command
    from mlops_magics.monitoring.verdict import DEFAULT_SHARE, dataset_drifted

    assert DEFAULT_SHARE == naming.DRIFT_SHARE == 0.5
    [share] = [p for p in drift_command.params if p.name == "share"]
    assert share.default == naming.DRIFT_SHARE
    assert dataset_drifted(2, 4) and not dataset_drifted(1, 4) and not dataset_drifted(0, 0)
    ref = pd.DataFrame({"a": np.arange(2000.0), "b": np.arange(2000.0), "c": np.arange(2000.0),
                        "d": np.arange(2000.0)})
    cur = ref.assign(a=ref["a"] + 500)  # 1 of 4 drifted

    default = mm.drift(ref, cur)
    quarter = mm.drift(ref, cur, share=0.25)

    assert default.verdict == "1 of 4 features drifted (25%): dataset drift no"
    assert quarter.verdict == "1 of 4 features drifted (25%): dataset drift yes (rule: at least 25% of features)"
    assert quarter.drifted and not default.drifted
    assert quarter.inputs["share"] == 0.25 and quarter.inputs["reference"] is ref


def test_log_outside_a_run_is_a_one_line_error():
    report = mm.drift(pd.DataFrame({"x": [1.0, 2.0]}), pd.DataFrame({"x": [1.0, 2.0]}))

    with pytest.raises(NoActiveRunError, match="call report.log\\(\\) inside a %%track cell") as info:
        report.log()
    assert len(info.value._render_traceback_()) == 1


def test_log_in_a_tracked_cell_records_scores_and_the_alert(ip, client):
    cell = """%%track
import numpy as np, pandas as pd
import mlops_magics as mm
rng = np.random.default_rng(0)
ref = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
cur = pd.DataFrame({"x": rng.normal(1, 1, size=5000), "y": rng.normal(size=5000)})
mm.drift(ref, cur, method="ks").log()
"""
    assert run(ip, cell).success
    run(ip, "%track flush")

    [cell_run] = cell_runs(client)
    metrics, tags = cell_run.data.metrics, cell_run.data.tags
    assert metrics["drift.share"] == 0.5
    assert metrics["drift.x.ks"] > 0.3 and metrics["drift.x.ks.p_value"] < 1e-10
    assert "drift.y.ks" in metrics
    assert tags[naming.ALERT] == naming.ALERT_DRIFT
    assert tags[naming.ALERT_REASON] == "1 of 2 features drifted (50%): dataset drift yes: x"
    logged = client.download_artifacts(cell_run.info.run_id, naming.ARTIFACT_DRIFT)
    assert '"verdict": "1 of 2 features drifted (50%): dataset drift yes"' in open(logged).read()


def test_no_alert_tag_without_dataset_drift(ip, client):
    cell = """%%track
import numpy as np, pandas as pd
import mlops_magics as mm
df = pd.DataFrame({"x": np.arange(5000.0)})
mm.drift(df, df).log()
"""
    assert run(ip, cell).success
    run(ip, "%track flush")

    [cell_run] = cell_runs(client)
    assert cell_run.data.metrics["drift.share"] == 0 and cell_run.data.metrics["drift.x.wasserstein"] == 0
    assert naming.ALERT not in cell_run.data.tags


# -- runs:/ URIs ---------------------------------------------------------------------------------
@pytest.fixture
def logged_profile(client, rng):
    """A run holding the profile of a reference frame, as %%track logs it."""
    ref = pd.DataFrame({"x": rng.normal(size=4000), "s": rng.choice(list("abc"), 4000)})
    exp = client.get_experiment_by_name("Default")
    run_id = client.create_run(exp.experiment_id).info.run_id
    client.log_text(run_id, mm.profile(ref).to_json(), naming.artifact_profile("train"))
    return run_id, ref


def test_runs_uri_reads_the_logged_profile(logged_profile):
    run_id, ref = logged_profile
    cur = ref.assign(x=ref["x"] + 1)

    report = mm.drift(f"runs:/{run_id}/train", cur)

    assert report.drifted_features == ["x"] and not report.exact
    assert report.reference == f"runs:/{run_id}/train"
    assert score(report, "x") == pytest.approx(mm.drift(ref, cur).table["score"][0], abs=0.01)
    same = mm.drift(f"runs:/{run_id}/train", f"runs:/{run_id}/mlops/profiles/train.json")
    assert same.share == 0


def test_runs_uri_orders_features_by_the_reference_runs_importance(client, rng):
    ref = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000), "c": rng.normal(size=3000),
                        "d": rng.normal(size=3000)})
    exp = client.get_experiment_by_name("Default")
    plain = client.create_run(exp.experiment_id).info.run_id
    ranked = client.create_run(exp.experiment_id).info.run_id
    for run_id in (plain, ranked):
        client.log_text(run_id, mm.profile(ref).to_json(), naming.artifact_profile("train"))
    for feature, value in {"c": 0.30, "a": 0.02, "d": 0.11}.items():  # b: none logged
        client.log_metric(ranked, naming.metric_importance(feature), value)

    as_logged = mm.drift(f"runs:/{plain}/train", ref)
    by_importance = mm.drift(f"runs:/{ranked}/train", ref)

    assert as_logged.table["feature"].tolist() == ["a", "b", "c", "d"] and as_logged.importance == {}
    assert by_importance.table["feature"].tolist() == ["c", "d", "a", "b"]  # without one: last, in order
    assert by_importance.importance == {"c": 0.30, "a": 0.02, "d": 0.11}
    assert mm.drift(ref, ref).importance == {}  # data in memory: no run to ask


def test_runs_uri_errors_say_what_exists(logged_profile):
    run_id, _ = logged_profile

    with pytest.raises(mm.MlopsError) as info:
        mm.drift(f"runs:/{run_id}/trian", f"runs:/{run_id}/train")
    assert str(info.value) == (f"run {run_id} has no profile 'trian'. Did you mean 'train'? "
                               "Profiles in that run: train.")
    with pytest.raises(mm.MlopsError, match="no run 0123456789abcdef at sqlite:///"):
        mm.drift("runs:/0123456789abcdef/train", f"runs:/{run_id}/train")
    with pytest.raises(mm.MlopsError, match="expected runs:/<run_id>/<data name>"):
        mm.drift(f"runs:/{run_id}", f"runs:/{run_id}/train")
