"""``mlops-magics``: the command line, a thin click shim over the library.

One module per command group (``jobs``: run, reproduce, sweep; ``schedule``: schedule,
scheduler; ``models``: promote; ``monitor``: drift; ``quality``: validate; ``journal``: sync,
status, journal; ``runs``: runs, ui, demo). Imports stay inside the commands so that ``mlops-magics --help``
answers at once.
"""

from __future__ import annotations

import sys

import click

from .. import __version__

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

    Records go to $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db at the project root: the
    nearest folder upwards holding .mlops_magics/ or mlflow.db, else the git work tree's
    root, else the working folder (`mlops-magics status` says which, and why).
    """



def _add_commands() -> None:
    from . import jobs, journal, models, monitor, quality, runs, schedule

    for module in (runs, journal, monitor, quality, jobs, schedule, models):
        for command in module.COMMANDS:
            cli.add_command(command)


_add_commands()


def main(argv: list[str] | None = None) -> None:
    """Console script entry point."""
    from ..runner.fanout.fast_imports import skip_iri_grammar

    skip_iri_grammar()  # this process only runs notebooks: nbformat loads 0.75 s faster
    cli.main(args=argv, prog_name="mlops-magics")
