"""``mlops-magics promote``: check a run's model, register it and move the alias only to a better one."""

from __future__ import annotations

import click

from .schedule import _fail


@click.command()
@click.argument("run_id")
@click.option("--model", "-m", "model", required=True, metavar="NAME", help="Registered model name.")
@click.option("--metric", default="f1", show_default=True, help="Metric the versions are compared on.")
@click.option("--alias", default="champion", show_default=True, help="Alias that moves to the better version.")
@click.option("--lower-is-better", is_flag=True, help="The metric is a loss: lower wins.")
@click.option("--force", is_flag=True,
              help="Promote even when a check fails (the failures and the override are tagged on the run).")
@click.option("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlflow.db at the project root).")
def promote(run_id, model, metric, alias, lower_is_better, force, tracking_uri):
    """Register RUN_ID's model as a new version of NAME; move the alias to it only if its metric
    beats the alias holder's.

    First the model must beat its dummy baseline (baseline.<metric>, logged by --eval or
    mm.log_model(model, eval=(X, y))), load and predict on its input example in a fresh
    process, and have the alias holder's signature; a failed check refuses it (exit 1, the
    reason in one line) unless --force. Checks and comparison are tagged on the run
    (mlops.promotion*, mlops.promotion.check.<name>)."""
    from ..errors import MlopsError
    from ..models.promote import promote as do_promote

    try:
        result = do_promote(run_id, model, metric=metric, alias=alias, greater_is_better=not lower_is_better,
                            force=force, tracking_uri=tracking_uri)
    except MlopsError as exc:
        raise _fail(exc) from None
    click.echo(repr(result))


COMMANDS = [promote]
