"""``%%track`` and ``%track status|flush|runs``: parse, call the tracker, display."""

from __future__ import annotations

import ast
import atexit
import functools
import logging

import IPython
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Float, Unicode

from .. import _current, locations
from ..errors import did_you_mean

SUBCOMMANDS = ("status", "flush", "runs")
log = logging.getLogger("mlops_magics")
_COUNTS_FIRST = IPython.version_info[0] >= 9


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@magics_class
class TrackMagics(Magics):
    """Track notebook cells as MLflow runs."""

    experiment = Unicode("", help="Experiment for tracked cells (default: $MLFLOW_EXPERIMENT_NAME or Default).").tag(config=True)
    tracking_uri = Unicode("", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).").tag(config=True)
    auto = Bool(True, help="Infer params, metrics and data from the cell; False records only what flags name.").tag(config=True)
    summary = Bool(True, help="Show the run summary under each tracked cell.").tag(config=True)
    flush_timeout = Float(30.0, help="Seconds %track flush waits for MLflow.").tag(config=True)

    def __init__(self, shell=None, session=None, **kwargs) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session = session
        self._cell_id: str | None = None
        self._execution_count: int | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------
    def pre_run_cell(self, info=None) -> None:
        self._cell_id = getattr(info, "cell_id", None)
        # The cell's In[n]: IPython 9 counts the cell before running it, IPython 8 after.
        count = self.shell.execution_count
        if _COUNTS_FIRST and getattr(info, "store_history", False):
            count -= 1
        self._execution_count = count

    def post_run_cell(self, result=None) -> None:
        # In a notebook job, commit what untracked cells logged (mm.log_metric) before the next cell.
        self.session.after_cell()

    def close(self) -> None:
        """Unregister hooks, end the session runs and deliver what is pending."""
        if self._closed:
            return
        self._closed = True
        for event, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(event, callback)
            except ValueError:
                pass
        atexit.unregister(self.close)
        if _current.session() is self.session:
            _current.set_session(None)
        self.session.close(timeout=self.flush_timeout)

    # -- the magic -----------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("--experiment", "-e", help="MLflow experiment name.")
    @argument("--name", "-n", help="Run name (also identifies the cell for 'what changed').")
    @argument("--params", help="Comma-separated names to log as params, besides inferred ones.")
    @argument("--metrics", help="Comma-separated names to log as metrics, besides inferred ones.")
    @argument("--data", help="Comma-separated names of data to fingerprint, besides inferred ones.")
    @argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="A run tag; repeatable.")
    @argument("--log-model", dest="log_model", metavar="VAR", help="Log this fitted model with the run.")
    @argument("--no-auto", dest="no_auto", action="store_true", help="Record only what the flags name.")
    @line_cell_magic
    def track(self, line: str = "", cell: str | None = None):
        """Record each execution of this cell as an MLflow run.

        Params are the literals the cell sets (``lr = 0.1``, ``Model(max_iter=500)``),
        metrics the numbers it binds (``acc = ...``), data the frames and arrays it reads
        and binds, fingerprinted in full. ``%track status | flush | runs [-n N]``
        report on delivery and recent runs.
        """
        __tracebackhide__ = True  # noqa: F841  (IPython hides this frame in tracebacks)
        if cell is None:
            return self._subcommand(line)
        args = self._parse(line)
        return self._run_tracked(args, cell)

    def _parse(self, line: str):
        try:
            return parse_argstring(self.track, line)
        except UsageError as exc:
            valid = [o for a in self.track.parser._actions for o in a.option_strings]
            bad = [t.split("=")[0] for t in line.split() if t.startswith("-") and t.split("=")[0] not in valid]
            if bad:
                raise UsageError(f"%%track: unknown option {bad[0]}.{did_you_mean(bad[0], valid)}") from None
            raise UsageError(f"%%track: {exc}") from None

    def _options(self, args):
        from ..tracking.cell import TrackOptions

        tags = {}
        for item in args.tag:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"%%track: --tag wants KEY=VALUE, got {item!r}")
            tags[key.strip()] = value.strip()
        return TrackOptions(
            experiment=locations.experiment_name(args.experiment or self.experiment or None),
            tracking_uri=locations.tracking_uri(self.tracking_uri or None), name=args.name,
            params=_names(args.params), metrics=_names(args.metrics), data=_names(args.data),
            tags=tags, auto=self.auto and not args.no_auto, log_model=args.log_model,
        )

    def _run_tracked(self, args, cell: str):
        __tracebackhide__ = True  # noqa: F841
        from ..tracking.cell import TrackedCell

        if args.log_model and not args.log_model.isidentifier():
            raise UsageError(f"%%track: --log-model wants a variable name, got {args.log_model!r}")
        options = self._options(args)
        shell = self.shell
        python = shell.transform_cell(cell)
        tree = shell.transform_ast(shell.compile.ast_parse(python))
        last = ast.Expression(tree.body.pop().value) if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        filename = shell.compile.cache(python, self._execution_count or shell.execution_count, raw_code=cell)
        code = shell.compile(tree, filename, "exec")
        last_code = shell.compile(last, filename, "eval") if last is not None else None
        tracker = TrackedCell(self.session, cell, python, options, shell.user_ns,
                              execution_count=self._execution_count, cell_id=self._cell_id,
                              hidden=set(shell.user_ns_hidden))
        tracking = self._guard(tracker.begin)
        try:
            exec(code, shell.user_global_ns, shell.user_ns)
            value = eval(last_code, shell.user_global_ns, shell.user_ns) if last_code else None
        except BaseException as exc:
            if tracking:
                self._guard(functools.partial(self._finish, tracker, exc))
            raise
        if tracking:
            self._guard(functools.partial(self._finish, tracker, None))
            if tracker.model_error is not None:  # the run is recorded; the model the user asked for is not
                raise tracker.model_error
        return value

    def _finish(self, tracker, error: BaseException | None) -> None:
        self._show_summary(tracker.finish(error))

    def _guard(self, step) -> bool:
        """Run a tracking step; a bug of ours is reported, never allowed to break the user's cell."""
        try:
            step()
            return True
        except Exception as exc:
            from ..display import Message

            log.exception("mlops-magics: tracking failed")
            self._publish(Message(f"mlops-magics could not record this run: {type(exc).__name__}: {exc}",
                                  level="error"))
            return False

    # -- output --------------------------------------------------------------------
    def _publish(self, obj) -> None:
        data, metadata = self.shell.display_formatter.format(obj)
        self.shell.display_pub.publish(data=data, metadata=metadata)

    def _show_summary(self, run) -> None:
        if self.summary:
            from ..display import CellSummary

            delivery = self.session.delivery(run.uri)
            pending = delivery.pending()  # two cheap reads on the cell's path, not the whole status
            self._publish(CellSummary(run, pending=pending, last_error=delivery.last_error() if pending else None))

    # -- %track status | flush | runs ----------------------------------------------
    def _subcommand(self, line: str):
        from . import _track_commands as commands

        words = line.split()
        if not words:
            raise UsageError("%track wants a subcommand: status, flush or runs (or use %%track on a cell)")
        name, rest = words[0], words[1:]
        if name not in SUBCOMMANDS:
            raise UsageError(f"%track: unknown subcommand {name!r}.{did_you_mean(name, SUBCOMMANDS)}"
                             " Choose from status, flush, runs.")
        self._publish(getattr(commands, name)(self, rest))
