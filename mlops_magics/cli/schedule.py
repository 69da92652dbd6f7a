"""``mlops-magics schedule ...`` and ``scheduler``: thin click commands over ``schedules``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..errors import first_line
from ..secrets import MaskFilter

_RUNS_HOW = ("Nothing runs by itself: keep `mlops-magics scheduler` running here, or install "
             "`mlops-magics schedule export {name} --to crontab` (or --to systemd).")


def _store():
    from ..errors import MlopsError
    from ..schedules.store import ScheduleStore

    try:
        return ScheduleStore()
    except MlopsError as exc:  # a PostgreSQL store refusing the login or unreachable: one line
        raise _fail(exc) from None


def _fail(exc: Exception, usage: bool = False):
    text = first_line(exc) or type(exc).__name__
    return click.UsageError(text) if usage else click.ClickException(text)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    """What run-due and the scheduler run, with times: the log a cron job or systemd keeps."""
    logger = logging.getLogger("mlops_magics.schedules")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        handler.addFilter(MaskFilter())  # these lines go to cron's and systemd's log files
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@click.group()
def schedule() -> None:
    """Run notebooks as jobs on cron schedules, each slot exactly once.

    Schedules live in schedules.db in the journal folder ($MLOPS_MAGICS_HOME, else
    ./.mlops_magics). `run-due` runs what is due; call it from OS cron or a systemd timer
    (see `export`), or keep `mlops-magics scheduler` running.
    """


@schedule.command("add")
@click.argument("name")
@click.argument("notebook", type=click.Path(dir_okay=False))
@click.option("--cron", "cron_expr", required=True, metavar="EXPR",
              help="Five-field cron expression, e.g. '0 6 * * mon-fri', or @hourly, @daily, @weekly.")
@click.option("-p", "--parameter", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A notebook parameter, converted to the type of its default. Repeatable. A secret "
                   "(a NAME like token or password, a URL with a password, a key) is never stored: give "
                   "VALUE as env:VAR and $VAR is read where run-due runs.")
@click.option("--timezone", "--tz", "tz", metavar="TZ", help="IANA time zone of the cron times (default: this machine's).")
@click.option("--on-alert", metavar="OTHER", help="When a run ends with an mlops.alert tag, run schedule OTHER at once.")
@click.option("--catch-up", type=click.Choice(["one", "none"]), default="one", show_default=True,
              help="Slots missed while nothing ran: one run for them all, or none.")
@click.option("--experiment", "-e", metavar="NAME", help="MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or Default).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SEC", help="Seconds any one cell may run.")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Re-runs after a timeout or a dead kernel (never after a cell error).")
@click.option("--start", metavar="ISO8601", help="No slot before this moment runs (default: now).")
@click.option("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlflow.db at the project root).")
def add(name, notebook, cron_expr, params, tz, on_alert, catch_up, experiment, timeout, retries, start, tracking_uri):
    """Run NOTEBOOK as job NAME at the times of a cron expression.

    The cron expression, time zone, parameters and --on-alert schedule are checked now.
    """
    from ..errors import MlopsError
    from ..schedules import cron
    from ..schedules.manage import add_schedule, next_due

    store = _store()
    try:
        when = cron.parse_time(start) if start else None
        s = add_schedule(name, notebook, cron_expr, parameters=list(params), timezone=tz, on_alert=on_alert,
                         catch_up=catch_up, experiment=experiment, tracking_uri=tracking_uri, timeout=timeout,
                         retries=retries, start=when, store=store)
    except MlopsError as exc:
        raise _fail(exc, usage=True) from None
    shown = " ".join(f"{k}={v}" for k, v in s.parameters)
    click.echo(f"schedule {s.name} added: {Path(s.notebook).name}{' ' + shown if shown else ''} at '{s.cron}' "
               f"({s.timezone}); next run {next_due(store, s, cron.now())}")
    click.echo(_RUNS_HOW.format(name=s.name))


@schedule.command("list")
def list_() -> None:
    """The schedules: cron, time zone, state, next due time, last run."""
    from ..display import Table
    from ..schedules.manage import listing

    store = _store()
    columns, rows = listing(store)
    if not rows:
        click.echo("no schedules yet: `mlops-magics schedule add NAME NOTEBOOK --cron '0 6 * * *'`")
        return
    click.echo(repr(Table(columns, rows, caption=f"schedules in {store.path}")))


@schedule.command()
@click.argument("name")
def remove(name: str) -> None:
    """Delete schedule NAME and its slot history (runs stay in MLflow)."""
    from ..errors import MlopsError

    store = _store()
    try:
        store.remove(name)
    except MlopsError as exc:
        raise _fail(exc) from None
    click.echo(f"schedule {name} removed")
    for other in store.referrers(name):
        click.echo(f"note: {other} runs {name} on alert (--on-alert); that will do nothing now", err=True)


def _set_paused(name: str, paused: bool) -> None:
    from ..errors import MlopsError
    from ..schedules import cron
    from ..schedules.manage import next_due

    store = _store()
    try:
        s = store.set_paused(name, paused, cron.now())
    except MlopsError as exc:
        raise _fail(exc) from None
    if paused:
        click.echo(f"schedule {name} paused: run-due and the scheduler skip it until `schedule resume {name}`")
    else:
        click.echo(f"schedule {name} resumed (slots while paused are not caught up); next run {next_due(store, s, cron.now())}")


@schedule.command()
@click.argument("name")
def pause(name: str) -> None:
    """Stop running schedule NAME until resumed."""
    _set_paused(name, True)


@schedule.command()
@click.argument("name")
def resume(name: str) -> None:
    """Run schedule NAME again from its next slot."""
    _set_paused(name, False)


@schedule.command("run-due")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--at", "at_text", metavar="ISO8601", help="The moment to run for (default: now); without an offset, local time.")
def run_due_command(names: tuple[str, ...], at_text: str | None) -> None:
    """Run every schedule (or each NAME) due now, each slot once, and exit.

    This is what OS cron or a systemd timer calls. Racing calls are safe: each slot is
    claimed in schedules.db and runs in one of them. Exits 1 when a run failed.
    """
    import signal

    from ..errors import MlopsError
    from ..schedules import cron
    from ..schedules.due import run_due

    _log_to_stderr()
    before = signal.signal(signal.SIGTERM, _terminated)  # the run is recorded as interrupted, the kernel stopped
    try:
        at = cron.parse_time(at_text) if at_text else None
        outcomes = run_due(at, list(names) or None, store=_store())
    except MlopsError as exc:
        raise _fail(exc) from None
    finally:
        signal.signal(signal.SIGTERM, before)
    acted = [o for o in outcomes if o.state != "paused"]
    for o in acted:
        click.echo(o.line())
    if not acted:
        click.echo(f"nothing due at {(at or cron.now()).isoformat(timespec='seconds')}")
    if any(o.state == "failed" for o in outcomes):
        sys.exit(1)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


@schedule.command()
@click.argument("name")
@click.option("--to", "target", type=click.Choice(["crontab", "systemd"]), required=True,
              help="A crontab line, or a systemd .service and .timer pair.")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False), help="Write the systemd units here (default: print them).")
def export(name: str, target: str, output_dir: str | None) -> None:
    """Print what makes the OS call `run-due NAME` at the schedule's times.

    crontab: append the line with `crontab -e`. systemd: copy both units to
    ~/.config/systemd/user/ and `systemctl --user enable --now mlops-magics-NAME.timer`.
    """
    from ..errors import MlopsError
    from ..schedules.export import crontab, systemd

    try:
        s = _store().get(name)
    except MlopsError as exc:
        raise _fail(exc) from None
    if target == "crontab":
        click.echo(crontab(s), nl=False)
        return
    units = systemd(s)
    if output_dir:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for unit in units:
            (folder / unit.filename).write_text(unit.text, encoding="utf-8")
            click.echo(f"wrote {folder / unit.filename}")
        return
    for unit in units:
        click.echo(f"# {unit.filename}\n{unit.text}")


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.5), default=30.0, show_default=True,
              help="Seconds between looks at the schedules (it also wakes at each due time).")
@click.option("--grace", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="On SIGTERM/SIGINT, seconds running jobs get to end before they are stopped.")
def scheduler(interval: float, grace: float) -> None:
    """Keep running schedules: wake at each due time and run what is due (Ctrl-C or SIGTERM stops).

    Each due schedule runs in its own `schedule run-due` process; slots are claimed in
    schedules.db, so OS cron or another scheduler on the same folder never run a slot twice.
    """
    from ..schedules.loop import Scheduler

    _log_to_stderr()
    sys.exit(Scheduler(interval=interval, grace=grace, store=_store()).run())


COMMANDS = [schedule, scheduler]
