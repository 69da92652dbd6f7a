"""``mlops-magics drift``: compare two data sets feature by feature."""

from __future__ import annotations

import click

from ..naming import DRIFT_SHARE


@click.command("drift", epilog="Exit codes: 0 compared; 1 the data set drifted (with --fail-on-drift); "
                              "2 bad usage (a missing file, no column in common, a wrong option).")
@click.argument("reference")
@click.argument("current")
@click.option("--method", "-m", default="auto", show_default=True, metavar="M",
              help="auto, psi, kl, js, wasserstein, ks or chi2.")
@click.option("--threshold", "-t", metavar="X",
              help="One number for every method, or METHOD=X,... (missing=X: the missing-rate signal).")
@click.option("--features", "-f", metavar="A,B", help="Compare only these columns.")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True), default=DRIFT_SHARE, show_default=True,
              help="The data set drifts when at least this share of the features drift.")
@click.option("--correction", metavar="C", help="Multiple-testing correction for ks/chi2: bonferroni or bh.")
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 1 when the data set drifted.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift_command(reference: str, current: str, method: str, threshold: str | None, features: str | None,
                  share: float, correction: str | None, fail_on_drift: bool, as_json: bool) -> None:
    """Compare CURRENT data with REFERENCE data, feature by feature.

    Each is a CSV, TSV or Parquet file, a profile .json, or runs:/<run_id>/<data name>:
    the profile a tracked run logged (store: $MLFLOW_TRACKING_URI, else mlflow.db at the
    project root; see `mlops-magics status`).
    """
    from ..errors import MlopsError
    from ..monitoring.drift import drift

    try:
        report = drift(reference, current, method=method, threshold=_threshold(threshold),
                       features=features, share=share, correction=correction)
    except MlopsError as exc:  # exit 2, bad usage: 1 means drift
        raise _UsageProblem(str(exc)) from None
    click.echo(report.to_json() if as_json else repr(report))
    if fail_on_drift and report.drifted:
        click.get_current_context().exit(1)


class _UsageProblem(click.ClickException):
    """A one-line error that exits 2 (bad usage), without click's usage lines."""

    exit_code = 2


def _threshold(text: str | None) -> float | dict[str, float] | None:
    """``0.2`` or ``psi=0.2,ks=0.01``."""
    if text is None:
        return None
    try:
        if "=" not in text:
            return float(text)
        pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
        return {key.strip(): float(value) for key, value in pairs}
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number or METHOD=X,...", param_hint="'--threshold'") from None


COMMANDS = [drift_command]
