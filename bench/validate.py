"""Validation speed: mm.validate against a profile next to a Pandera schema built by hand.

Run: .venv/bin/python bench/validate.py [--rows 1000000] [--repeat 3]

On the same data in one process: a reference of ``rows`` rows (10 float, 2 integer and
3 string columns) is profiled once (what ``%%track`` logs); ``mm.validate`` checks a
current frame of ``rows`` rows against that profile: columns present and no extras, dtype
kind, share of rows outside each range, share of unseen categories, missing-rate rise,
row-count bounds. The anchor is a ``pandera.DataFrameSchema`` written by hand for the same
checks with the same bounds (the allowed shares ``mm.validate`` reports), vectorised
checks, ``strict=True``, ``lazy=True`` to collect every failure. Both run on a clean frame
and on one with six planted violations, and must agree on what fails. Ratio: Pandera's
time over ours. Never asserted in tests: machines are noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from _timing import best_of

FLOATS, INTS, STRINGS = 10, 2, 3


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"f{i}": rng.normal(i, 1 + i / 10, rows) for i in range(FLOATS)}
    data |= {f"i{i}": rng.integers(0, 100 * (i + 1), rows) for i in range(INTS)}
    words = [f"w{k:02d}" for k in range(40)]
    data |= {f"s{i}": rng.choice(words[: 5 + 15 * i], rows) for i in range(STRINGS)}
    out = pd.DataFrame(data)
    out.loc[rng.random(rows) < 0.01, "f0"] = np.nan  # a column with missing values
    return out


def planted(cur: pd.DataFrame) -> pd.DataFrame:
    bad = cur.drop(columns=["f9"]).assign(extra=1.0)
    n = len(bad)
    bad.loc[: n // 10, "f1"] = 1e6  # out of range
    bad.loc[: n // 20, "s0"] = "never seen"  # unseen category
    bad.loc[: n // 5, "f2"] = np.nan  # missing-rate rise
    bad["i1"] = bad["i1"].astype(str)  # dtype changed
    return bad


def pandera_schema(report, rows: int):
    """The same checks as ``report``'s, by hand: its bounds and allowed shares for ``rows`` rows."""
    import pandera.pandas as pa

    from mlops_magics.monitoring.validate import _bound

    c, n = report.contract, rows
    columns = {}
    for name, rule in c.columns.items():
        checks = []
        if rule.min is not None:
            lo, hi, a = rule.min, rule.max, _bound(c.tolerance + 2 / (c.reference_rows + 1), n)
            checks.append(pa.Check(lambda s, lo=lo, hi=hi, a=a: not pd.api.types.is_numeric_dtype(s)  # dtype's job
                                   or ((s < lo) | (s > hi)).mean() <= a, name=f"{name} range"))
        if rule.categories is not None:
            cats, a = rule.categories, _bound(c.tolerance + rule.other, n)
            checks.append(pa.Check(lambda s, c=cats, a=a: (s.notna() & ~s.isin(c)).mean() <= a,
                                   name=f"{name} categories"))
        a = _bound(rule.missing + c.tolerance, n)
        checks.append(pa.Check(lambda s, a=a: s.isna().mean() <= a, name=f"{name} missing rate", ignore_na=False))
        dtype = {"float": "float64", "integer": "int64", "string": str}[rule.dtype]
        columns[name] = pa.Column(dtype, checks=checks, nullable=True)
    lo, hi = report.contract.rows_min, report.contract.rows_max
    return pa.DataFrameSchema(columns, strict=True, checks=[pa.Check(lambda df: lo <= len(df) <= hi, name="rows")])


def pandera_failures(schema, data: pd.DataFrame) -> set[tuple[str, str]]:
    import pandera.errors as pe

    try:
        schema.validate(data, lazy=True)
    except pe.SchemaErrors as exc:
        found = set()
        for row in exc.failure_cases.itertuples():
            check, column = str(row.check), str(row.column)
            if check == "column_in_schema":
                found.add((str(row.failure_case), "column"))
            elif check == "column_in_dataframe":
                found.add((str(row.failure_case), "column"))
            elif check.startswith("dtype("):
                found.add((column, "dtype"))
            elif " " in check:
                found.add((column, check.split(" ", 1)[1]))
        return found
    return set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pandera

    import mlops_magics as mm

    ref, cur = frame(args.rows, 0), frame(args.rows, 1)
    bad = planted(cur)
    start = time.perf_counter()
    prof = mm.profile(ref)
    took = time.perf_counter() - start
    print(f"{args.rows:,} rows x {ref.shape[1]} columns; reference profiled once in {took:.2f} s")
    rules = mm.contract(prof, rows=(1, 2 * args.rows))

    t_ours, report = best_of(lambda: mm.validate(cur, rules), args.repeat)
    t_bad, bad_report = best_of(lambda: mm.validate(bad, rules), args.repeat)
    t_profile, _ = best_of(lambda: mm.validate(cur, prof), args.repeat)
    schema = pandera_schema(report, args.rows)
    t_pa, pa_clean = best_of(lambda: pandera_failures(schema, cur), args.repeat)
    t_pa_bad, pa_bad = best_of(lambda: pandera_failures(schema, bad), args.repeat)

    ours_bad = set(zip(bad_report.failures["column"], bad_report.failures["check"]))
    print(f"pandera {pandera.__version__}; checks per frame: {len(report.table)}")
    print(f"clean frame   mm.validate {t_ours:7.3f} s  passed={report.passed}   "
          f"pandera {t_pa:7.3f} s  failures={len(pa_clean)}   ratio {t_pa / t_ours:5.1f}x")
    print(f"planted frame mm.validate {t_bad:7.3f} s  failed={len(ours_bad)}    "
          f"pandera {t_pa_bad:7.3f} s  failures={len(pa_bad)}   ratio {t_pa_bad / t_bad:5.1f}x")
    print(f"mm.validate against the Profile itself (contract built each call): {t_profile:.3f} s")
    agree = ours_bad == pa_bad and report.passed and not pa_clean
    differ = f"  ours only {ours_bad - pa_bad}  pandera only {pa_bad - ours_bad}"
    print(f"same verdicts: {agree}" + ("" if agree else differ))


if __name__ == "__main__":
    main()
