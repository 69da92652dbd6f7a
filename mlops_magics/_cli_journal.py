"""``mlops-magics journal`` and ``journal drop``: what waits for MLflow, what it refused, and why."""

from __future__ import annotations

import contextlib

import click


def _open():
    """The journal, or a one-line error when there is none or it cannot be read."""
    import os

    from . import locations
    from .journal.store import Journal

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
    from .journal.faults import cause, is_storage_error

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
    from .display import Table
    from .locations import display_uri

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
    from .errors import did_you_mean
    from .locations import display_uri
    from .journal.store import journal_uri

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
