"""``mlops-magics validate``: check new data against a reference's data contract."""

from __future__ import annotations

import click


@click.command("validate", epilog="Exit codes: 0 passed (or failed without --fail-on-error: the report "
                                 "is printed either way); 1 a check failed, with --fail-on-error; "
                                 "2 bad usage (a missing or unreadable file, a malformed contract, a wrong option).")
@click.argument("current")
@click.argument("reference")
@click.option("--tolerance", "-t", type=click.FloatRange(0, 1), metavar="X",
              help="Share of rows allowed outside a range or with unseen categories, and the missing-rate "
                   "rise allowed  [default: 0.01, or the contract's]")
@click.option("--fail-on-error", is_flag=True, help="Exit with status 1 when a check failed.")
@click.option("--save-contract", metavar="PATH", help="Also write the contract used as editable YAML at PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate_command(current: str, reference: str, tolerance: float | None, fail_on_error: bool,
                     save_contract: str | None, as_json: bool) -> None:
    """Check CURRENT data against REFERENCE: columns, dtype kinds, ranges, categories,
    missing rates and row counts.

    CURRENT is a CSV, TSV or Parquet file. REFERENCE is one too, or a profile .json,
    runs:/<run_id>/<data name> (the profile a tracked run logged; store:
    $MLFLOW_TRACKING_URI, else mlflow.db at the project root), or a contract .yaml (--save-contract writes one).
    """
    from ..errors import MlopsError
    from ..monitoring.validate import validate

    try:
        report = validate(current, reference, tolerance=tolerance)
        if save_contract:
            report.save_contract(save_contract)
    except MlopsError as exc:  # exit 2, bad usage: 1 means a failed check
        raise _UsageProblem(str(exc)) from None
    click.echo(report.to_json() if as_json else repr(report))
    if fail_on_error and not report.passed:
        click.get_current_context().exit(1)


class _UsageProblem(click.ClickException):
    """A one-line error that exits 2 (bad usage), without click's usage lines."""

    exit_code = 2


COMMANDS = [validate_command]
