"""mm.validate, data contracts, %validate and `mlops-magics validate` on scikit-learn's
shipped data sets with planted violations; runs:/ references from a real tracked run,
report.log() into a real SQLite MLflow store, the CLI through a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cell_runs, last_bundle, run
from sklearn.datasets import load_diabetes, load_wine

import mlops_magics as mm
from mlops_magics import naming
from mlops_magics.errors import NoActiveRunError

CLI = [sys.executable, "-m", "mlops_magics.cli"]


def diabetes(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scikit-learn's diabetes frame plus a derived categorical column, split 342 / 100."""
    df = load_diabetes(as_frame=True).frame
    df["sex_cat"] = np.where(df["sex"] > 0, "male", "female")
    df["age_band"] = pd.cut(df["age"], [-1, -0.05, 0, 0.05, 1], labels=["a", "b", "c", "d"]).astype(str)
    order = np.random.default_rng(seed).permutation(len(df))
    return df.iloc[order[:342]].reset_index(drop=True), df.iloc[order[342:]].reset_index(drop=True)


def planted(cur: pd.DataFrame) -> pd.DataFrame:
    """Five violations: a dropped column, values out of range, an unseen category, a changed
    dtype, a missing-rate rise; and an extra column."""
    bad = cur.drop(columns=["bp"]).assign(bmi=cur["bmi"] * 10, s1=np.where(cur["s1"] > 0, "high", "low"), extra=1)
    bad.loc[:19, "sex_cat"] = "unknown"
    bad.loc[:29, "s2"] = np.nan
    return bad


PLANTED = {("bp", "column"), ("bmi", "range"), ("s1", "dtype"), ("sex_cat", "categories"),
           ("s2", "missing rate"), ("extra", "column")}


def failures(report) -> set[tuple[str, str]]:
    return set(zip(report.failures["column"], report.failures["check"]))


def row(report, column: str, check: str) -> pd.Series:
    t = report.table
    [index] = t.index[(t["column"] == column) & (t["check"] == check)]
    return t.loc[index]


# -- the checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_clean_held_out_sample_passes_every_check(seed):
    ref, cur = diabetes(seed)

    report = mm.validate(cur, ref)

    assert report.passed, report
    assert list(report.table.columns) == ["column", "check", "passed", "expected", "observed"]
    checks = report.table.groupby("check")["column"].apply(set).to_dict()
    assert checks["column"] == checks["dtype"] == checks["missing rate"] == set(ref.columns)
    assert checks["range"] == set(ref.columns) - {"sex_cat", "age_band"}
    assert checks["categories"] == {"sex_cat", "age_band"}
    assert row(report, "sex_cat", "categories")["observed"] == "0.0% (0 rows)"


def test_wine_held_out_passes_and_a_sorted_split_is_caught():
    wine = load_wine(as_frame=True).frame
    shuffled = wine.sample(frac=1, random_state=3).reset_index(drop=True)
    assert mm.validate(shuffled.iloc[120:], shuffled.iloc[:120]).passed
    # the file is sorted by cultivar: its last 58 rows are the third cultivar only
    shifted = mm.validate(wine.iloc[120:], wine.iloc[:120])
    assert not shifted.passed
    assert {c for c, check in failures(shifted)} >= {"hue", "color_intensity"}
    assert all(check == "range" for _, check in failures(shifted))


def test_each_planted_violation_is_caught_and_named():
    ref, cur = diabetes()

    report = mm.validate(planted(cur), ref)

    assert not report.passed
    assert failures(report) == PLANTED
    assert row(report, "bp", "column")["observed"] == "missing"
    assert row(report, "extra", "column")["observed"] == "extra"
    bmi = row(report, "bmi", "range")
    out = ~planted(cur)["bmi"].between(ref["bmi"].min(), ref["bmi"].max())
    assert bmi["observed"].startswith(f"{out.mean():.1%} ({out.sum()} rows: min ")
    assert f"[{ref['bmi'].min():.6g}, {ref['bmi'].max():.6g}]" in bmi["expected"]
    assert row(report, "sex_cat", "categories")["observed"] == "20.0% (20 rows: 'unknown')"
    dtype = row(report, "s1", "dtype")
    assert (dtype["expected"], dtype["observed"]) == ("float", f"{planted(cur)['s1'].dtype} (string)")
    assert row(report, "s2", "missing rate")["observed"] == "30.0% (30 rows)"
    assert report.verdict.startswith(f"validation failed: 6 of {len(report.table)} checks")


def test_a_profile_and_a_contract_stand_in_for_the_frame():
    ref, cur = diabetes()
    bad = planted(cur)

    from_frame = mm.validate(bad, ref)
    from_profile = mm.validate(bad, mm.profile(ref))
    from_contract = mm.validate(bad, mm.contract(ref))

    pd.testing.assert_frame_equal(from_profile.table, from_frame.table)
    pd.testing.assert_frame_equal(from_contract.table, from_frame.table)


def test_tolerance_is_the_share_allowed():
    ref, cur = diabetes()
    cur.loc[:9, "bmi"] = 5.0  # 10% of the rows far out of range

    assert failures(mm.validate(cur, ref)) == {("bmi", "range")}
    assert mm.validate(cur, ref, tolerance=0.1).passed
    assert row(mm.validate(cur, ref, tolerance=0.1), "bmi", "range")["observed"] == "10.0% (10 rows: max 5)"
    with pytest.raises(mm.MlopsError, match="tolerance must be a share between 0 and 1, got 1.5"):
        mm.validate(cur, ref, tolerance=1.5)


def test_the_allowed_share_narrows_as_rows_grow():
    ref = pd.DataFrame({"x": np.arange(100_000.0)})
    small = pd.DataFrame({"x": np.r_[np.arange(97.0), [-1.0, -2.0, -3.0]]})  # 3% out, on 100 rows
    large = pd.DataFrame({"x": np.r_[np.arange(97_000.0), -np.arange(1.0, 3001.0)]})  # 3% out, on 100k rows

    assert mm.validate(small, ref).passed
    assert failures(mm.validate(large, ref)) == {("x", "range")}
    assert row(mm.validate(large, ref, tolerance=0), "x", "range")["expected"] == "≤ 0.0062% outside [0, 99999]"


def test_dtype_kinds():
    ref = pd.DataFrame({"n": [1, 2, 3], "f": [0.5, 1.5, 2.5], "b": [True, False, True],
                        "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]), "s": ["a", "b", "a"]})
    whole = ref.assign(n=[1.0, np.nan, 3.0], f=[1, 2, 2], s=pd.Categorical(["a", "b", "b"]))
    assert mm.validate(whole, ref, tolerance=0.5).passed  # a NaN turned the ints to floats; ints are floats

    changed = ref.assign(n=[1.5, 2.0, 3.0], b=["yes", "no", "yes"], t=["2024-01-01"] * 3)
    report = mm.validate(changed, ref, tolerance=1)  # only the kinds can fail
    assert failures(report) == {("n", "dtype"), ("b", "dtype"), ("t", "dtype")}
    assert row(report, "n", "dtype")["observed"] == "float64 (float)"


def test_datetime_ranges_and_row_count_bounds():
    days = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=300, freq="D")})
    later = pd.DataFrame({"day": pd.date_range("2024-06-01", periods=300, freq="D")})
    rules = mm.contract(days, rows=(400, None))

    report = mm.validate(later, rules)

    assert failures(report) == {("(table)", "row count"), ("day", "range")}
    assert row(report, "(table)", "row count")[["expected", "observed"]].tolist() == ["≥ 400 rows", "300"]
    assert row(report, "day", "range")["expected"].endswith("outside [2024-01-01 00:00:00, 2024-10-26 00:00:00]")
    assert mm.validate(days, mm.contract(days, rows=(1, 300)), tolerance=0).passed


def test_mistakes_are_one_line_errors(tmp_path):
    ref, cur = diabetes()
    with pytest.raises(mm.MlopsError, match="a profile summarises the data"):
        mm.validate(mm.profile(cur), ref)
    with pytest.raises(mm.MlopsError, match=r"no file .*/cur.csvv\. Did you mean 'cur.csv'\?"):
        cur.to_csv(tmp_path / "cur.csv", index=False)
        mm.validate(tmp_path / "cur.csvv", ref)
    with pytest.raises(mm.MlopsError, match="no contract file .*contract.yml"):
        mm.validate(cur, tmp_path / "contract.yml")


# -- contracts as YAML -----------------------------------------------------------------------------
def test_contract_yaml_round_trip_and_hand_edits(tmp_path):
    ref, cur = diabetes()
    bad = planted(cur)
    path = mm.validate(bad, ref).save_contract(tmp_path / "contract.yaml")

    text = path.read_text()
    assert text.startswith("# mlops-magics data contract")
    pd.testing.assert_frame_equal(mm.validate(bad, str(path)).table, mm.validate(bad, ref).table)

    import yaml

    spec = yaml.safe_load(text)
    assert spec["columns"]["sex_cat"] == {"dtype": "string", "categories": ["female", "male"], "missing": 0.0} or \
        spec["columns"]["sex_cat"] == {"dtype": "string", "categories": ["male", "female"], "missing": 0.0}
    # a person accepts the new category, the new column and the missing values, and tightens age
    edited = (text.replace("categories: [", "categories: [unknown, ", 1)
                  .replace("extra_columns: fail", "extra_columns: allow"))
    spec = yaml.safe_load(edited)
    assert spec["columns"]["sex_cat"]["categories"][0] == "unknown"
    spec["columns"]["s2"]["tolerance"] = 0.5
    spec["columns"]["age"]["max"] = 0.0
    spec["columns"]["bmi"].pop("max")
    spec["columns"]["bmi"].pop("min")
    path.write_text(yaml.safe_dump(spec, sort_keys=False))

    report = mm.validate(bad, path)

    assert failures(report) == {("bp", "column"), ("s1", "dtype"), ("age", "range")}
    assert ("bmi", "range") not in set(zip(report.table["column"], report.table["check"]))


@pytest.mark.parametrize("edit, message", [
    (("dtype: float", "dtyp: float"), "line {n} (columns.age.dtyp): unknown key 'dtyp'. Did you mean 'dtype'?"),
    (("dtype: string", "dtype: strng"), "line {n} (columns.sex_cat.dtype): unknown dtype kind 'strng'. "
                                        "Did you mean 'string'?"),
    (("tolerance: 0.01", "tolerance: 5"), "line {n} (tolerance): expected a share between 0 and 1, got 5"),
    (("min: null", "min: lots"), "line {n} (rows.min): expected a number, got 'lots'"),
    (("extra_columns: fail", "extra_columns: maybe"), "line {n} (extra_columns): expected allow or fail, got 'maybe'"),
    (("categories: [", "categories: [[x], "), "line {n} (columns.sex_cat.categories): expected a list of values"),
    (("format: mlops-magics.contract/1", "format: [oops"), "line {next}: not valid YAML (expected ',' or ']'"),
])
def test_a_malformed_contract_names_its_line_and_key(tmp_path, edit, message):
    ref, cur = diabetes()
    path = mm.contract(ref).save(tmp_path / "c.yaml")
    text = path.read_text()
    old, new = edit
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))

    with pytest.raises(mm.MlopsError) as info:
        mm.validate(cur, path)

    assert str(info.value).startswith(f"{path} " + message.format(n=line, next=line + 1)), str(info.value)
    assert len(info.value._render_traceback_()) == 1 and "\n" not in str(info.value)


def test_yaml_words_stay_categories(tmp_path):
    ref = pd.DataFrame({"answer": ["no", "yes", "on"] * 10})
    path = mm.contract(ref).save(tmp_path / "c.yml")
    path.write_text(path.read_text().replace("['no', 'yes', 'on']", "[no, yes, on, off]"))

    assert mm.validate(pd.DataFrame({"answer": ["off"] * 5}), path).passed


# -- MLflow ------------------------------------------------------------------------------------------
@pytest.fixture
def tracked_train(ip, client):
    """A real %%track cell that read X_train: its run logged X_train's profile."""
    ref, cur = diabetes()
    ip.user_ns["X_train"] = ref
    assert run(ip, "%%track\nn_rows = len(X_train)").success
    run(ip, "%track flush")
    [cell] = cell_runs(client)
    return cell.info.run_id, ref, cur


def test_a_runs_uri_reference_is_the_profile_a_tracked_run_logged(tracked_train):
    run_id, ref, cur = tracked_train

    clean = mm.validate(cur, f"runs:/{run_id}/X_train")
    bad = mm.validate(planted(cur), f"runs:/{run_id}/X_train")

    assert clean.passed and clean.reference == f"runs:/{run_id}/X_train"
    assert failures(bad) == PLANTED
    pd.testing.assert_frame_equal(bad.table, mm.validate(planted(cur), ref).table)
    with pytest.raises(mm.MlopsError, match="has no profile 'X_trian'. Did you mean 'X_train'?"):
        mm.validate(cur, f"runs:/{run_id}/X_trian")


def test_log_lands_in_mlflow_with_the_alert_tag(ip, client):
    ref, cur = diabetes()
    ip.user_ns |= {"ref": ref, "bad": planted(cur), "cur": cur}
    assert run(ip, "%%track --name bad\nimport mlops_magics as mm\nmm.validate(bad, ref).log()").success
    assert run(ip, "%%track --name clean\nimport mlops_magics as mm\nmm.validate(cur, ref).log()").success
    run(ip, "%track flush")

    bad_run, clean_run = cell_runs(client)
    metrics, tags = bad_run.data.metrics, bad_run.data.tags
    assert metrics["validation.failed"] == 6
    assert metrics["validation.failed.column"] == 2 and metrics["validation.failed.missing_rate"] == 1
    assert metrics["validation.failed.dtype"] == metrics["validation.failed.range"] == 1
    assert tags[naming.ALERT] == naming.ALERT_VALIDATION
    assert tags[naming.ALERT_REASON].startswith("validation failed: 6 of ")
    assert "bp column" in tags[naming.ALERT_REASON] and "sex_cat categories" in tags[naming.ALERT_REASON]
    logged = json.loads(Path(client.download_artifacts(bad_run.info.run_id, naming.ARTIFACT_VALIDATION)).read_text())
    assert logged["failed"] == 6 and {r["column"] for r in logged["rows"] if not r["passed"]} == {c for c, _ in PLANTED}
    assert clean_run.data.metrics["validation.failed"] == 0 and clean_run.data.metrics["validation.checks"] > 40
    assert naming.ALERT not in clean_run.data.tags


def test_log_outside_a_run_is_a_one_line_error():
    ref, cur = diabetes()
    with pytest.raises(NoActiveRunError, match=r"call report.log\(\) inside a %%track cell") as info:
        mm.validate(cur, ref).log()
    assert len(info.value._render_traceback_()) == 1


# -- %validate ---------------------------------------------------------------------------------------
def test_validate_magic_displays_text_and_html(ip, tmp_path):
    ref, cur = diabetes()
    ip.user_ns |= {"train_df": ref, "today_df": planted(cur)}

    ip.run_line_magic("validate", f"today_df train_df --save-contract {tmp_path / 'c.yaml'}")

    bundle = last_bundle(ip, "text/html")
    assert bundle["text/plain"].startswith("validation failed: 6 of ")
    assert "s2 missing rate     NO" in bundle["text/plain"]
    assert "<b>validation failed: 6 of" in bundle["text/html"] and "&#x27;unknown&#x27;" in bundle["text/html"]
    ip.run_line_magic("validate", f"today_df {tmp_path / 'c.yaml'} --tolerance 0.5")
    text = last_bundle(ip)["text/plain"]  # half the rows may now miss values or be new categories
    assert text.startswith("validation failed: 4 of ")
    assert "missing rate     NO" not in text and "categories     NO" not in text


def test_validate_magic_mistakes(ip):
    from IPython.core.error import UsageError

    ip.user_ns["train_df"] = diabetes()[0]
    with pytest.raises(UsageError, match="no variable 'today_dff'.*Did you mean 'train_df'"):
        ip.run_line_magic("validate", "today_dff train_df")
    with pytest.raises(UsageError, match="%validate: "):
        ip.run_line_magic("validate", "train_df")


# -- the command line, as a real process ------------------------------------------------------------
def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "validate", *argv], capture_output=True, text=True, timeout=120, env=os.environ)


def test_cli_exit_codes(tmp_path):
    ref, cur = diabetes()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    planted(cur).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "ref.json").write_text(mm.profile(ref).to_json())

    passed = cli(str(tmp_path / "cur.parquet"), str(tmp_path / "ref.csv"), "--fail-on-error")
    failed = cli(str(tmp_path / "bad.csv"), str(tmp_path / "ref.json"), "--fail-on-error",
                 "--save-contract", str(tmp_path / "c.yaml"))
    reported = cli(str(tmp_path / "bad.csv"), str(tmp_path / "c.yaml"), "--json")

    assert (passed.returncode, passed.stderr) == (0, "") and passed.stdout.startswith("validation passed: all ")
    assert failed.returncode == 1 and failed.stdout.startswith("validation failed: 6 of ")
    assert reported.returncode == 0  # without --fail-on-error the report is printed, exit 0
    assert json.loads(reported.stdout)["failed"] == 6
    for argv, error in [
        ((str(tmp_path / "bad.csv"), str(tmp_path / "ref.csvv")),
         f"Error: no file {tmp_path}/ref.csvv. Did you mean 'ref.csv'?"),
        ((str(tmp_path / "bad.csv"), str(tmp_path / "ref.csv"), "-t", "2"), "Error: Invalid value for '--tolerance'"),
    ]:
        bad_usage = cli(*argv)
        assert bad_usage.returncode == 2 and bad_usage.stdout == ""
        assert len(bad_usage.stderr.strip().splitlines()) == 1 and bad_usage.stderr.startswith(error), bad_usage.stderr
    (tmp_path / "c.yaml").write_text((tmp_path / "c.yaml").read_text().replace("dtype: float", "dtype: flaot", 1))
    malformed = cli(str(tmp_path / "bad.csv"), str(tmp_path / "c.yaml"), "--fail-on-error")
    assert malformed.returncode == 2 and malformed.stdout == ""
    assert len(malformed.stderr.strip().splitlines()) == 1
    assert "(columns.age.dtype): unknown dtype kind 'flaot'" in malformed.stderr


def test_cli_takes_a_runs_uri(tracked_train, tmp_path):
    run_id, _, cur = tracked_train
    planted(cur).to_csv(tmp_path / "bad.csv", index=False)

    result = cli(str(tmp_path / "bad.csv"), f"runs:/{run_id}/X_train", "--fail-on-error", "--json")

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["reference"] == f"runs:/{run_id}/X_train"
    assert {(r["column"], r["check"]) for r in report["rows"] if not r["passed"]} == PLANTED
