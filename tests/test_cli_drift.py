"""``mlops-magics drift`` on CSV / Parquet files, profile JSON and runs:/ URIs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mlops_magics as mm
from mlops_magics import naming
from conftest import invoke, one_line_error


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=3000), "y": rng.normal(size=3000), "s": rng.choice(list("ab"), 3000)})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    ref.assign(y=ref["y"] + 0.01).to_parquet(tmp_path / "same.parquet")
    ref.assign(x=ref["x"] + 1, s=rng.choice(list("abc"), 3000)).to_parquet(tmp_path / "moved.parquet")
    return tmp_path, ref


def test_drift_prints_the_verdict_and_table(files):
    folder, _ = files

    result = invoke("drift", str(folder / "ref.csv"), str(folder / "moved.parquet"))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "2 of 3 features drifted (67%): dataset drift yes"
    assert lines[1].split()[:5] == ["feature", "method", "score", "threshold", "drifted"]
    assert lines[2].split()[:2] == ["x", "wasserstein"] and lines[2].split()[4] == "yes"
    assert "new categories 'c'" in result.stdout


def test_fail_on_drift_exits_1_only_on_dataset_drift(files):
    folder, _ = files
    ref = str(folder / "ref.csv")

    assert invoke("drift", ref, str(folder / "moved.parquet"), "--fail-on-drift").exit_code == 1
    calm = invoke("drift", ref, str(folder / "same.parquet"), "--fail-on-drift")
    assert calm.exit_code == 0 and calm.stdout.startswith("0 of 3 features drifted (0%): dataset drift no")


def test_options_reach_the_library(files):
    folder, _ = files
    ref, moved = str(folder / "ref.csv"), str(folder / "moved.parquet")

    result = invoke("drift", ref, moved, "--method", "psi", "--threshold", "psi=5", "--features", "x,s", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(r["feature"], r["method"], r["threshold"], r["drifted"]) for r in report["rows"]] == [
        ("x", "psi", 5.0, False), ("s", "psi", 5.0, False)]
    assert invoke("drift", ref, moved, "-t", "0.0", "--share", "1", "--fail-on-drift").exit_code == 1


def test_profiles_and_runs_uris_are_inputs(files, client):
    folder, ref = files
    (folder / "ref.json").write_text(mm.profile(ref).to_json())
    run_id = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    client.log_text(run_id, mm.profile(ref).to_json(), naming.artifact_profile("train"))

    from_json = invoke("drift", str(folder / "ref.json"), str(folder / "moved.parquet"))
    from_run = invoke("drift", f"runs:/{run_id}/train", str(folder / "moved.parquet"))

    assert from_json.exit_code == 0 and from_json.stdout.startswith("2 of 3 features drifted")
    assert from_run.stdout == from_json.stdout


@pytest.mark.parametrize("argv, expected", [
    (["ref.csv", "moved.parqet"], "Error: no file {folder}/moved.parqet. Did you mean 'moved.parquet'?"),
    (["ref.csv", "moved.parquet", "-m", "wasserstien"],
     "Error: unknown drift method 'wasserstien'. Did you mean 'wasserstein'? "
     "Methods: auto, psi, kl, js, wasserstein, ks, chi2"),
    (["ref.csv", "moved.parquet", "-t", "ks=low"],
     "Error: Invalid value for '--threshold': 'ks=low' is not a number or METHOD=X,..."),
    (["ref.csv", "moved.parquet", "-f", "x,z"], "Error: no feature 'z' in either data set."),
    (["ref.csv", "broken.parquet"], "Error: cannot read {folder}/broken.parquet:"),
])
def test_mistakes_are_one_line_errors(files, argv, expected):
    folder, _ = files
    (folder / "broken.parquet").write_text("not parquet")
    argv = [str(folder / a) if a.endswith((".csv", ".parquet", ".parqet")) else a for a in argv]

    line = one_line_error(invoke("drift", *argv))

    assert line.startswith(expected.format(folder=folder)), line


def test_unknown_file_type_is_named(files):
    folder, _ = files
    (folder / "data.xlsx").write_text("")

    line = one_line_error(invoke("drift", str(folder / "ref.csv"), str(folder / "data.xlsx")))

    assert line == f"Error: cannot read {folder}/data.xlsx: expected .csv, .tsv, .parquet, or a profile .json"


def test_bad_usage_exits_2_and_never_suggests_the_other_file(files):
    folder, _ = files
    (folder / "other.csv").write_text("c,d\n1,2\n3,4\n")

    missing = invoke("drift", str(folder / "ref.csv"), str(folder / "ref.cs"))
    assert missing.exit_code == 2  # 1 means drift
    assert "ref.csv" not in one_line_error(missing)  # the reference itself is no candidate for current

    disjoint = invoke("drift", str(folder / "ref.csv"), str(folder / "other.csv"), "--fail-on-drift")
    assert disjoint.exit_code == 2
    assert one_line_error(disjoint).startswith("Error: no column in common: reference has ")
