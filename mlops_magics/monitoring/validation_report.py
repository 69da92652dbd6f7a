"""``ValidationReport``: the checks ``mm.validate`` made, the verdict, its display, ``.log()``."""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from .. import _current, naming

COLUMNS = ["column", "check", "passed", "expected", "observed"]
_OK, _BAD = "#2e7d32", "#c62828"


class ValidationReport:
    """What ``mm.validate`` found.

    ``.passed``: every check passed. ``.table``: one row per check (column, check, passed,
    expected, observed); ``.failures``: the failed rows. ``.contract``: what was checked
    (``.save_contract(path)`` writes it as YAML to edit and reuse as the reference).
    ``.log()``: into the run of the tracked cell or job now running.
    """

    def __init__(self, checks, contract, *, data: str = "data", reference: str = "reference") -> None:
        self.contract, self.data, self.reference = contract, data, reference
        self.table = pd.DataFrame([[c.column, c.check, c.passed, c.expected, c.observed] for c in checks],
                                  columns=COLUMNS).astype({"passed": bool})

    @property
    def passed(self) -> bool:
        return bool(self.table["passed"].all())

    @property
    def failures(self) -> pd.DataFrame:
        return self.table[~self.table["passed"]].reset_index(drop=True)

    @property
    def n_failed(self) -> int:
        return int((~self.table["passed"]).sum())

    def failed_by_check(self) -> dict[str, int]:
        """Failed checks per kind of check (``{"range": 2, "column": 1}``)."""
        return dict(Counter(self.failures["check"]))

    @property
    def verdict(self) -> str:
        n = len(self.table)
        if self.passed:
            return f"validation passed: all {n} checks"
        kinds = ", ".join(f"{k} {v}" for k, v in self.failed_by_check().items())
        return f"validation failed: {self.n_failed} of {n} checks ({kinds})"

    def reason(self) -> str:
        """The verdict and what failed, for the alert tag."""
        what = [f"{r.column} {r.check}" for r in self.failures.itertuples(index=False)]
        return f"{self.verdict}: {', '.join(what)}"

    def save_contract(self, path: str | os.PathLike) -> Path:
        """Write the contract these checks used as editable YAML (a reference for next time)."""
        return self.contract.save(path)

    # -- MLflow ------------------------------------------------------------------------------------
    def log(self) -> None:
        """Metrics ``validation.failed`` (failed checks), ``validation.failed.<check>`` per
        kind of check and ``validation.checks`` on the run being tracked; tags it
        ``mlops.alert=validation`` with the reason when a check failed (so ``--on-alert``
        schedules react). Also the table as ``mlops/validation.json``."""
        run = _current.require_run("report.log()")
        failed = self.failed_by_check()
        run.log_metric(naming.METRIC_VALIDATION_FAILED, float(self.n_failed))
        run.log_metric(naming.METRIC_VALIDATION_CHECKS, float(len(self.table)))
        for check in dict.fromkeys(self.table["check"]):
            run.log_metric(naming.metric_validation_failed(check), float(failed.get(check, 0)))
        if not self.passed:
            run.alert(naming.ALERT_VALIDATION, self.reason())
        run.log_text(naming.ARTIFACT_VALIDATION, self.to_json())

    def to_json(self) -> str:
        return json.dumps({"verdict": self.verdict, "passed": self.passed, "failed": self.n_failed,
                           "checks": len(self.table), "data": self.data, "reference": self.reference,
                           "tolerance": self.contract.tolerance,
                           "rows": self.table.to_dict(orient="records")}, allow_nan=False, default=str)

    # -- display -------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [self.verdict, f"{self.data} against {self.reference}"]
        if not self.passed:
            lines.append(_text(self.failures))
        ok = self.table[self.table["passed"]]
        if len(ok):
            lines.append(f"passed: {_passed_summary(ok)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = _OK if self.passed else _BAD
        sources = html.escape(f"{self.data} against {self.reference}")
        failed = _html_table(self.failures, bad=True) if not self.passed else ""
        ok = self.table[self.table["passed"]]
        passed = (f"<details><summary>passed: {html.escape(_passed_summary(ok))}</summary>"
                  f"{_html_table(ok, bad=False)}</details>") if len(ok) else ""
        return (f"<div class='mlops-magics-validation' style='border-left:3px solid {color};padding:4px 8px'>"
                f"<div><b>{html.escape(self.verdict)}</b> <span style='color:#666'>{sources}</span></div>"
                f"{failed}{passed}</div>")


def _passed_summary(ok: pd.DataFrame) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(ok["check"]).items())


def _text(table: pd.DataFrame) -> str:
    shown = table.assign(passed=table["passed"].map({True: "yes", False: "NO"}))
    return shown.to_string(index=False)


def _html_table(table: pd.DataFrame, bad: bool) -> str:
    head = "".join(f"<th style='text-align:left'>{c}</th>" for c in COLUMNS)
    style = f" style='color:{_BAD};font-weight:bold'" if bad else ""
    rows = []
    for r in table.itertuples(index=False):
        cells = [html.escape(str(r.column)), html.escape(r.check),
                 f"<span{style}>{'yes' if r.passed else 'no'}</span>",
                 html.escape(r.expected), html.escape(r.observed)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
