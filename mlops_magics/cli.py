"""``mlops-magics``: the command line, a thin click shim over the library.

Imports stay inside the commands so that ``mlops-magics --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import sys

import click

from . import __version__, naming
from .errors import one_line

_RUN_KINDS = (naming.KIND_CELL, naming.KIND_JOB)  # what `runs` lists; session runs only group cells
_MAX_METRICS = 4


class _Cli(click.Group):
    """A group whose usage errors are one line, like every other error of ours."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "mlops-magics"
            click.echo(f"Error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlops-magics")
def cli() -> None:
    """MLOps from inside the notebook: tracked cells and notebook jobs as MLflow runs.

    Records go to $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory.
    """


@cli.command()
@click.option("--experiment", "-e", metavar="NAME",
              help="Experiment to list (default: $MLFLOW_EXPERIMENT_NAME or Default).")
@click.option("-n", "count", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many runs to show, newest first.")
@click.option("--tracking-uri", metavar="URI",
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db here).")
def runs(experiment: str | None, count: int, tracking_uri: str | None) -> None:
    """List the most recent tracked runs (cells and jobs) of an experiment."""
    from . import locations
    from .display import Table

    uri = locations.tracking_uri(tracking_uri)
    name = locations.experiment_name(experiment)
    found = _recent_runs(_client(uri), name, count)
    if not found:
        click.echo(f"no tracked runs yet in experiment {name!r} at {locations.display_uri(uri)}: "
                   "put %%track on a notebook cell")
        return
    rows = [[r.info.run_name or "", r.info.status, r.info.run_id, _time(r.info.start_time),
             r.data.tags.get(naming.KIND, ""), _metrics(r.data.metrics)] for r in found]
    table = Table(["run", "status", "run id", "started", "kind", "metrics"], rows,
                  caption=f"last {len(rows)} tracked runs in {name!r} at {locations.display_uri(uri)}")
    click.echo(repr(table))


@cli.command()
@click.option("--output-dir", "-o", default="demo-output", show_default=True,
              type=click.Path(file_okay=False, writable=True),
              help="Folder for the executed copies of the notebook.")
def demo(output_dir: str) -> None:
    """Run notebooks/train.ipynb a few times with different C and show the runs it recorded."""
    from .demo import DemoError, run_demo

    try:
        run_demo(output_dir, echo=click.echo)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--tracking-uri", metavar="URI",
              help="Store to show (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db here).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def ui(tracking_uri: str | None, port: int) -> None:
    """Open the MLflow UI on the tracking store (on 127.0.0.1)."""
    import os
    import shutil
    from pathlib import Path

    from . import locations

    uri = locations.tracking_uri(tracking_uri)
    beside = Path(sys.executable).with_name("mlflow")  # the mlflow of this environment first
    exe = str(beside) if beside.exists() else shutil.which("mlflow")
    argv = ([exe] if exe else [sys.executable, "-m", "mlflow"])
    argv += ["ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    click.echo(f"MLflow UI on http://127.0.0.1:{port} for {locations.display_uri(uri)} (Ctrl-C stops it)")
    sys.stdout.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise click.ClickException(f"could not start the MLflow UI: {exc}") from None


@cli.command()
@click.option("--tracking-uri", metavar="URI", help="Only this URI (default: every URI with pending records).")
@click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="Seconds to wait for MLflow in all.")
@click.option("--retry-rejected", is_flag=True,
              help="First put back in line the records MLflow refused as invalid (see `mlops-magics journal`).")
def sync(tracking_uri: str | None, timeout: float, retry_rejected: bool) -> None:
    """Deliver what the local journal holds to MLflow (after an outage or a killed kernel).

    Runs left open by a process that died are ended FAILED with mlops.failure=kernel_died.
    Exits 1 when records are still pending at the end.
    """
    from . import locations
    from .journal.sync import JournalError
    from .journal.sync import sync as deliver

    told: list[str] = []

    def tell(line: str) -> None:
        told.append(line)
        click.echo(line, err=True)

    try:
        left = deliver(tracking_uri=tracking_uri, timeout=timeout, retry_rejected=retry_rejected, tell=tell)
    except JournalError as exc:
        raise click.ClickException(str(exc)) from None
    if not left and told:  # a corrupt journal set aside: that line says it all
        return
    if not left:
        click.echo(f"nothing to deliver: the journal at {locations.journal_path()} is empty")
        return
    for uri, count in left.items():
        state = "all records delivered" if count == 0 else f"{count} records still pending"
        click.echo(f"{locations.display_uri(uri)}: {state}")
    if any(left.values()):
        raise click.ClickException("MLflow did not take everything; records stay in the journal: "
                                   "run `mlops-magics sync` again when the server answers")


@cli.command()
@click.option("--tracking-uri", metavar="URI",
              help="Store to check (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db here).")
def status(tracking_uri: str | None) -> None:
    """Who delivers the local journal to MLflow (pid, since when), and what waits.

    A delivery process that died while records wait is replaced.
    """
    from . import locations
    from .journal.deliverer import report

    for label, text in report(locations.journal_path(), locations.tracking_uri(tracking_uri)):
        click.echo(f"{label}: {text}")


@cli.command("drift", epilog="Exit codes: 0 compared; 1 the data set drifted (with --fail-on-drift); "
                              "2 bad usage (a missing file, no column in common, a wrong option).")
@click.argument("reference")
@click.argument("current")
@click.option("--method", "-m", default="auto", show_default=True, metavar="M",
              help="auto, psi, kl, js, wasserstein, ks or chi2.")
@click.option("--threshold", "-t", metavar="X",
              help="One number for every method, or METHOD=X,... (missing=X: the missing-rate signal).")
@click.option("--features", "-f", metavar="A,B", help="Compare only these columns.")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="The data set drifts when at least this share of the features drift.")
@click.option("--correction", metavar="C", help="Multiple-testing correction for ks/chi2: bonferroni or bh.")
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 1 when the data set drifted.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift_command(reference: str, current: str, method: str, threshold: str | None, features: str | None,
                  share: float, correction: str | None, fail_on_drift: bool, as_json: bool) -> None:
    """Compare CURRENT data with REFERENCE data, feature by feature.

    Each is a CSV, TSV or Parquet file, a profile .json, or runs:/<run_id>/<data name>:
    the profile a tracked run logged (store: $MLFLOW_TRACKING_URI, else ./mlflow.db).
    """
    from .errors import MlopsError
    from .monitoring.drift import drift

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


@cli.command(epilog="Exit codes: 0 at least one point finished; 1 every point failed; 2 nothing ran "
                    "(bad flags, unknown parameter or value, no Dask scheduler at --cluster).")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("--grid", "grid", multiple=True, required=True, metavar="NAME=V1,V2",
              help="A parameter and its values, converted to the type of the notebook's default; commas "
                   "inside brackets or quotes stay in a value. Repeat for more: every combination runs.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Processes of the local Dask cluster (default: the number of CPUs).")
@click.option("--cluster", metavar="ADDRESS", help="A running Dask scheduler to use instead, e.g. tcp://host:8786.")
@click.option("--experiment", "-e", metavar="NAME", help="MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or Default).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SEC",
              help="Seconds any one cell may run.")
@click.option("--kernel", "-k", metavar="NAME", help="Jupyter kernel (default: the notebook's).")
@click.option("--metric", metavar="NAME",
              help="Metric that ranks the points (default: f1 if logged, else a well-known one all points logged).")
@click.option("--lower-is-better", is_flag=True, help="The smallest --metric is best (a loss, an error).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def sweep(notebook, grid, workers, cluster, experiment, timeout, kernel, metric, lower_is_better, no_progress):
    """Run NOTEBOOK once per point of a parameter grid, in parallel: one sweep run, one job run per point.

    Prints the points sorted by the metric, best marked *; the best job's run id is tagged on
    the sweep run (mlops.sweep.best_run).
    """
    from ._cli_jobs import interruptible
    from .errors import MlopsError
    from .runner.sweep import parse_grid, run_sweep

    if workers and cluster:
        raise click.UsageError("--workers sizes the local cluster: with --cluster the scheduler's workers run")
    try:
        with interruptible("sweep"):
            result = run_sweep(notebook, parse_grid(grid), workers=workers, cluster=cluster, experiment=experiment,
                               timeout=timeout, kernel=kernel, metric=metric,
                               greater_is_better=not lower_is_better, progress=not no_progress)
    except MlopsError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(repr(result))
    if not result.finished:
        click.echo("every point failed", err=True)
        sys.exit(1)


# -- helpers -------------------------------------------------------------------------
def _client(uri: str):
    """An MlflowClient on ``uri``; a missing SQLite file is an error, not a new empty store."""
    from . import locations

    hint = "track a cell or run `mlops-magics demo` first, or pass --tracking-uri"
    try:
        return locations.reading_client(uri, click.ClickException, hint)
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.ClickException(f"cannot use tracking URI {locations.display_uri(uri)}: {one_line(exc)}") from None


def _recent_runs(client, experiment: str, count: int) -> list:
    """The newest ``count`` cell and job runs of ``experiment``; MLflow errors as one line."""
    try:
        with _quick_http():
            return _search(client, experiment, count)
    except click.ClickException:
        raise
    except Exception as exc:
        from . import locations

        if _unreachable(exc):
            where = locations.display_uri(client.tracking_uri)
            raise click.ClickException(f"cannot reach MLflow at {where}: is the server running?") from None
        raise click.ClickException(f"MLflow could not list runs: {one_line(exc)}") from None


def _search(client, experiment: str, count: int) -> list:
    from .errors import did_you_mean

    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise click.ClickException(f"no experiment named {experiment!r}.{did_you_mean(experiment, names)}"
                                   f" Experiments here: {', '.join(sorted(names)) or 'none'}")
    found = []
    for kind in _RUN_KINDS:  # MLflow's filter has no IN for tags
        found += client.search_runs([exp.experiment_id], f"tags.`{naming.KIND}` = '{kind}'",
                                    max_results=count, order_by=["attributes.start_time DESC"])
    found.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    return found[:count]


@contextlib.contextmanager
def _quick_http():
    """A listing should fail in seconds, not after MLflow's default 7 retries with backoff."""
    import os

    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
    old = {k: os.environ.get(k) for k in wanted}
    for k, v in wanted.items():
        os.environ.setdefault(k, v)  # the user's own settings win
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)


def _metrics(metrics: dict[str, float]) -> str:
    own = sorted(k for k in metrics if not k.startswith("system."))
    keys = (own or sorted(metrics))[:_MAX_METRICS]
    more = len(own) - len(keys) if own else 0
    text = ", ".join(f"{k}={metrics[k]:.4g}" for k in keys)
    return text + (f", +{more} more" if more > 0 else "")


def _time(ms: int | None) -> str:
    import datetime

    if not ms:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _unreachable(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, OSError) or any(
        s in text for s in ("Max retries exceeded", "Connection refused", "Read timed out", "Name or service not known"))


def _add_job_commands() -> None:
    from ._cli_jobs import reproduce, run

    cli.add_command(run)
    cli.add_command(reproduce)


_add_job_commands()


def _add_schedule_commands() -> None:
    from ._cli_schedule import promote, schedule, scheduler

    cli.add_command(schedule)
    cli.add_command(scheduler)
    cli.add_command(promote)


_add_schedule_commands()


def _add_journal_commands() -> None:
    from ._cli_journal import journal

    cli.add_command(journal)


_add_journal_commands()


def main(argv: list[str] | None = None) -> None:
    """Console script entry point."""
    from .runner._fast_imports import skip_iri_grammar

    skip_iri_grammar()  # this process only runs notebooks: nbformat loads 0.75 s faster
    cli.main(args=argv, prog_name="mlops-magics")


if __name__ == "__main__":
    main()
