"""``mlops-magics sync``, ``status``, ``journal`` and ``journal drop``: what waits for MLflow, who delivers it, what it refused."""

from __future__ import annotations

import contextlib

import click


def _open():
    """The journal, or a one-line error when there is none or it cannot be read."""
    import os

    from .. import locations
    from ..journal.store import Journal

    path = locations.journal_path()
    if not os.path.exists(path):
        return None, path
    journal = Journal(path)
    notice = journal.take_notice()
    if notice:
        click.echo(notice, err=True)
    return journal, path


@contextlib.contextmanager
def _storage_errors(path):
    """Turn a journal that cannot be read into one line."""
    from ..journal.faults import cause, is_storage_error

    try:
        yield
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        raise click.ClickException(f"cannot use the journal {path}: {cause(exc, path)}") from None


@click.group(invoke_without_command=True)
@click.pass_context
def journal(ctx: click.Context) -> None:
    """List what the local journal holds, by tracking URI: records waiting for MLflow (with the
    last delivery error) and records MLflow refused as invalid, set aside (with its reason).

    `mlops-magics sync` delivers what waits; `sync --retry-rejected` resends what was set aside;
    `journal drop --uri URI` discards what was meant for a URI (a mistyped one, say).
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..display import Table
    from ..locations import display_uri

    found, path = _open()
    if found is None:
        click.echo(f"the journal at {path} is empty: nothing waits for MLflow")
        return
    with _storage_errors(path):
        try:
            rows = found.contents()
        finally:
            found.close()
    if not rows:
        click.echo(f"the journal at {path} is empty: nothing waits for MLflow")
        return
    table = Table(["tracking URI", "state", "records", "what", "reason"],
                  [[display_uri(r.uri), r.state, r.records, r.what, r.reason] for r in rows],
                  caption=f"journal {path}")
    click.echo(repr(table))


@journal.command()
@click.option("--uri", required=True, metavar="URI",
              help="The tracking URI whose records to discard, as `mlops-magics journal` shows it.")
def drop(uri: str) -> None:
    """Discard every record meant for URI: waiting and set aside. They never reach MLflow."""
    from ..errors import did_you_mean
    from ..locations import display_uri
    from ..journal.store import journal_uri

    found, path = _open()
    if found is None:
        raise click.ClickException(f"the journal at {path} is empty: nothing to drop")
    with _storage_errors(path):
        try:
            known = found.known_uris()
            if journal_uri(uri) not in known:
                shown = [display_uri(u) for u in known]
                raise click.ClickException(
                    f"no records for {display_uri(uri)} in the journal.{did_you_mean(display_uri(uri), shown)}"
                    f" URIs there: {', '.join(shown) or 'none'}")
            pending, aside = found.drop(uri)
        finally:
            found.close()
    click.echo(f"dropped {pending + aside} records meant for {display_uri(uri)} "
               f"({pending} waiting, {aside} set aside)")


@click.command()
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
    from .. import locations
    from ..journal.sync import JournalError
    from ..journal.sync import sync as deliver

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


@click.command()
@click.option("--tracking-uri", metavar="URI",
              help="Store to check (default: $MLFLOW_TRACKING_URI, else mlflow.db at the project root).")
def status(tracking_uri: str | None) -> None:
    """Where records go and why, who delivers the local journal to MLflow (pid, since when),
    and what waits.

    Without MLFLOW_TRACKING_URI / MLOPS_MAGICS_HOME, the store and the journal are at the
    project root: the nearest folder upwards holding .mlops_magics/ or mlflow.db, else the
    git work tree's root, else the working folder. A delivery process that died while
    records wait is replaced.
    """
    from .. import locations
    from ..journal.deliverer import report

    store, home = locations.store_choice(tracking_uri), locations.home_choice()
    click.echo(f"tracking URI: {locations.display_uri(store.value)}")
    click.echo(f"  chosen by: {store.reason}")
    for label, text in report(locations.journal_path(), store.value):
        click.echo(f"{label}: {text}")
        if label == "journal":
            click.echo(f"  chosen by: {home.reason}")


COMMANDS = [sync, status, journal]
