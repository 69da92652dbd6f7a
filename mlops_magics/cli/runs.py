"""``mlops-magics runs``, ``ui`` and ``demo``: what the store holds, the MLflow UI on it, the demo."""

from __future__ import annotations

import sys

import click

from .. import naming
from ..errors import one_line

_RUN_KINDS = (naming.KIND_CELL, naming.KIND_JOB)  # what `runs` lists; session runs only group cells
_MAX_METRICS = 4


@click.command()
@click.option("--experiment", "-e", metavar="NAME",
              help="Experiment to list (default: $MLFLOW_EXPERIMENT_NAME or Default).")
@click.option("-n", "count", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many runs to show, newest first.")
@click.option("--tracking-uri", metavar="URI",
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlflow.db at the project root).")
def runs(experiment: str | None, count: int, tracking_uri: str | None) -> None:
    """List the most recent tracked runs (cells and jobs) of an experiment."""
    from .. import locations
    from ..display import Table

    uri = locations.tracking_uri(tracking_uri)
    name = locations.experiment_name(experiment)
    found = _recent_runs(uri, name, count)
    if not found:
        click.echo(f"no tracked runs yet in experiment {name!r} at {locations.display_uri(uri)}: "
                   "put %%track on a notebook cell")
        return
    rows = [[r.run_name, r.status, r.run_id, _time(r.start_time), r.tags.get(naming.KIND, ""), _metrics(r.metrics)]
            for r in found]
    table = Table(["run", "status", "run id", "started", "kind", "metrics"], rows,
                  caption=f"last {len(rows)} tracked runs in {name!r} at {locations.display_uri(uri)}")
    click.echo(repr(table))


@click.command()
@click.option("--output-dir", "-o", default="demo-output", show_default=True,
              type=click.Path(file_okay=False, writable=True),
              help="Folder for the executed notebooks, the charts and index.html.")
@click.option("--ui-url", metavar="URL",
              help="MLflow UI serving this store, to link run ids from index.html (default: the tracking "
                   "server, else `mlops-magics ui` at http://127.0.0.1:5000 when it is running).")
def demo(output_dir: str, ui_url: str | None) -> None:
    """The whole loop on this project's store, in a few minutes.

    A sweep of notebooks/train.ipynb over C (each run logs its model against a dummy baseline,
    F1 by tumour size band and feature importance); the best model promoted to champion and the
    runner-up to challenger, each after promotion's checks; on a simulated clock, the monitor
    notebook on a clean batch and on a drifted one (validation, drift, champion vs challenger);
    the drift alert retraining once on the old data plus the drifted batch, promoted if it
    passes its checks and beats the champion. Writes the executed notebooks, the charts and an
    index.html to --output-dir.
    """
    from ..demo import DemoError, run_demo

    try:
        run_demo(output_dir, echo=click.echo, ui_url=ui_url)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--tracking-uri", metavar="URI",
              help="Store to show (default: $MLFLOW_TRACKING_URI, else mlflow.db at the project root).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--experiment", "-e", metavar="NAME",
              help="Experiment to open (default: $MLFLOW_EXPERIMENT_NAME or Default).")
def ui(tracking_uri: str | None, port: int, experiment: str | None) -> None:
    """Open the MLflow UI on the tracking store (on 127.0.0.1), at the experiment's runs in the
    model-training view: cells and jobs as rows, their metrics and params as columns."""
    import os
    import shutil
    from pathlib import Path

    from .. import locations
    from ..models import experiment_view

    uri = locations.tracking_uri(tracking_uri)
    name = locations.experiment_name(experiment)
    try:
        experiment_id = experiment_view.prepare(locations.reading_client(uri, click.ClickException), name)
    except Exception as exc:  # no store yet, or a server that does not answer: the UI still opens
        experiment_id = None
        click.echo(f"(experiment {name!r} not prepared: {one_line(exc)})")
    beside = Path(sys.executable).with_name("mlflow")  # the mlflow of this environment first
    exe = str(beside) if beside.exists() else shutil.which("mlflow")
    argv = ([exe] if exe else [sys.executable, "-m", "mlflow"])
    argv += ["ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    artifacts = locations.project_artifacts(uri)
    if artifacts is not None:  # experiments made in the UI keep their artifacts beside mlflow.db too
        argv += ["--default-artifact-root", str(artifacts)]
    where = experiment_view.url(f"http://127.0.0.1:{port}", experiment_id)
    what = f"runs of {name!r}" if experiment_id is not None else f"no experiment {name!r} yet"
    click.echo(f"MLflow UI for {locations.display_uri(uri)}, {what}: {where} (Ctrl-C stops it)")
    sys.stdout.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise click.ClickException(f"could not start the MLflow UI: {exc}") from None




def _recent_runs(uri: str, experiment: str, count: int) -> list:
    """The newest ``count`` cell and job runs of ``experiment``; read errors as one line."""
    from ..store_read import ReadError, Store

    hint = "track a cell or run `mlops-magics demo` first, or pass --tracking-uri"
    try:
        return Store(uri, hint=hint).recent_runs(experiment, count, kinds=_RUN_KINDS)
    except ReadError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        from .. import locations

        raise click.ClickException(f"cannot read runs at {locations.display_uri(uri)}: {one_line(exc)}") from None


def _metrics(metrics: dict[str, float]) -> str:
    from ..store_read import own_metrics

    own = own_metrics(metrics)
    keys = (own or sorted(metrics))[:_MAX_METRICS]
    more = len(own) - len(keys) if own else 0
    text = ", ".join(f"{k}={metrics[k]:.4g}" for k in keys)
    return text + (f", +{more} more" if more > 0 else "")


def _time(ms: int | None) -> str:
    import datetime

    if not ms:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


COMMANDS = [runs, demo, ui]
