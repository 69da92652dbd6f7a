"""mm.profile: what a profile holds, its JSON, its sketch's accuracy, merging (pure library)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mlops_magics as mm
from mlops_magics.monitoring import _dist
from mlops_magics.monitoring.profile import Profile

RNG = np.random.default_rng(7)


def mixed(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, rows)
    x[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame({
        "x": x,
        "n": rng.integers(0, 4, rows),
        "s": pd.Series(rng.choice(["a", "b", "c", None], rows, p=[0.5, 0.3, 0.15, 0.05]), dtype=object),
        "flag": rng.random(rows) < 0.3,
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 30, rows), unit="s"),
        "cat": pd.Categorical(rng.choice(["lo", "hi"], rows)),
    })


def ecdf(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(values), at, side="right") / len(values)


def test_profile_summarises_each_column():
    df = mixed(5000)
    df.loc[3, "x"] = np.inf  # +-inf count as missing, like NaN

    p = mm.profile(df)

    assert isinstance(p, mm.Profile) and p.rows == 5000 and list(p) == list(df.columns)
    x = p["x"]
    finite = df["x"][np.isfinite(df["x"])]
    assert (x.kind, x.rows, x.missing, x.count) == ("numeric", 5000, 5000 - len(finite), len(finite))
    assert x.min == finite.min() and x.max == finite.max()
    assert x.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert x.std == pytest.approx(finite.std(ddof=0), rel=1e-12)  # population std
    assert x.dist.kind == "quantiles" and x.distinct == finite.nunique()
    n = p["n"]
    assert n.dist.kind == "values" and n.distinct == 4  # few distinct values: kept exactly
    assert n.dist.w.tolist() == df["n"].value_counts().sort_index().tolist()
    s = p["s"]
    assert s.kind == "categorical" and s.missing == df["s"].isna().sum()
    assert s.counts.to_dict() == df["s"].value_counts().to_dict() and s.other == 0
    assert p["flag"].kind == "categorical" and set(p["flag"].counts.index) == {"True", "False"}
    assert p["cat"].kind == "categorical" and p["cat"].counts.sum() == 5000
    when = p["when"]
    assert when.kind == "numeric" and when.min == df["when"].min().timestamp()  # seconds since the epoch


def test_many_categories_keep_the_top_100_and_count_the_rest():
    values = pd.Series([f"id{i}" for i in range(300)] + ["popular"] * 50)

    col = mm.profile(values)["value"]

    assert col.distinct == 301 and len(col.counts) == 100
    assert col.counts.index[0] == "popular" and col.counts.iloc[0] == 50
    assert col.other == 350 - col.counts.sum() and not col.complete


@pytest.mark.parametrize("obj, names", [
    (pd.Series([1.0, 2.0, None], name="price"), ["price"]),
    (np.arange(10.0), ["value"]),
    (np.arange(12.0).reshape(4, 3), ["0", "1", "2"]),
    ({"a": [1, 2], "b": ["x", "y"]}, ["a", "b"]),
])
def test_accepts_series_arrays_and_mappings(obj, names):
    assert list(mm.profile(obj)) == names


def test_accepts_arrow_tables_and_polars():
    import pyarrow as pa
    import polars as pl

    table = pa.table({"a": [1.5, None, 3.0], "s": ["x", None, "y"]})
    p = mm.profile(table)
    assert p["a"].count == 2 and p["s"].counts.to_dict() == {"x": 1, "y": 1}
    assert mm.profile(pl.DataFrame({"a": [1.0, 2.0]}))["a"].max == 2.0


class Unprintable:
    def __str__(self):
        raise TypeError("no text for this")


def test_odd_columns_stay_in_the_profile_marked():
    df = pd.DataFrame({"none": [None, None, None], "nan": [np.nan] * 3, "lists": [[1], [2], [1]],
                       "odd": [Unprintable()] * 3, "numbers_as_objects": pd.Series([1, 2.5, None], dtype=object)})

    p = mm.profile(df)

    assert p["none"].kind == "empty" and p["nan"].kind == "empty" and p["nan"].missing == 3
    assert p["lists"].kind == "categorical" and p["lists"].counts.to_dict() == {"[1]": 2, "[2]": 1}
    assert p["odd"].kind == "unsupported" and p["odd"].note == "TypeError: no text for this"
    assert p["numbers_as_objects"].kind == "numeric" and p["numbers_as_objects"].max == 2.5
    assert "empty" in repr(p) and "<table" in p._repr_html_()


def test_a_3d_array_is_a_one_line_error():
    with pytest.raises(mm.MlopsError, match="cannot profile a 3-D array") as info:
        mm.profile(np.zeros((2, 2, 2)))
    assert len(info.value._render_traceback_()) == 1


def test_json_round_trip_is_exact_and_small():
    p = mm.profile(pd.concat([mixed(200_000), mixed(300, seed=1).add_suffix("_small")], axis=1))

    text = p.to_json()
    back = Profile.from_json(text)

    assert back.to_json() == text
    json.loads(text)  # strict JSON: no NaN or Infinity
    for name in ("x", "s"):
        assert len(json.dumps(json.loads(text)["columns"][name])) < 8_000  # a few kB per column
    assert back["x"].dist.kind == "quantiles" and back["x_small"].dist.kind == "sample"
    np.testing.assert_array_equal(back["x"].dist.x, p["x"].dist.x)
    assert mm.drift(back, back).share == 0


def test_unknown_formats_are_refused():
    with pytest.raises(ValueError, match="not a mlops-magics profile"):
        Profile.from_json('{"rows": 1, "columns": {}}')


@pytest.mark.parametrize("name, values", [
    ("normal", RNG.normal(0, 1, 300_000)),
    ("years", RNG.integers(1990, 2025, 300_000).astype(float) + RNG.random(300_000)),  # offset data
    ("lognormal", RNG.lognormal(0, 2, 300_000)),
    ("zero-inflated", np.where(RNG.random(300_000) < 0.6, 0.0, RNG.exponential(1, 300_000))),
])
def test_sketch_cdf_is_within_one_grid_step(name, values):
    d = mm.profile(pd.Series(values))["value"].dist
    at = np.quantile(values, RNG.random(2000))

    error = np.abs(d.cdf(at) - ecdf(values, at)).max()

    assert error <= _dist.RANK_GAP, f"{name}: {error}"  # documented bound: 1/256
    at_knots = np.abs(d.cdf(d.x) - ecdf(values, d.x)).max()
    assert at_knots <= (_dist.RANK_GAP if name == "zero-inflated" else 1 / len(values))


def test_merge_equals_the_profile_of_both_batches():
    a, b = mixed(150_000, seed=1), mixed(100_000, seed=2)
    b.loc[b.index[:10], "s"] = "new"
    both = pd.concat([a, b], ignore_index=True)

    merged = mm.profile(a).merge(mm.profile(b))
    whole = mm.profile(both)

    assert merged.rows == whole.rows
    for name in both.columns:
        m, w = merged[name], whole[name]
        assert (m.kind, m.count, m.missing) == (w.kind, w.count, w.missing)
    x, xw = merged["x"], whole["x"]
    assert (x.min, x.max) == (xw.min, xw.max)
    assert x.mean == pytest.approx(xw.mean, rel=1e-12) and x.std == pytest.approx(xw.std, rel=1e-12)
    at = np.quantile(both["x"].dropna(), RNG.random(1000))
    assert np.abs(x.dist.cdf(at) - ecdf(both["x"].dropna().to_numpy(), at)).max() <= 2 * _dist.RANK_GAP
    np.testing.assert_array_equal(merged["n"].dist.w, whole["n"].dist.w)  # exact forms merge exactly
    assert merged["s"].counts.to_dict() == whole["s"].counts.to_dict() and merged["s"].distinct == 4


def test_merging_small_samples_stays_exact():
    a, b = RNG.normal(size=400), RNG.normal(size=500)

    merged = mm.profile(pd.Series(a)).merge(mm.profile(pd.Series(b)))["value"]

    assert merged.dist.kind == "sample"
    np.testing.assert_array_equal(merged.dist.x, np.sort(np.concatenate([a, b])))
    big = merged.merge(mm.profile(pd.Series(RNG.normal(size=500)))["value"])
    assert big.dist.kind == "quantiles" and big.count == 1400


def test_merge_keeps_a_column_only_one_side_has():
    merged = mm.profile(pd.DataFrame({"a": [1.0, 2.0]})).merge(mm.profile(pd.DataFrame({"b": ["x"]})))

    assert merged["a"].rows == 3 and merged["a"].missing == 1
    assert merged["b"].rows == 3 and merged["b"].missing == 2 and merged["b"].counts.to_dict() == {"x": 1}
