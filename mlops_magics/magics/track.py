"""``%%track`` and ``%track status|flush|runs``: parse, call the tracker, display.

A ``%%track`` cell is run by IPython itself, exactly as the same cell without the magic:
an input transformer removes the ``%%track`` line (so tracebacks and warnings number the
lines as for the same cell without the magic),
``pre_run_cell`` begins the run and ``post_run_cell`` ends it with the cell's error and
displayed value. So ``;``, ``Out[]``, line magics, top-level ``await`` and tracebacks are
IPython's own. The registered magic remains for ``%%track?`` and for shells without the
transformer, where it runs the body itself.
"""

from __future__ import annotations

import ast
import atexit
import functools
import logging
import re
import shlex

import IPython
from IPython.core.error import UsageError
from IPython.core.inputtransformer2 import (cell_magic, classic_prompt, ipython_prompt, leading_empty_lines,
                                            leading_indent)
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, Unicode

from .. import _current, locations
from ..errors import did_you_mean
from ._shell import publish

SUBCOMMANDS = ("status", "flush", "runs")
log = logging.getLogger("mlops_magics")
_COUNTS_FIRST = IPython.version_info[0] >= 9
_HEADER = re.compile(r"%%track(?:[ \t]+(.*))?")  # not %%track? (help) nor %%tracker


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _option_line(lines: list[str]) -> str | None:
    """The options of a cell whose first line is ``%%track ...``, else None."""
    if not lines:
        return None
    match = _HEADER.fullmatch(lines[0].rstrip("\r\n"))
    return None if match is None else (match.group(1) or "").strip()


@magics_class
class TrackMagics(Magics):
    """Track notebook cells as MLflow runs."""

    experiment = Unicode("", help="Experiment for tracked cells (default: $MLFLOW_EXPERIMENT_NAME or Default).").tag(config=True)
    tracking_uri = Unicode("", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                           "sqlite:///mlflow.db at the project root; %track status says which).").tag(config=True)
    auto = Bool(True, help="Infer params, metrics and data from the cell; False records only what flags name.").tag(config=True)
    summary = Bool(True, help="Show the run summary under each tracked cell.").tag(config=True)
    flush_timeout = Float(30.0, help="Seconds %track flush waits for MLflow.").tag(config=True)

    def __init__(self, shell=None, session=None, **kwargs) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session = session
        self._cell_id: str | None = None
        self._execution_count: int | None = None
        self._closed = False
        # (ExecutionInfo, TrackedCell | None) of tracked cells begun and not yet ended; a
        # stack, because a tracked cell's code may itself run cells (shell.run_cell).
        self._pending: list[tuple[object, object]] = []
        self.transformer = self._make_transformer()
        from ..journal.reach import ServerProbe

        # A server known to be down shows on the very first tracked cell's summary.
        self._probe = ServerProbe.start(locations.tracking_uri(self.tracking_uri or None))

    # -- the input transformer --------------------------------------------------------
    def _make_transformer(self):
        def track_cell(lines: list[str]) -> list[str]:
            """Drop a valid ``%%track`` line: IPython then runs the body as a plain cell.

            Pure (IPython calls it for completeness checks too). A line whose options do
            not parse is left alone: the registered magic then reports it in one line.
            """
            line = _option_line(lines)
            if line is None:
                return lines
            try:
                self._parse(line)
            except UsageError:
                return lines
            body = lines[1:]
            for clean in (leading_empty_lines, leading_indent, classic_prompt, ipython_prompt):  # as for the body alone
                body = clean(body)
            if body and body[0].startswith("%%"):  # %%track over another cell magic
                body = cell_magic(body)
            return body

        # Tells check_complete to skip it, so a terminal still waits for the blank line
        # that ends a cell magic (it is pure all the same).
        track_cell.has_side_effects = True
        return track_cell

    # -- lifecycle -----------------------------------------------------------------
    def pre_run_cell(self, info=None) -> None:
        self._cell_id = getattr(info, "cell_id", None)
        # The cell's In[n]: IPython 9 counts the cell before running it, IPython 8 after.
        count = self.shell.execution_count
        if _COUNTS_FIRST and getattr(info, "store_history", False):
            count -= 1
        self._execution_count = count
        raw = getattr(info, "raw_cell", None) or ""
        lines = leading_empty_lines(raw.splitlines(keepends=True))
        line = _option_line(lines)
        if line is None or self.transformer not in self.shell.input_transformers_cleanup:
            return
        try:
            args = self._parse(line)
        except UsageError:
            return  # the transformer left the cell alone: the magic reports it
        python = getattr(info, "transformed_cell", None) or self.shell.transform_cell(raw)
        self._pending.append((info, self._start(args, "".join(lines[1:]), python, count, self._cell_id)))

    def post_run_cell(self, result=None) -> None:
        entry = self._take(result)
        if entry is not None and entry[1] is not None:
            if result is None:  # the kernel lost the result: the cell was cancelled
                error, displayed = KeyboardInterrupt(), None
            else:
                error = result.error_in_exec if result.error_in_exec is not None else result.error_before_exec
                displayed = result.result
            self._end(entry[1], error, displayed)
        # In a notebook job, commit what untracked cells logged (mm.log_metric) before the next cell.
        self.session.after_cell()

    def _take(self, result):
        """The pending tracked cell that ``result`` ends, off the stack (None if untracked)."""
        info = getattr(result, "info", None)
        for i in range(len(self._pending) - 1, -1, -1):
            if self._pending[i][0] is info:
                break
        else:
            # IPython or the kernel rebuilt the result after a crash of the runner: the latest
            # tracked cell is the one that ended, when its code matches.
            top = self._pending[-1][0] if self._pending else None
            if top is None or (info is not None and getattr(info, "raw_cell", None) != top.raw_cell):
                return None
            i = len(self._pending) - 1
        entry, orphans = self._pending[i], self._pending[i + 1:]
        del self._pending[i:]
        for _, tracker in reversed(orphans):  # begun inside it, never ended: interrupted
            if tracker is not None:
                self._end(tracker, KeyboardInterrupt(), None)
        return entry

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
        cleanup = self.shell.input_transformers_cleanup
        while self.transformer in cleanup:
            cleanup.remove(self.transformer)
        for _, tracker in reversed(self._pending):  # unloaded from inside a tracked cell
            if tracker is not None:
                self._end(tracker, None, None)
        self._pending.clear()
        atexit.unregister(self.close)
        if _current.session() is self.session:
            _current.set_session(None)
        self.session.close(timeout=self.flush_timeout)

    # -- the magic -----------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("--experiment", "-e", help="MLflow experiment name.")
    @argument("--name", "-n", help="Run name (also identifies the cell for 'what changed'); default: the notebook's "
              "name and the cell's leading comment or first line, the same on every run of the cell.")
    @argument("--params", help="Comma-separated names to log as params, besides inferred ones.")
    @argument("--metrics", help="Comma-separated names to log as metrics, besides inferred ones.")
    @argument("--data", help="Comma-separated names of data to fingerprint, besides inferred ones.")
    @argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="A run tag; repeatable.")
    @argument("--log-model", dest="log_model", metavar="VAR", help="Log this fitted model with the run.")
    @argument("--eval", dest="eval", metavar="X,Y",
              help="With --log-model: held-out data; logs <metric> and baseline.<metric> (dummy model).")
    @argument("--no-auto", dest="no_auto", action="store_true", help="Record only what the flags name.")
    @line_cell_magic
    def track(self, line: str = "", cell: str | None = None):
        """Record each execution of this cell as an MLflow run.

        Params: the literals the cell assigns (``lr = 0.1``); non-default hyperparameters of
        the estimators it makes, fits or cross-validates (``KMeans(6)`` gives ``n_clusters``,
        nested as ``estimator__C``; ``<var>.name`` where two disagree); a fitted search's
        ``<var>.best.<param>``; literal arguments of other model-building calls as
        ``<function>.<argument>`` (``train_test_split.random_state``), never of plotting or
        display calls. Metrics: the numbers it binds (``acc = ...``, dicts as ``name.key``);
        its displayed score, named from the expression (``accuracy_score``, ``scores.mean``,
        ``model.score``; else ``displayed``); cross-validation scores as ``<name>.mean`` and
        ``<name>.std``; a search's ``<var>.best_score``. Data: the frames and arrays it reads
        and binds, fingerprinted in full. The cell runs exactly as it would without
        ``%%track`` (same output, ``;``, warnings, ``await``, tracebacks); the run summary
        shows under it. Options are split as a shell would: ``--name 'my run'``,
        ``--tag 'team=ml ops'``. When ``--log-model VAR`` cannot log the model, the run is
        still recorded and the reason shows under the cell as a one-line error.
        ``%track status | flush | runs [-n N]`` report on delivery and recent runs.
        """
        __tracebackhide__ = True  # noqa: F841  (IPython hides this frame in tracebacks)
        if cell is None:
            return self._subcommand(line)
        return self._run_tracked(self._parse(line), cell)

    def _parse(self, line: str):
        """The options of a ``%%track`` line; a mistake is a one-line UsageError."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:  # "No closing quotation"
            raise UsageError(f"%%track: {exc} in {line!r}") from None
        try:
            args = self.track.parser.parse_args(argv)
        except UsageError as exc:
            valid = [o for a in self.track.parser._actions for o in a.option_strings]
            bad = [t.split("=")[0] for t in argv if t.startswith("-") and t.split("=")[0] not in valid]
            if bad:
                raise UsageError(f"%%track: unknown option {bad[0]}.{did_you_mean(bad[0], valid)}") from None
            raise UsageError(f"%%track: {exc}") from None
        for item in args.tag:
            key, sep, _ = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"%%track: --tag wants KEY=VALUE, got {item!r}")
        if args.log_model and not args.log_model.isidentifier():
            raise UsageError(f"%%track: --log-model wants a variable name, got {args.log_model!r}")
        if args.eval is not None:
            pair = [n.strip() for n in args.eval.split(",")]
            if not args.log_model:
                raise UsageError("%%track: --eval scores the model of --log-model VAR: give both")
            if len(pair) != 2 or not all(n.isidentifier() for n in pair):
                raise UsageError(f"%%track: --eval wants two variable names X,Y (features, labels), got {args.eval!r}")
            args.eval = tuple(pair)
        if args.name is not None and ("\n" in args.name or "\r" in args.name):
            raise UsageError(f"%%track: --name must be one line, got {args.name!r}")
        return args

    def _options(self, args):
        from ..tracking.cell import TrackOptions

        tags = {}
        for item in args.tag:  # checked by _parse
            key, _, value = item.partition("=")
            tags[key.strip()] = value.strip()
        return TrackOptions(
            experiment=locations.experiment_name(args.experiment or self.experiment or None),
            tracking_uri=locations.tracking_uri(self.tracking_uri or None), name=args.name,
            params=_names(args.params), metrics=_names(args.metrics), data=_names(args.data),
            tags=tags, auto=self.auto and not args.no_auto, log_model=args.log_model, eval=args.eval,
        )

    def _start(self, args, raw: str, python: str, count: int | None, cell_id: str | None):
        """A begun tracker for the cell, or None (a cell that cannot compile is not a run;
        a failure of ours is reported and the cell runs untracked)."""
        from ..tracking.cell import TrackedCell

        try:
            tracker = TrackedCell(self.session, raw, python, self._options(args), self.shell.user_ns,
                                  execution_count=count, cell_id=cell_id, hidden=set(self.shell.user_ns_hidden))
        except SyntaxError:
            return None  # IPython shows it, as for the cell without %%track
        except Exception as exc:
            self._report(exc)
            return None
        return tracker if self._guard(tracker.begin) else None

    def _end(self, tracker, error: BaseException | None, displayed: object) -> None:
        self._guard(functools.partial(self._finish, tracker, error, displayed))
        if tracker.model_error is not None:  # the run is recorded; the model the user asked for is not
            from ..display import Message

            self._publish(Message(str(tracker.model_error), level="error"))

    def _run_tracked(self, args, cell: str):
        """Without the transformer (another shell, a direct run_cell_magic): run the body here."""
        __tracebackhide__ = True  # noqa: F841
        shell = self.shell
        python = shell.transform_cell(cell)
        tree = shell.transform_ast(shell.compile.ast_parse(python))
        last = ast.Expression(tree.body.pop().value) if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        filename = shell.compile.cache(python, self._execution_count or shell.execution_count, raw_code=cell)
        code = shell.compile(tree, filename, "exec")
        last_code = shell.compile(last, filename, "eval") if last is not None else None
        tracker = self._start(args, cell, python, self._execution_count, self._cell_id)
        try:
            exec(code, shell.user_global_ns, shell.user_ns)
            value = eval(last_code, shell.user_global_ns, shell.user_ns) if last_code else None
        except BaseException as exc:
            if tracker is not None:
                self._end(tracker, exc, None)
            raise
        if tracker is not None:
            self._end(tracker, None, value)
        return value

    def _finish(self, tracker, error: BaseException | None, displayed: object) -> None:
        self._show_summary(tracker.finish(error, displayed=displayed))

    def _guard(self, step) -> bool:
        """Run a tracking step; a bug of ours is reported, never allowed to break the user's cell."""
        try:
            step()
            return True
        except Exception as exc:
            self._report(exc)
            return False

    def _report(self, exc: Exception) -> None:
        from ..display import Message

        log.exception("mlops-magics: tracking failed")
        self._publish(Message(f"mlops-magics could not record this run: {type(exc).__name__}: {exc}", level="error"))

    # -- output --------------------------------------------------------------------
    def _publish(self, obj) -> None:
        publish(self.shell, obj)

    def _show_summary(self, run) -> None:
        if self.summary:
            from ..display import CellSummary

            delivery = self.session.delivery(run.uri)
            pending = delivery.pending()  # two cheap reads on the cell's path, not the whole status
            error = (delivery.last_error() or self._probe.error(run.uri)) if pending else None
            self._publish(CellSummary(run, pending=pending, last_error=error))

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
