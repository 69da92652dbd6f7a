"""``DriftWidget``: the verdict, per-feature scores, and the clicked feature's distribution."""

from __future__ import annotations

import html

import ipywidgets as widgets
import traitlets
from altair.jupyter.jupyter_chart import PointSelection

from ..monitoring._evaluate import DEFAULT_THRESHOLDS, METHODS
from ..monitoring.drift import drift, method_name
from . import charts
from ._chart import VegaChart, static_image

_HINT = "Click a bar to see that feature's reference and current distributions."
_OK, _BAD = "#2e7d32", "#c62828"


class DriftWidget(widgets.VBox):
    """Drift between two data sets, inline: ``DriftWidget(reference, current)``.

    ``reference`` and ``current`` are what ``mm.drift`` takes: DataFrames, Profiles or
    ``"runs:/<run_id>/<data name>"``. Shows the one-line verdict, each feature's score
    against its threshold (red when drifted, most drifted first, details on hover) and,
    for the feature clicked, its reference and current distributions. The method
    dropdown and the threshold slider recompute in place.

    Observable traits: ``method``, ``threshold`` (None: each method's default),
    ``selected_feature``. ``.report`` is the current ``DriftReport``.
    """

    method = traitlets.Unicode("auto", help="Drift method: auto, psi, kl, js, wasserstein, ks or chi2.")
    threshold = traitlets.Float(None, allow_none=True, help="One threshold for all methods; None: defaults.")
    selected_feature = traitlets.Unicode(None, allow_none=True, help="The feature whose distribution is shown.")

    def __init__(self, reference, current, *, method: str = "auto", threshold: float | None = None,
                 features=None) -> None:
        self._reference, self._current, self._features = reference, current, features
        self.report = drift(reference, current, method=method, threshold=threshold, features=features)
        self._quiet = False
        self._verdict = widgets.HTML()
        self._method_box = widgets.Dropdown(options=["auto", *METHODS], description="method",
                                            layout=widgets.Layout(width="190px"))
        self._slider = widgets.FloatLogSlider(base=10, min=-3, max=0, step=0.01, description="threshold",
                                              readout_format=".3g", continuous_update=False,
                                              style={"description_width": "initial"})
        self._defaults = widgets.Button(description="defaults", tooltip="each method's default threshold",
                                        layout=widgets.Layout(width="80px"))
        self.scores = VegaChart(None)
        self.distribution = VegaChart(None)
        self._hint = widgets.HTML(f"<span style='color:#666'>{_HINT}</span>")
        super().__init__([self._verdict, widgets.HBox([self._method_box, self._slider, self._defaults]),
                          self.scores, self._hint, self.distribution])
        self.add_class("mlops-magics-drift")
        self._quiet = True
        self.method = method_name(method)
        self.threshold = None if threshold is None else float(threshold)
        self._quiet = False
        self._sync_controls()
        self._draw()
        self._method_box.observe(lambda c: setattr(self, "method", c.new), names="value")
        self._slider.observe(self._on_slider, names="value")
        self._defaults.on_click(lambda _: setattr(self, "threshold", None))
        self.scores.observe(self._on_pick, names="_vl_selections")

    # -- reacting ------------------------------------------------------------------------------
    @traitlets.observe("method", "threshold")
    def _on_options(self, change) -> None:
        if self._quiet:
            return
        self._sync_controls()
        try:
            self.report = drift(self._reference, self._current, method=self.method,
                                threshold=self.threshold, features=self._features)
        except Exception as exc:  # shown where the verdict was, never lost in a callback
            self._verdict.value = _line(f"{type(exc).__name__}: {exc}", _BAD)
            return
        self._draw()

    @traitlets.observe("selected_feature")
    def _on_feature(self, change) -> None:
        self._draw_distribution()

    def _on_slider(self, change) -> None:
        if not self._quiet:
            self.threshold = float(change.new)

    def _on_pick(self, change) -> None:
        picked = feature_from_selection(change.new)
        if picked is not None:  # a click elsewhere keeps the distribution shown
            self.selected_feature = picked

    # -- drawing -------------------------------------------------------------------------------
    def _sync_controls(self) -> None:
        """Show the method and threshold in the controls without triggering them."""
        self._quiet = True
        try:
            if self.method in self._method_box.options:
                self._method_box.value = self.method
            self._slider.value = self.threshold if self.threshold is not None else _default(self.method)
            self._slider.description = "threshold" if self.threshold is not None else "threshold (default)"
        finally:
            self._quiet = False

    def _draw(self) -> None:
        r = self.report
        with self.hold_sync():
            self._verdict.value = _verdict_html(r)
            self.scores.chart = self.scores_chart()
            self._draw_distribution()

    def _draw_distribution(self) -> None:
        chart = self.distribution_chart()
        self.distribution.chart = chart
        self._hint.layout.display = "none" if chart is not None else None

    def scores_chart(self):
        """The per-feature chart as shown (an Altair chart)."""
        return charts.drift_scores(self.report.table, selected=self.selected_feature)

    def distribution_chart(self):
        """The selected feature's distribution chart, or None."""
        name = self.selected_feature
        if name is None or name not in set(self.report.table["feature"]):
            return None
        hist = histogram(self.report, name)
        return None if hist is None else charts.distribution(hist, name)

    # -- static fallback ---------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = repr(self.report)
        data.update(static_image(self.static_chart()))
        return data

    def static_chart(self):
        """What the SVG fallback shows: the verdict as title, the scores, the distribution."""
        import altair as alt

        scores = charts.drift_scores(self.report.table, selected=self.selected_feature,
                                     title=self.report.verdict)
        dist = self.distribution_chart()
        if dist is None:
            return scores
        return alt.vconcat(scores, dist).resolve_scale(color="independent").resolve_legend(color="independent")


def histogram(report, feature: str):
    """``report.histogram(feature)`` with ``lo``/``hi`` from ``report.edges(feature)`` when
    the buckets are numeric ranges; None when the feature has no buckets."""
    try:
        hist = report.histogram(feature)
    except Exception:  # no buckets: not compared (empty, new, unsupported)
        return None
    return charts.bucket_edges(hist, report.edges(feature))


def feature_from_selection(selections: dict) -> str | None:
    """The feature a click picked, from JupyterChart's synced ``_vl_selections``."""
    sel = (selections or {}).get(charts.FEATURE_PICK) or {}
    value = PointSelection.from_vega(charts.FEATURE_PICK, signal=sel.get("value"), store=sel.get("store") or []).value
    return str(value[0]["feature"]) if value and "feature" in value[0] else None


def _default(method: str) -> float:
    return DEFAULT_THRESHOLDS.get(method, DEFAULT_THRESHOLDS["psi"])


def _verdict_html(report) -> str:
    color = _BAD if report.drifted else _OK
    text = f"<b>{html.escape(report.verdict)}</b>"
    sources = f"<span style='color:#666'> {html.escape(report.reference)} → {html.escape(report.current)}</span>"
    skipped = report.table[(report.table["method"] == "") & (report.table["status"] != "ok")]
    notes = "; ".join(f"{f}: {s}" for f, s in zip(skipped["feature"], skipped["status"]))
    extra = f"<div style='color:#666'>{html.escape(notes)}</div>" if notes else ""
    return f"<div style='border-left:3px solid {color};padding:2px 8px'>{text}{sources}{extra}</div>"


def _line(text: str, color: str) -> str:
    return f"<div style='border-left:3px solid {color};padding:2px 8px;color:{color}'>{html.escape(text)}</div>"
