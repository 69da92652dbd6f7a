"""``HistoryWidget``: a metric across an experiment's runs, the best run and the champion."""

from __future__ import annotations

import html

import ipywidgets as widgets
import pandas as pd
import traitlets
from altair.jupyter.jupyter_chart import PointSelection

from .. import locations
from . import _runs, charts
from .offline_chart import VegaChart, static_image

_GREY = "#666"


class HistoryWidget(widgets.VBox):
    """A metric of every tracked cell and job run over time: ``HistoryWidget("churn", "f1")``.

    x is the run sequence (the dates when the runs span days); points are coloured by what
    ran them (cell, job, sweep point, scheduled, retrain); lines join only the runs of one
    cell or one schedule. Marks the threshold rule (the wrong side shaded), the best run
    (diamond) and the run whose registered model holds the ``champion`` alias (ring),
    both labelled where no point is. Hover for run name, params and data fingerprints; the
    dropdown switches between the experiment's metrics. Clicking a point highlights it,
    sets ``selected_run`` (observable) and offers the drift of one of that run's logged
    inputs (the ``data`` dropdown) against the same data of the latest run.
    ``slices=True`` adds one line per ``<metric>.slice.<group>`` (``mm.log_slices``).
    ``refresh()`` picks up new runs.

    Loss-like metrics (loss, error, rmse, ...) count lower as better unless
    ``greater_is_better`` says otherwise.
    """

    experiment = traitlets.Unicode(help="The MLflow experiment shown.")
    metric = traitlets.Unicode("f1", help="The metric shown.")
    threshold = traitlets.Float(None, allow_none=True, help="The threshold rule; None: no rule.")
    selected_run = traitlets.Unicode(None, allow_none=True, help="run_id of the point clicked last.")

    def __init__(self, experiment: str | None = None, metric: str = "f1", *, threshold: float | None = None,
                 greater_is_better: bool | None = None, alias: str = "champion",
                 tracking_uri: str | None = None, max_points: int = charts.MAX_POINTS, slices: bool = False) -> None:
        self._client = _runs.client(tracking_uri)
        self._experiment = _runs.experiment(self._client, locations.experiment_name(experiment))
        self._greater, self._alias, self._max_points, self._slices = greater_is_better, alias, max_points, slices
        self.runs = pd.DataFrame()
        self._quiet = True
        self._summary = widgets.HTML()
        self._metric_box = widgets.Dropdown(description="metric", layout=widgets.Layout(width="240px"))
        self._refresh_button = widgets.Button(description="refresh", icon="refresh",
                                              layout=widgets.Layout(width="100px"))
        self.chart = VegaChart(None)
        self._details = widgets.HTML(layout=widgets.Layout(flex="1 1 320px", min_width="0"))
        self._data_box = widgets.Dropdown(description="data", disabled=True, options=[],
                                          layout=widgets.Layout(width="auto", flex="0 0 auto"),
                                          style={"description_width": "initial"},
                                          tooltip="which of the selected run's logged inputs to compare")
        self._drift_button = widgets.Button(description="drift vs latest run", disabled=True,
                                            layout=widgets.Layout(width="auto", flex="0 0 auto"),
                                            tooltip="compare this data of the selected run with the latest run's")
        self._drift_slot = widgets.VBox()
        wrap = widgets.Layout(display="flex", flex_flow="row wrap", align_items="center", width="100%")
        super().__init__([self._summary, widgets.HBox([self._metric_box, self._refresh_button], layout=wrap),
                          self.chart, widgets.HBox([self._data_box, self._drift_button, self._details], layout=wrap),
                          self._drift_slot])
        self.add_class("mlops-magics-history")
        self.experiment, self.metric, self.threshold = self._experiment.name, metric, threshold
        try:
            self._load()
            self._check_metric(metric)
        except Exception:
            _close_tree(self)  # no orphaned comms for a widget never shown
            raise
        self._quiet = False
        self._draw()
        self._metric_box.observe(self._on_metric_box, names="value")
        self._refresh_button.on_click(lambda _: self.refresh())
        self._drift_button.on_click(lambda _: self._show_drift())
        self.chart.observe(self._on_pick, names="_vl_selections")

    # -- data ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Query MLflow again and redraw in place (same widget, same chart)."""
        self._load()
        self._draw()

    def _load(self) -> None:
        self.runs = _runs.load_runs(self._client, self._experiment.experiment_id)
        marks = _runs.champions(self._client, self.runs["run_id"], self._alias) if len(self.runs) else {}
        self.runs["champion"] = self.runs["run_id"].map(marks).fillna("") if len(self.runs) else []
        names = _runs.metric_names(self.runs)
        quiet, self._quiet = self._quiet, True
        try:
            self._metric_box.options = names if self.metric in names else [self.metric, *names]
            self._metric_box.value = self.metric
        finally:
            self._quiet = quiet

    def _check_metric(self, metric: str) -> None:
        names = _runs.metric_names(self.runs)
        if names and metric not in names:
            from ..errors import did_you_mean

            raise _runs.HistoryError(f"no run in experiment {self.experiment!r} has metric {metric!r}."
                                     f"{did_you_mean(metric, names)} Metrics: {', '.join(names[:12])}")

    # -- reacting ----------------------------------------------------------------------------------
    @traitlets.observe("metric", "threshold")
    def _on_options(self, change) -> None:
        if not self._quiet:
            self._draw()

    @traitlets.observe("experiment")
    def _on_experiment(self, change) -> None:
        if not self._quiet:
            self._experiment = _runs.experiment(self._client, change.new)
            self.selected_run = None
            self.refresh()

    @traitlets.observe("selected_run")
    def _on_selected(self, change) -> None:
        self._describe_selection()

    def _on_metric_box(self, change) -> None:
        if not self._quiet and change.new:
            self.metric = change.new

    def _on_pick(self, change) -> None:
        picked = run_from_selection(change.new)
        if picked is not None:
            self.selected_run = picked

    # -- drawing -------------------------------------------------------------------------------------
    def history_chart(self):
        """The chart as shown (an Altair chart)."""
        return charts.metric_history(self.runs, self.metric, threshold=self.threshold,
                                     greater_is_better=self._greater, max_points=self._max_points,
                                     selected=self.selected_run, slices=self._slices)

    def _draw(self) -> None:
        with self.hold_sync():
            self._summary.value = self._summary_html()
            self.chart.chart = self.history_chart()
            self._describe_selection()

    def _summary_html(self) -> str:
        n = int(self.runs[f"metrics.{self.metric}"].notna().sum()) if f"metrics.{self.metric}" in self.runs else 0
        text = f"<b>{html.escape(self.metric)}</b> of {n:,} runs in experiment <b>{html.escape(self.experiment)}</b>"
        if not len(self.runs):
            text += " · no runs yet: press refresh after the first tracked run"
        return f"<div style='padding:2px 0'>{text}</div>"

    def _describe_selection(self) -> None:
        row = self._run_row(self.selected_run)
        self._drift_button.disabled = row is None
        logged = row.get("inputs") if row is not None else None
        inputs = list(logged) if isinstance(logged, (list, tuple)) else []
        keep = self._data_box.value
        self._data_box.options = inputs
        self._data_box.value = keep if keep in inputs else (_training_first(inputs) if inputs else None)
        self._data_box.disabled = len(inputs) < 2
        if row is None:
            self._details.value = f"<span style='color:{_GREY}'>Click a point to select its run.</span>"
            return
        value = row.get(f"metrics.{self.metric}")
        bits = [f"<b>{html.escape(str(row['run_name'] or row['run_id']))}</b>", f"<code>{row['run_id']}</code>",
                f"{html.escape(self.metric)} {value:.4g}" if pd.notna(value) else "",
                html.escape(str(row["params"])), html.escape(str(row["data"]))]
        self._details.value = "<span>" + " · ".join(b for b in bits if b) + "</span>"

    def _run_row(self, run_id: str | None):
        if not run_id or not len(self.runs):
            return None
        found = self.runs[self.runs["run_id"] == run_id]
        return None if found.empty else found.iloc[0]

    # -- drift from the selected run ------------------------------------------------------------------
    def latest_run(self, besides: str | None = None) -> str | None:
        """The newest run with the metric shown, other than ``besides``."""
        col = f"metrics.{self.metric}"
        runs = self.runs[self.runs[col].notna()] if col in self.runs else self.runs.iloc[0:0]
        runs = runs[runs["run_id"] != besides]
        return None if runs.empty else str(runs.sort_values("start_time").iloc[-1]["run_id"])

    def drift_to_latest(self, run_id: str | None = None, data: str | None = None):
        """A ``DriftWidget`` from the profile of ``data`` (default: the one picked in the
        ``data`` dropdown, else the run's first training input) logged by ``run_id``
        (default: the selected run) to the same data of the latest run."""
        from ._drift_widget import DriftWidget

        reference = run_id or self.selected_run
        if reference is None:
            raise _runs.HistoryError("select a run first (click a point), or pass run_id")
        current = self.latest_run(besides=reference)
        if current is None:
            raise _runs.HistoryError("there is no other run to compare with")
        if data is None and reference == self.selected_run:
            data = self._data_box.value
        name = data or _runs.common_profile(self._client, self.runs, reference, current)
        return DriftWidget(f"runs:/{reference}/{name}", f"runs:/{current}/{name}")

    def _show_drift(self) -> None:
        try:
            self._drift_slot.children = [self.drift_to_latest()]
        except Exception as exc:  # shown under the chart, not lost in a callback
            self._drift_slot.children = [widgets.HTML(
                f"<span style='color:#c62828'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>")]

    # -- static fallback ---------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self._text()
        data.update(static_image(self.history_chart()))
        return data

    def _text(self) -> str:
        frame = charts.history_frame(self.runs, self.metric) if len(self.runs) else pd.DataFrame()
        head = f"{self.metric} of {len(frame):,} runs in experiment {self.experiment!r}"
        if not len(frame):
            return head
        gib = self._greater if self._greater is not None else not charts.lower_is_better(self.metric)
        best = frame.loc[frame["value"].idxmax() if gib else frame["value"].idxmin()]
        return f"{head}; best {best['value']:.4g} ({best['run_name'] or best['run_id']})"


def _training_first(names: list[str]) -> str:
    """The input to compare by default: one whose name says train, else the first."""
    return next((n for n in names if "train" in n.lower()), names[0])


def _close_tree(widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def run_from_selection(selections: dict) -> str | None:
    """The run_id a click picked, from JupyterChart's synced ``_vl_selections``."""
    sel = (selections or {}).get(charts.RUN_PICK) or {}
    value = PointSelection.from_vega(charts.RUN_PICK, signal=sel.get("value"), store=sel.get("store") or []).value
    return str(value[0]["run_id"]) if value and "run_id" in value[0] else None
