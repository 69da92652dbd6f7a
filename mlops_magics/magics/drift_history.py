"""``%drift`` and ``%history``: parse, build the widget, display. Thin by design.

Nothing heavy is imported here: Altair, ipywidgets and MLflow load on first use.
"""

from __future__ import annotations


from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._shell import publish, user_data


@magics_class
class MonitorMagics(Magics):
    """Drift between data sets and a metric's history across runs, as inline widgets.

    ``%history`` takes over IPython's input-history magic of that name only for its own
    options: a line those do not parse (``%history -n 1-5``, ``%history -g pat``) goes to
    IPython's, which also stays available as ``%hist``.
    """

    def __init__(self, shell=None, **kwargs) -> None:
        super().__init__(shell=shell, **kwargs)
        self._ipython_history = None
        if shell is not None:
            from IPython.core.magics.history import HistoryMagics

            self._ipython_history = HistoryMagics(shell=shell).history
            shell.magics_manager.register_function(self._ipython_history, "line", "hist")

    @no_var_expand
    @magic_arguments()
    @argument("reference", help="Reference data: a variable name, runs:/<run_id>/<data name>, or a file.")
    @argument("current", help="Current data: a variable name, runs:/<run_id>/<data name>, or a file.")
    @argument("--method", "-m", default="auto", help="auto, psi, kl, js, wasserstein, ks or chi2 (default auto).")
    @argument("--threshold", "-t", type=float, help="One threshold for every method (default: each method's).")
    @argument("--features", "-f", help="Comma-separated features to compare (default: all).")
    @line_magic
    def drift(self, line: str = ""):
        """Show the drift from REFERENCE to CURRENT: the verdict, each feature's score
        against its threshold, and the distribution of the feature you click.

        ``%drift train_df today_df --method psi``. For the widget object itself use
        ``mlops_magics.widgets.DriftWidget``; for the numbers, ``mm.drift``.
        """
        args = self._parse(self.drift, "%drift", line)
        reference, current = self._data(args.reference), self._data(args.current)
        features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
        options = dict(method=args.method, threshold=args.threshold, features=features)
        self._publish(_widget_or_report("DriftWidget", reference, current, **options))

    @no_var_expand
    @magic_arguments()
    @argument("--experiment", "-e",
              help="MLflow experiment (default: TrackMagics.experiment, $MLFLOW_EXPERIMENT_NAME or Default).")
    @argument("--metric", "-m", default="f1", help="The metric to plot (default f1).")
    @argument("--threshold", "-t", type=float, help="Draw this threshold rule; runs on the wrong side are red.")
    @line_magic
    def history(self, line: str = ""):
        """Show a metric across the experiment's tracked cell and job runs over time, with
        the threshold, the best run and the champion model's run marked.

        Click a point to select its run and compare its training data with the latest
        run's. For the widget object (``.selected_run``, ``.refresh()``) use
        ``mlops_magics.widgets.HistoryWidget``.
        """
        try:
            args = parse_argstring(self.history, line)
        except UsageError as exc:
            if self._ipython_history is not None:  # IPython's own %history options
                return self._ipython_history(line)
            raise UsageError(f"%history: {exc}") from None
        from ..widgets import MissingDependency, missing

        if missing():
            raise MissingDependency(f"%history needs {', '.join(missing())}: pip install 'mlops-magics[widgets]'")
        from ..widgets import HistoryWidget

        track = self.shell.magics_manager.registry.get("TrackMagics")  # %config TrackMagics.experiment
        experiment = args.experiment or getattr(track, "experiment", "") or None
        uri = getattr(track, "tracking_uri", "") or None
        self._publish(HistoryWidget(experiment, args.metric, threshold=args.threshold, tracking_uri=uri))

    # -- helpers -----------------------------------------------------------------------------
    def _parse(self, magic, name: str, line: str):
        try:
            return parse_argstring(magic, line)
        except UsageError as exc:
            raise UsageError(f"{name}: {exc}") from None

    def _data(self, name: str):
        return user_data(self.shell, name)
    def _publish(self, obj) -> None:
        publish(self.shell, obj)


def _widget_or_report(name: str, reference, current, **options):
    """The widget when its dependencies are installed, else the report table and a note."""
    from ..widgets import missing

    if not missing():
        from .. import widgets

        return getattr(widgets, name)(reference, current, **options)
    from ..display import Message
    from ..monitoring.drift import drift

    report = drift(reference, current, **options)
    note = Message(f"for the interactive chart: pip install 'mlops-magics[widgets]' ({', '.join(missing())} missing)")
    return _Both(report, note)


class _Both:
    """Two display objects shown as one output."""

    def __init__(self, first, second) -> None:
        self.first, self.second = first, second

    def __repr__(self) -> str:
        return f"{self.first!r}\n{self.second!r}"

    def _repr_html_(self) -> str:
        return self.first._repr_html_() + self.second._repr_html_()
