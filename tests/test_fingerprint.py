"""mm.fingerprint: honest (any change shows), stable (equal content, equal digest,
whatever the layout, process or machine) and complete over the dtypes users meet.
Pure library tests: no IPython, no MLflow."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_magics.fingerprints import core as _fingerprint_core, values as _fingerprint_values
from mlops_magics.errors import FingerprintError
from mlops_magics.fingerprints import Fingerprint, fingerprint, fingerprint_path, is_fingerprintable


def d(obj) -> str:
    return fingerprint(obj).digest


# --- digest format ----------------------------------------------------------------

def test_digest_is_versioned_and_fits_mlflow():
    fp = fingerprint(pd.DataFrame({"a": [1, 2]}))
    assert isinstance(fp, Fingerprint)
    assert fp.digest.startswith("xx3v1:") and len(fp.digest) == 36
    assert all(c in "0123456789abcdef" for c in fp.digest[6:])
    assert fp.short == fp.digest[6:18]
    assert fp.kind == "pandas.DataFrame" and fp.shape == (2, 1)
    assert fp.schema == (("a", "int64"),) and dict(fp.schema) == {"a": "int64"}
    assert len(fp.schema_digest) <= 36 and fp.nbytes > 0
    hash(fp)  # frozen: usable as a key


# Pinned: a change here changes every digest users have logged. Bump the version prefix
# (and these values) only when the canonical form changes on purpose.
GOLDEN = {
    "frame": "xx3v1:ac8266a9a393bc729b562e05c51958",
    "array": "xx3v1:f670767b2b5d9543b0eeb7755a0929",
    "arrow": "xx3v1:d74e7815fbad166fa19d29d7fb2f2d",
    "value": "xx3v1:974c436d57bb0b3122e17be13d6f02",
    "bytes_file": "xx3v1:4bdb0b69a9d7b3a3afe0d7ab28488c",
}


def _golden_objects(tmp_path: pathlib.Path) -> dict:
    path = tmp_path / "golden.bin"
    path.write_bytes(b"mlops-magics\n" * 1000)
    return {
        "frame": pd.DataFrame(
            {"i": [1, 2, 3], "f": [0.5, np.nan, -1.0], "s": pd.Series(["a", None, "ccc"], dtype=object),
             "t": pd.to_datetime(["2024-01-01", "2024-06-30", None]).as_unit("ns")},
            index=pd.Index([10, 20, 30], name="id"),
        ),
        "array": np.arange(12, dtype="<f8").reshape(3, 4),
        "arrow": pa.table({"x": pa.array([1, None, 3], pa.int32()), "y": pa.array(["p", "q", None])}),
        "value": {"lr": 0.1, "layers": [64, 32], "name": "run", "seed": 7, "flag": True, "none": None},
        "bytes_file": path,
    }


def test_golden_digests(tmp_path):
    got = {name: d(obj) for name, obj in _golden_objects(tmp_path).items()}
    assert got == GOLDEN


def test_digest_follows_the_documented_algorithm():
    """The version-1 algorithm spelled out by hand for one small array."""
    import struct

    import xxhash

    u64 = lambda n: struct.pack("<Q", n)  # noqa: E731
    text = lambda s: b"s" + u64(len(s)) + s.encode()  # noqa: E731
    values = xxhash.xxh3_128(np.array([1, 2, 3], "<i8").tobytes()).digest()
    column = xxhash.xxh3_128(b"mlops-magics/column/1\x00" + u64(5) + b"fixed" + u64(3)
                             + b"v" + values + u64(0)).digest()
    header = (b"t" + u64(3) + text("numpy.ndarray")
              + b"t" + u64(1) + b"i" + u64(1) + b"\x03"  # shape (3,)
              + b"t" + u64(2) + text("int64") + b"t" + u64(0))  # dtype, trailing shape
    top = xxhash.xxh3_128(b"mlops-magics/fingerprint/1\x00" + header + u64(1) + column)
    assert d(np.array([1, 2, 3])) == "xx3v1:" + top.hexdigest()[:30]


def test_same_digest_in_another_process(tmp_path):
    script = (
        "import json, pathlib, sys; sys.path.insert(0, %r)\n"
        "from tests.test_fingerprint import _golden_objects, d\n"
        "print(json.dumps({k: d(v) for k, v in _golden_objects(pathlib.Path(%r)).items()}))\n"
    ) % (str(pathlib.Path(__file__).parents[1]), str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == {k: d(v) for k, v in _golden_objects(tmp_path).items()}


def test_import_is_light():
    code = ("import sys, numpy, mlops_magics.fingerprints as f; "
            "assert f.is_fingerprintable(numpy.zeros(2)) and not f.is_fingerprintable({'a': 1}); "
            "f.fingerprint({'a': [1, 2.5, 'x']}); "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'polars', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_level_name_calls_the_function():
    import mlops_magics as mm
    import mlops_magics.fingerprints  # noqa: F401  (the module's name never shadows the function)

    assert mm.fingerprint([1, 2]).digest == fingerprint([1, 2]).digest


def test_empty_and_degenerate_objects():
    empties = [pd.DataFrame(), pd.DataFrame({"a": []}), pd.Series([], dtype=float), np.array([]),
               np.zeros((0, 3)), pa.table({"a": pa.array([], pa.int64())}), pa.array([], pa.string()),
               [], {}, "", b""]
    digests = [d(x) for x in empties]
    assert len(set(digests)) == len(digests)
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert fingerprint(dup).schema == (("a", "int64"), ("a", "int64"))
    assert d(dup) != d(pd.DataFrame([[2, 1]], columns=["a", "a"]))


def test_embeddings_in_object_columns_and_arrow_lists():
    rng = np.random.default_rng(6)
    vectors = [rng.random(8) for _ in range(50)]
    s = pd.Series(vectors)
    assert d(s) == d(pd.Series([v.copy() for v in vectors]))
    changed = [v.copy() for v in vectors]
    changed[-1][-1] += 1
    assert d(pd.Series(changed)) != d(s)
    assert d(pd.Series([v.astype("float32") for v in vectors])) != d(s)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(vectors)), 8)
    assert d(fixed.slice(3)) == d(pa.chunked_array([fixed.slice(3, 10), fixed.slice(13)]))
    assert d(fixed) != d(pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(vectors)), 4))


# --- every dtype ------------------------------------------------------------------

def _series_cases() -> dict[str, tuple[pd.Series, object]]:
    """name -> (series, a replacement for its last value)."""
    ts = pd.date_range("2024-01-01", periods=4, freq="D")
    return {
        "int": (pd.Series([1, 2, 3, 4]), 5),
        "float": (pd.Series([0.5, 1.5, np.nan, 2.5]), 2.25),
        "bool": (pd.Series([True, False, True, True]), False),
        "Int64": (pd.Series([1, None, 3, 4], dtype="Int64"), pd.NA),
        "Float64": (pd.Series([1.0, None, 3.0, 4.0], dtype="Float64"), 4.5),
        "boolean": (pd.Series([True, None, False, True], dtype="boolean"), pd.NA),
        "category": (pd.Series(["a", "b", "a", "c"], dtype="category"), "a"),
        "datetime": (pd.Series(ts), pd.Timestamp("2030-01-01")),
        "datetime_tz": (pd.Series(ts.tz_localize("Europe/Paris")), pd.Timestamp("2030-01-01", tz="Europe/Paris")),
        "timedelta": (pd.Series(pd.to_timedelta([1, 2, 3, 4], unit="s")), pd.Timedelta(seconds=9)),
        "period": (pd.Series(pd.period_range("2024-01", periods=4, freq="M")), pd.Period("2031-01", "M")),
        "object_str": (pd.Series(["a", "bb", None, "dd"], dtype=object), "ee"),
        "str": (pd.Series(["a", "bb", None, "dd"], dtype="str"), "ee"),
        "string_pyarrow": (pd.Series(["a", "bb", None, "dd"], dtype=pd.StringDtype("pyarrow")), "ee"),
        "string_python": (pd.Series(["a", "bb", None, "dd"], dtype=pd.StringDtype("python")), "ee"),
        "arrow_int": (pd.Series([1, None, 3, 4], dtype=pd.ArrowDtype(pa.int64())), 7),
        "arrow_ts": (pd.Series(ts, dtype=pd.ArrowDtype(pa.timestamp("us", "UTC"))), pd.Timestamp("2030-01-01", tz="UTC")),
        "mixed_object": (pd.Series([1, "a", 2.5, None], dtype=object), b"x"),
        "interval": (pd.Series(pd.interval_range(0, 4)), pd.Interval(7, 8)),
        "sparse": (pd.Series(pd.arrays.SparseArray([0.0, 0.0, 1.0, 0.0])), 3.0),
        "decimal_object": (pd.Series([decimal.Decimal("1.10"), decimal.Decimal("2"), None, decimal.Decimal("3")]),
                           decimal.Decimal("3.0")),
    }


@pytest.mark.parametrize("name", list(_series_cases()))
def test_every_dtype_is_stable_and_sees_the_last_row(name):
    s, replacement = _series_cases()[name]
    fp = fingerprint(s)
    assert fingerprint(s.copy()).digest == fp.digest
    assert fingerprint(s.to_frame("col")).digest == fingerprint(s.copy().to_frame("col")).digest
    changed = pd.Series(s.tolist()[:-1] + [replacement], dtype=s.dtype)
    assert fingerprint(changed).digest != fp.digest
    assert fingerprint(changed).schema_digest == fp.schema_digest


def test_multiindex_levels_and_names_count():
    mi = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
    df = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0]}, index=mi)
    assert d(df) == d(df.copy())
    assert d(df) != d(df.rename_axis(["k", "m"]))
    assert d(df) != d(df.set_axis(pd.MultiIndex.from_product([["a", "c"], [1, 2]], names=["k", "n"])))
    assert fingerprint(mi).kind == "pandas.MultiIndex"
    assert d(mi) != d(mi[::-1])
    cols = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("x", "a"), ("x", "b")]))
    assert d(cols) != d(cols.set_axis(pd.MultiIndex.from_tuples([("x", "a"), ("y", "b")]), axis=1))


# --- honest: what must change the digest -------------------------------------------

@pytest.fixture
def frame():
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "x": rng.random(1000), "n": np.arange(1000), "s": [f"v{i}" for i in range(1000)],
        "c": pd.Categorical(rng.choice(["a", "b"], 1000)),
        "t": pd.date_range("2024-01-01", periods=1000, freq="h"),
    })


def test_changes_that_must_show(frame):
    base = d(frame)
    edited = frame.copy()
    edited.loc[999, "x"] += 1e-12
    assert d(edited) != base
    assert d(frame.iloc[::-1]) != base
    assert d(frame.iloc[::-1].reset_index(drop=True)) != base
    assert d(frame[["n", "x", "s", "c", "t"]]) != base
    assert d(frame.rename(columns={"x": "y"})) != base
    assert d(frame.set_axis(frame.index + 1)) != base
    assert d(frame.astype({"n": "float64"})) != base
    assert d(frame.astype({"n": "int32"})) != base
    recat = frame.copy()
    recat["c"] = recat["c"].cat.add_categories(["z"])  # same values, bigger category set
    assert d(recat) != base
    tz = frame.copy()
    tz["t"] = tz["t"].dt.tz_localize("UTC")
    assert d(tz) != base
    assert d(tz.assign(t=tz["t"].dt.tz_convert("Asia/Tokyo"))) != d(tz)  # same instants, other zone
    assert d(frame.head(999)) != base
    assert d(frame.rename(columns={"x": 1})) != d(frame.rename(columns={"x": "1"}))


def test_int_and_float_with_equal_values_differ():
    assert d(pd.Series([1, 2])) != d(pd.Series([1.0, 2.0]))
    assert d(np.array([1])) != d(np.array([1.0]))
    assert d(1) != d(1.0) != d(True)
    assert d([1, "1", b"1"]) != d(["1", 1, b"1"])


def test_schema_digest_tells_schema_from_values(frame):
    fp = fingerprint(frame)
    edited = frame.copy()
    edited.loc[3, "n"] = -1
    assert fingerprint(edited).schema_digest == fp.schema_digest
    assert fingerprint(edited).digest != fp.digest
    assert fingerprint(frame.head(10)).schema_digest == fp.schema_digest
    assert fingerprint(frame.astype({"n": "float64"})).schema_digest != fp.schema_digest
    assert fingerprint(frame.rename(columns={"s": "z"})).schema_digest != fp.schema_digest


def test_nan_is_canonical_and_negative_zero_is_kept():
    payload = np.array([0x7FF8000000000123, 0xFFF8000000000000], dtype=np.uint64).view(np.float64)
    assert np.isnan(payload).all()
    assert d(np.array([1.0, np.nan, np.nan])) == d(np.concatenate([[1.0], payload]))
    assert d(pd.Series([np.nan], dtype="float32")) == d(pd.Series([-np.nan], dtype="float32"))
    assert d(np.array([np.nan + 0j])) == d(np.array([complex(np.nan, 0.0)]))
    assert d(float("nan")) == d(-float("nan"))
    big = np.random.default_rng(7).random(1_200_000)  # past the size hashed alongside a NaN check
    odd = big.copy()
    big[-1], odd[-1] = np.nan, payload[0]
    assert d(big) == d(odd) != d(np.nan_to_num(big))
    assert d(np.array([0.0])) != d(np.array([-0.0]))  # documented: bytes differ, 1/x differs


def test_missing_values_in_object_columns_stay_apart():
    a = pd.Series(["x", None], dtype=object)
    b = pd.Series(["x", np.nan], dtype=object)
    c = pd.Series(["x", pd.NA], dtype=object)
    assert len({d(a), d(b), d(c)}) == 3
    assert d(pd.Series(["x", ""], dtype=object)) != d(a)


def test_masked_values_do_not_leak():
    mask = np.array([False, True, False])
    a = pd.arrays.IntegerArray(np.array([1, 2, 3]), mask)
    b = pd.arrays.IntegerArray(np.array([1, 9, 3]), mask.copy())  # other bytes under the mask
    assert d(pd.Series(a)) == d(pd.Series(b))
    assert d(pd.Series(a)) != d(pd.Series([1, 0, 3], dtype="Int64"))


# --- layout independence ------------------------------------------------------------

def test_pandas_block_layout_does_not_matter():
    rng = np.random.default_rng(2)
    arr = rng.random((500, 6))
    cols = list("abcdef")
    consolidated = pd.DataFrame(arr, columns=cols)
    fortran = pd.DataFrame(arr, columns=cols, copy=False)
    split = pd.DataFrame({c: arr[:, i].copy() for i, c in enumerate(cols)})
    transposed = pd.DataFrame(arr.T.copy(), index=cols).T
    assert d(consolidated) == d(fortran) == d(split) == d(transposed.astype("float64"))
    assert d(consolidated.iloc[::2]) == d(consolidated.iloc[::2].copy())
    ints = (arr * 1000).astype("int32")
    assert d(pd.DataFrame(ints, copy=False)) == d(pd.DataFrame(ints.copy()))


def test_numpy_views_equal_their_copies():
    rng = np.random.default_rng(3)
    a = rng.random((40, 30))
    for view in (a.T, a[::3, 1::2], a[:, 5], np.asfortranarray(a), a[::-1]):
        assert d(view) == d(np.ascontiguousarray(view))
    big = a.astype(">f8")
    assert d(big) == d(a)
    assert d(a.astype("<i4")) == d(a.astype(">i4"))
    assert d(a) != d(a.T)  # shape differs
    assert d(a.reshape(30, 40)) != d(a)


def test_numpy_dtypes():
    samples = [
        np.array([1, 2], np.int8), np.array([1, 2], np.uint64), np.array([1.5], np.float16),
        np.array([1 + 2j]), np.array([True]), np.array(["ab", "c"]), np.array([b"ab", b"c"]),
        np.array(["2024-01-01"], "datetime64[D]"), np.array([5], "timedelta64[s]"),
        np.array([1.0], np.longdouble), np.array([b"\x00\x01"], "V2"),
        np.array([1, "a", None], dtype=object), np.array(["x", "yy"], dtype=np.dtypes.StringDType()),
    ]
    digests = [d(a) for a in samples]
    assert len(set(digests)) == len(digests)
    assert [d(a.copy()) for a in samples] == digests
    assert d(np.array(3.5)) == d(np.array(3.5)) and fingerprint(np.array(3.5)).shape == ()


def test_structured_arrays_ignore_padding():
    dtype = np.dtype([("a", "u1"), ("b", "<f8")], align=True)  # 7 padding bytes per row
    x = np.zeros(3, dtype)
    y = np.frombuffer(bytearray(range(48)), dtype)
    x["a"], x["b"], y["a"], y["b"] = [1, 2, 3], [0.5, 1.5, 2.5], [1, 2, 3], [0.5, 1.5, 2.5]
    assert x.tobytes() != y.tobytes()
    assert d(x) == d(y)
    assert fingerprint(x).schema == (("a", "uint8"), ("b", "float64"))
    packed = np.zeros(3, np.dtype([("a", "u1"), ("b", ">f8")]))
    packed["a"], packed["b"] = [1, 2, 3], [0.5, 1.5, 2.5]
    assert d(packed) == d(x)  # offsets, alignment and byte order are layout, not data
    y["b"][2] = 9
    assert d(x) != d(y)


def test_masked_numpy_arrays():
    a = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    b = np.ma.masked_array([1.0, 7.0, 3.0], mask=[False, True, False])
    assert d(a) == d(b)
    assert d(a) != d(np.array([1.0, 2.0, 3.0]))
    assert fingerprint(a).kind == "numpy.ma.MaskedArray"


def _arrow_layouts():
    values = [1.5, None, 2.5, float("nan"), 4.0, 5.0]
    strings = ["a", None, "ccc", "", "dddd", "é"]
    one = pa.table({"x": values, "s": strings})
    chunked = pa.Table.from_batches(
        [pa.record_batch({"x": values[:2], "s": strings[:2]}),
         pa.record_batch({"x": values[2:5], "s": strings[2:5]}),
         pa.record_batch({"x": values[5:], "s": strings[5:]})])
    padded = pa.table({"x": [0.0] + values + [9.0], "s": ["zz"] + strings + ["q"]}).slice(1, 6)
    return one, chunked, padded


def test_arrow_chunk_layout_and_offsets_do_not_matter():
    one, chunked, padded = _arrow_layouts()
    assert chunked.column(0).num_chunks == 3 and padded.column(1).chunk(0).offset == 1
    assert d(one) == d(chunked) == d(padded) == d(one.combine_chunks())
    assert d(one.to_batches()[0]) == d(one)
    assert d(chunked.column("s")) == d(one.column("s").combine_chunks())
    assert d(one.column("x")) != d(one.column("s"))
    large = pa.table({"x": one.column("x"), "s": one.column("s").cast(pa.large_string())})
    assert d(large) != d(one)  # the type is part of the schema


def test_arrow_nulls_dictionaries_and_nested():
    a = pa.array([1, 2, 3], pa.int64())
    b = pa.array([1, None, 3], pa.int64())
    assert d(a) != d(b)
    d1 = pa.chunked_array([pa.array(["x", "y"]).dictionary_encode(), pa.array(["y", "z"]).dictionary_encode()])
    d2 = pa.chunked_array([pa.array(["x", "y", "y", "z"]).dictionary_encode()])
    assert d(d1) == d(d2)
    nested = pa.array([[1, 2], None, [3]])
    assert d(nested) == d(pa.chunked_array([nested.slice(0, 1), nested.slice(1)]))
    assert d(nested) != d(pa.array([[1], [2], [3]]))
    st_ = pa.array([{"a": 1, "b": "x"}, None, {"a": 2, "b": "y"}])
    assert d(st_) == d(pa.chunked_array([st_.slice(0, 2), st_.slice(2)]))
    assert d(st_) != d(pa.array([{"a": 1, "b": "x"}, {"a": None, "b": None}, {"a": 2, "b": "y"}]))
    assert d(pa.array([decimal.Decimal("1.10")])) != d(pa.array([decimal.Decimal("1.11")]))


def test_string_storage_does_not_matter():
    data = ["a", None, "ccc", "é"] * 100
    assert d(pd.Series(data, dtype=pd.StringDtype("python"))) == d(pd.Series(data, dtype=pd.StringDtype("pyarrow")))
    assert d(pd.Series(data, dtype=pd.StringDtype("python", na_value=np.nan))) == d(pd.Series(data, dtype="str"))
    assert d(pd.Series(data, dtype=object)) != d(pd.Series(data, dtype="str"))  # dtype differs


def test_object_strings_without_pyarrow_give_the_same_digest(monkeypatch):
    values = np.array(["a", None, "bb", np.nan, "é", "\ud800"] * 50, dtype=object)
    with_arrow = _fingerprint_values.object_column(values[:-1], None)
    monkeypatch.setattr("mlops_magics.fingerprints.arrow.object_strings", lambda *a, **k: NotImplemented)
    assert _fingerprint_values.object_column(values[:-1], None) == with_arrow
    _fingerprint_values.object_column(values, None)  # lone surrogates: Python path only


def test_range_index_equals_its_values():
    assert d(pd.RangeIndex(0, 10, 3)) == d(pd.Index([0, 3, 6, 9]))
    big = pd.Series(np.ones(600_000))
    assert d(big) == d(big.set_axis(pd.Index(np.arange(600_000))))


def test_threads_do_not_change_the_digest(monkeypatch):
    df = pd.DataFrame(np.random.default_rng(4).random((200_000, 8)))
    assert df.memory_usage().sum() > _fingerprint_core.PARALLEL_MIN_BYTES
    parallel = d(df)
    monkeypatch.setattr(_fingerprint_core, "PARALLEL_MIN_BYTES", 1 << 60)
    assert d(df) == parallel


# --- polars -------------------------------------------------------------------------

def test_polars():
    import polars as pl  # in the test extra: a missing polars fails, never skips
    df = pl.DataFrame({"a": [1, 2, 3], "s": ["x", None, "z"], "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical)})
    fp = fingerprint(df)
    assert fp.kind == "polars.DataFrame" and fp.shape == (3, 3) and fp.schema[0] == ("a", "Int64")
    assert d(pl.concat([df.head(1), df.tail(2)], rechunk=False)) == fp.digest
    assert d(df.with_columns(pl.col("a") * 2)) != fp.digest
    assert d(df["s"]) != d(df["c"])
    assert is_fingerprintable(df) and is_fingerprintable(df["a"])
    assert not is_fingerprintable(df.lazy())
    with pytest.raises(FingerprintError, match=r"collect\(\)"):
        fingerprint(df.lazy())


def test_a_polars_object_column_is_hashed_by_its_values_in_any_process():
    """polars exports an Object column to Arrow as the objects' addresses: equal content built
    twice, here and in another process, must give one digest; other content another."""
    import polars as pl

    make = "pl.Series('o', [{'a': 1}, [1, 2], 'x'], dtype=pl.Object)"
    here = d(eval(make, {"pl": pl}))
    assert d(eval(make, {"pl": pl})) == here
    assert d(pl.Series("o", [{"a": 2}, [1, 2], "x"], dtype=pl.Object)) != here
    assert d(pl.DataFrame({"o": eval(make, {"pl": pl})})) == d(pl.DataFrame({"o": eval(make, {"pl": pl})}))
    code = f"import polars as pl, mlops_magics as mm; print(mm.fingerprint({make}).digest)"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert there == here


# --- Python values ------------------------------------------------------------------

def test_python_values():
    assert d({"a": 1, "b": [1, 2]}) == d({"b": [1, 2], "a": 1})  # dicts: == means equal
    assert d([1, 2]) != d([2, 1]) != d((1, 2))
    assert d({3, 1, 2}) == d({1, 2, 3}) != d(frozenset({1, 2, 3}))
    assert d("ab") != d(b"ab") != d(bytearray(b"ab"))
    assert d(None) != d(0) != d(False) != d("")
    assert d(2**100) != d(2**100 + 1)
    assert d(dt.datetime(2024, 1, 1)) != d(dt.date(2024, 1, 1))
    assert d(np.float64(1.0)) != d(1.0)
    assert fingerprint([1, 2, 3]).kind == "python.list" and fingerprint([1, 2, 3]).shape == (3,)
    assert fingerprint({"x": np.arange(3)}).digest != fingerprint({"x": np.arange(4)}).digest
    big = list(range(120_000))  # encodings past the stream's flush size
    assert d({"a": big, "b": [big, "x"]}) == d({"b": [list(big), "x"], "a": list(big)})
    assert d({"a": big, "b": 1}) != d({"a": big[:-1], "b": 1})


def test_unsupported_objects_raise_a_helpful_error():
    class Model:
        pass

    with pytest.raises(FingerprintError, match=r"type .*Model: convert it to a DataFrame") as info:
        fingerprint(Model())
    assert isinstance(info.value, TypeError)
    with pytest.raises(FingerprintError, match=r"Model \(at \['params'\]\[1\]\)"):
        fingerprint({"params": [1, Model()]})
    with pytest.raises(FingerprintError, match=r"at \['m'\]\[1\]"):
        fingerprint(pd.DataFrame({"m": [1, Model()]}))
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(FingerprintError, match="contains itself"):
        fingerprint(loop)
    with pytest.raises(FingerprintError, match=r"list\(\.\.\.\)"):
        fingerprint(iter([1, 2]))
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(FingerprintError, match="nested too deeply"):
        fingerprint(deep)


def test_is_fingerprintable():
    yes = [pd.DataFrame(), pd.Series([1]), pd.Index([1]), np.zeros(2), np.zeros((0, 3)),
           pa.array([1]), pa.chunked_array([[1]]), pa.table({"a": [1]}), pa.record_batch({"a": [1]})]
    no = [np.float64(1), np.array(1.0), 1, "x", [1, 2], {"a": 1}, None, pathlib.Path(".")]
    assert all(is_fingerprintable(x) for x in yes)
    assert not any(is_fingerprintable(x) for x in no)


# --- files and directories -----------------------------------------------------------

def test_files_by_content(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(b"x,y\n1,2\n")
    b.write_bytes(b"x,y\n1,2\n")
    fp = fingerprint_path(a)
    assert fp.kind == "file" and fp.nbytes == 8
    assert fp.digest == fingerprint_path(str(b)).digest == d(b)  # a Path means its content
    b.write_bytes(b"x,y\n1,3\n")
    assert fingerprint_path(b).digest != fp.digest
    assert d(str(a)) != fp.digest  # a str is a string
    with pytest.raises(FileNotFoundError):
        fingerprint_path(tmp_path / "missing.csv")


def test_large_file_is_streamed(tmp_path):
    path = tmp_path / "big.bin"
    block = np.random.default_rng(5).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    path.write_bytes(block * 4)  # 12 MiB, several reads
    fp = fingerprint_path(path)
    assert fp.nbytes == 12 << 20
    path.write_bytes(block * 3 + block[:-1] + b"\x00" if block[-1] else block * 3 + block[:-1] + b"\x01")
    assert fingerprint_path(path).digest != fp.digest


def test_directories_by_tree_and_content(tmp_path):
    def tree(root: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root

    files = {"a.txt": b"1", "sub/b.txt": b"22", "sub/deeper/c.bin": b"\x00" * 10}
    one = tree(tmp_path / "one", files)
    two = tree(tmp_path / "two", dict(reversed(list(files.items()))))
    fp = fingerprint_path(one)
    assert fp.kind == "directory" and fp.nbytes == 13
    assert fingerprint_path(two).digest == fp.digest
    (two / "sub" / "b.txt").write_bytes(b"23")
    assert fingerprint_path(two).digest != fp.digest
    (two / "sub" / "b.txt").write_bytes(b"22")
    (two / "a.txt").rename(two / "a2.txt")
    assert fingerprint_path(two).digest != fp.digest
    (two / "a2.txt").rename(two / "a.txt")
    (two / "empty").mkdir()
    assert fingerprint_path(two).digest != fp.digest
    (two / "empty").rmdir()
    (two / "link").symlink_to(two / "sub")  # a symlinked directory is named, not followed
    assert fingerprint_path(two).digest != fp.digest


# --- properties -----------------------------------------------------------------------

_cells = {
    "i": st.integers(-(2**63), 2**63 - 1),
    "f": st.floats(allow_nan=True, allow_infinity=True, width=64),
    "s": st.text(max_size=6),
    "b": st.booleans(),
}


@st.composite
def frames(draw):
    nrows = draw(st.integers(1, 30))
    kinds = draw(st.lists(st.sampled_from(sorted(_cells)), min_size=1, max_size=4))
    data = {f"c{i}_{k}": draw(st.lists(_cells[k], min_size=nrows, max_size=nrows)) for i, k in enumerate(kinds)}
    dtypes = {"i": "int64", "f": "float64", "s": "str", "b": "bool"}
    return pd.DataFrame({name: pd.Series(vals, dtype=dtypes[name[-1]]) for name, vals in data.items()})


_settings = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(frames())
def test_property_equal_frames_equal_digests(df):
    rebuilt = pd.DataFrame({c: pd.Series(df[c].tolist(), dtype=df[c].dtype) for c in df.columns})
    assert d(df) == d(rebuilt) == d(df.copy())
    as_arrow = pa.Table.from_pandas(df, preserve_index=False)
    assert d(as_arrow) == d(pa.Table.from_batches(as_arrow.to_batches(max_chunksize=3), as_arrow.schema))


@_settings
@given(frames(), st.data())
def test_property_a_single_mutation_changes_the_digest(df, data):
    row = data.draw(st.integers(0, len(df) - 1))
    col = data.draw(st.sampled_from(list(df.columns)))
    old = df[col].tolist()[row]
    new = data.draw(_cells[col[-1]].filter(lambda v: not _same(v, old)))
    mutated = df.copy()
    mutated[col] = pd.Series([new if i == row else v for i, v in enumerate(df[col].tolist())], dtype=df[col].dtype)
    assert d(mutated) != d(df)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b
