"""``mlops-magics run``, ``reproduce`` and ``sweep``: thin click commands over ``runner``."""

from __future__ import annotations

import contextlib
import os
import sys

import click

_EXIT_HELP = ("Exit codes: 0 finished; 1 a cell raised; 2 bad usage (unknown parameter, bad value); "
              "124 a cell timed out; 130 stopped by Ctrl-C or SIGTERM; 138 the kernel died (out of memory, os._exit).")
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def _stop_on_signals():
    """SIGINT and SIGTERM stop a job as Ctrl-C does: a KeyboardInterrupt here (the main thread).

    While the job's run is being ended a second signal is ignored; a third quits at once.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere Ctrl-C is not ours to take
        return
    seen = [0]

    def stop(signum, frame):
        seen[0] += 1
        name = signal.Signals(signum).name
        if seen[0] == 1:
            raise KeyboardInterrupt(f"stopped by {name}")
        if seen[0] >= 3:
            os._exit(EXIT_INTERRUPTED)
        os.write(2, f"{name}: ending the job's run first ({name} again to quit at once)\n".encode())

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def interruptible(what: str):
    """Run a job or sweep so that SIGINT / SIGTERM end it (its runs recorded ``interrupted``)
    and the command exits 130."""
    try:
        with _stop_on_signals():
            yield
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            _report(result)
        else:
            click.echo(f"{what} interrupted ({exc or 'KeyboardInterrupt'})", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _load_yaml(text: str, where: str) -> dict:
    import yaml

    from ..errors import first_line

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.UsageError(f"{where} is not valid YAML: {first_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise click.UsageError(f"{where} must be a mapping of parameter names to values")
    return data


def _describe(notebook: str) -> None:
    from ..display import Table
    from ..runner.parameters import read_notebook_parameters

    _, declared = read_notebook_parameters(notebook)
    if declared is None:
        click.echo(f"{notebook} has no cell tagged 'parameters': it takes no parameters")
        return
    rows = [[p.name, p.type_name, p.source, p.help] for p in declared.values()]
    click.echo(repr(Table(["name", "type", "default", "help"], rows, caption=f"parameters of {notebook}")))


@click.command(epilog=_EXIT_HELP)
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--parameter", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter; VALUE is converted to the type of the notebook's default. Repeatable.")
@click.option("-y", "--yaml", "yaml_text", metavar="YAML", help="Parameters as a YAML mapping.")
@click.option("-f", "--file", "yaml_file", type=click.Path(exists=True, dir_okay=False),
              help="Parameters from a YAML file.")
@click.option("--experiment", "-e", metavar="NAME", help="MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or Default).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Where the executed notebook goes.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SEC",
              help="Seconds any one cell may run.")
@click.option("--kernel", "-k", metavar="NAME", help="Jupyter kernel (default: the notebook's).")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Re-runs after a timeout or a dead kernel (never after a cell error).")
@click.option("--describe", is_flag=True, help="List the notebook's parameters, defaults and types, and exit.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run(notebook, params, yaml_text, yaml_file, experiment, output, timeout, kernel, retries, describe, no_progress):
    """Run NOTEBOOK as a parameterised job: a fresh kernel, one MLflow run (mlops.kind=job).

    Parameters come from -f, then -y, then -p (later wins); names the notebook does not
    declare are refused before any kernel starts.
    """
    from ..errors import MlopsError
    from ..runner.run import run_notebook

    if describe:
        _describe(notebook)
        return
    given = {}
    if yaml_file:
        with open(yaml_file, encoding="utf-8") as f:
            given.update(_load_yaml(f.read(), yaml_file))
    if yaml_text:
        given.update(_load_yaml(yaml_text, "-y"))
    texts = list(params)
    given = {k: v for k, v in given.items() if k not in dict(texts)}
    try:
        with interruptible("job"):
            result = run_notebook(notebook, given, texts=texts, experiment=experiment, output=output,
                                  timeout=timeout, kernel=kernel, retries=retries, progress=not no_progress)
    except MlopsError as exc:
        raise click.UsageError(str(exc)) from None
    _report(result)
    sys.exit(result.exit_code)


def _report(result) -> None:
    run_id = result.run_id or f"(waiting in the journal; key {result.key[:8]})"
    if result.failure is None:
        click.echo(f"job finished: run {run_id}; output {result.output_path}")
        return
    where = f" at cell {result.failed_cell}" if result.failed_cell is not None else ""
    click.echo(f"job failed ({result.failure}){where}: {result.error}; run {run_id}; output {result.output_path}",
               err=True)


@click.command()
@click.argument("run_id")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-9, show_default=True,
              help="Relative tolerance for metrics; data fingerprints must match exactly.")
@click.option("--use-current", is_flag=True, help="Run the notebook as it is now even if it changed since.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SEC", help="Seconds any one cell may run.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def reproduce(run_id, rtol, use_current, timeout, no_progress):
    """Re-run job RUN_ID with its recorded parameters; compare data and metrics.

    Exits 0 only when every data fingerprint matches and every metric is within --rtol.
    """
    from ..display import Table
    from ..errors import MlopsError
    from ..runner.reproduce import reproduce as again

    try:
        result = again(run_id, rtol=rtol, use_current=use_current, timeout=timeout, progress=not no_progress)
    except MlopsError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [[c.what, c.recorded, c.now, "same" if c.ok else "DIFFERENT"] for c in result.checks]
    click.echo(repr(Table(["", "recorded", "re-run", "verdict"], rows,
                          caption=f"run {run_id} re-run as {result.new_run_id}")))
    if result.reproduced:
        click.echo("reproduced: same data, same metrics")
        return
    click.echo(f"NOT reproduced: {result.why_not()}", err=True)
    sys.exit(1)


@click.command(epilog="Exit codes: 0 at least one point finished; 1 every point failed; 2 nothing ran "
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
    from ..errors import MlopsError
    from ..runner.sweep import parse_grid, run_sweep

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


COMMANDS = [run, reproduce, sweep]
