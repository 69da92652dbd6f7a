"""``DriftWidget``: the verdict, per-feature scores, and the clicked feature's distribution."""

from __future__ import annotations

import html

import ipywidgets as widgets
import traitlets
from altair.jupyter.jupyter_chart import PointSelection

from ..monitoring._evaluate import DEFAULT_THRESHOLDS, METHODS
from ..monitoring.drift import drift, method_name
from ..monitoring.report import DriftReport
from ..monitoring.verdict import DEFAULT_SHARE
from . import charts
from .offline_chart import VegaChart, static_image

_HINT = "Click a bar to see that feature's reference and current distributions."
_OK, _BAD, _CAVEAT = "#2e7d32", "#c62828", "#8a5a00"
_SHORT = {"ks": "p <=", "chi2": "p <=", "psi": "PSI >=", "kl": "KL >=", "js": "JS >=", "wasserstein": "W1/std >="}


class DriftWidget(widgets.VBox):
    """Drift between two data sets, inline: ``DriftWidget(reference, current)``, or
    ``DriftWidget(report)`` for a ``DriftReport`` already computed (the same verdict, the
    same share, method, thresholds and features; the controls recompute from its inputs).

    ``reference`` and ``current`` are what ``mm.drift`` takes: DataFrames, Profiles or
    ``"runs:/<run_id>/<data name>"``. Shows the one-line verdict (under the one rule of
    ``mm.drift``, ``%drift`` and the CLI: ``share``, default ``naming.DRIFT_SHARE``), any
    small-sample caveat, each feature's score against its threshold (red when drifted,
    most drifted first or by the reference run's importance, details on hover) and, for
    the feature clicked, its reference and current distributions. The method dropdown and
    the threshold control recompute in place; the control sets the threshold of the
    method picked beside it and says which threshold each method has in effect.

    Observable traits: ``method``, ``threshold`` (None: each method's default; a number
    for every method; or ``{method: value}``), ``selected_feature``. ``.report`` is the
    current ``DriftReport``.
    """

    method = traitlets.Unicode("auto", help="Drift method: auto, psi, kl, js, wasserstein, ks or chi2.")
    threshold = traitlets.Union([traitlets.Float(), traitlets.Dict(value_trait=traitlets.Float())],
                                default_value=None, allow_none=True,
                                help="None: each method's default; a number for all; or {method: value}.")
    selected_feature = traitlets.Unicode(None, allow_none=True, help="The feature whose distribution is shown.")

    def __init__(self, reference, current=None, *, method: str | None = None, threshold=None,
                 features=None, share: float | None = None) -> None:
        if isinstance(reference, DriftReport):
            given = dict(reference.inputs)
            if not given:
                raise TypeError("this DriftReport does not know its inputs: pass reference and current data")
            report = reference if method is None and threshold is None and features is None and share is None \
                else None
            reference, current = given["reference"], given["current"]
            method = given.get("method", "auto") if method is None else method
            threshold = given.get("threshold") if threshold is None else threshold
            features = given.get("features") if features is None else features
            share = given.get("share", DEFAULT_SHARE) if share is None else share
            self._correction = given.get("correction")
        else:
            if current is None:
                raise TypeError("DriftWidget(reference, current) or DriftWidget(report)")
            report, self._correction = None, None
        self._reference, self._current, self._features = reference, current, features
        self._share = DEFAULT_SHARE if share is None else float(share)
        method = method or "auto"
        self.report = report if report is not None else self._compute(method, threshold)
        self._quiet = False
        self._verdict = widgets.HTML()
        self._method_box = widgets.Dropdown(options=["auto", *METHODS], description="method",
                                            layout=widgets.Layout(width="180px"),
                                            style={"description_width": "initial"})
        self._which = widgets.Dropdown(description="threshold of", layout=widgets.Layout(width="190px"),
                                       style={"description_width": "initial"},
                                       tooltip="the method whose threshold the slider sets")
        self._slider = widgets.FloatLogSlider(base=10, min=-3, max=0.5, step=0.01, description="",
                                              readout_format=".3g", continuous_update=False,
                                              layout=widgets.Layout(width="300px"),
                                              style={"description_width": "initial"})
        self._defaults = widgets.Button(description="defaults", tooltip="each method's default threshold",
                                        layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self._in_effect = widgets.HTML()
        self.scores = VegaChart(None)
        self.distribution = VegaChart(None)
        self._hint = widgets.HTML(f"<span style='color:#666'>{_HINT}</span>")
        controls = widgets.HBox([self._method_box, self._which, self._slider, self._defaults],
                                layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="center"))
        super().__init__([self._verdict, controls, self._in_effect, self.scores, self._hint, self.distribution])
        self.add_class("mlops-magics-drift")
        self._quiet = True
        self.method = method_name(method)
        self.threshold = _as_threshold(threshold)
        self._quiet = False
        self._sync_controls()
        self._draw()
        self._method_box.observe(lambda c: setattr(self, "method", c.new), names="value")
        self._which.observe(lambda c: self._sync_controls(), names="value")
        self._slider.observe(self._on_slider, names="value")
        self._defaults.on_click(lambda _: setattr(self, "threshold", None))
        self.scores.observe(self._on_pick, names="_vl_selections")

    def _compute(self, method: str, threshold) -> DriftReport:
        return drift(self._reference, self._current, method=method, threshold=threshold,
                     features=self._features, share=self._share, correction=self._correction)

    # -- reacting ------------------------------------------------------------------------------
    @traitlets.observe("method", "threshold")
    def _on_options(self, change) -> None:
        if self._quiet:
            return
        try:
            self.report = self._compute(self.method, self.threshold)
        except Exception as exc:  # shown where the verdict was, never lost in a callback
            self._verdict.value = _line(f"{type(exc).__name__}: {exc}", _BAD)
            return
        self._sync_controls()
        self._draw()

    @traitlets.observe("selected_feature")
    def _on_feature(self, change) -> None:
        self._draw_distribution()

    def _on_slider(self, change) -> None:
        if self._quiet or not self._which.value:
            return
        which, current = self._which.value, self.threshold
        mapping = dict(current) if isinstance(current, dict) else \
            ({m: float(current) for m in METHODS} if current is not None else {})
        mapping[which] = float(change.new)
        self.threshold = mapping

    def _on_pick(self, change) -> None:
        picked = feature_from_selection(change.new)
        if picked is not None:  # a click elsewhere keeps the distribution shown
            self.selected_feature = picked

    # -- drawing -------------------------------------------------------------------------------
    def thresholds_in_effect(self) -> dict[str, float]:
        """``{method: threshold}`` for the methods the current report used."""
        return dict(charts.in_effect(self.report.table))

    def _sync_controls(self) -> None:
        """Show the method, the methods in effect and the picked one's threshold in the
        controls without triggering them."""
        quiet, self._quiet = self._quiet, True
        try:
            if self.method in self._method_box.options:
                self._method_box.value = self.method
            effect = self.thresholds_in_effect()
            names = list(effect) or [self.method if self.method in METHODS else "psi"]
            if tuple(self._which.options) != tuple(names):
                keep = self._which.value if self._which.value in names else names[0]
                self._which.options = names
                self._which.value = keep
            which = self._which.value
            value = effect.get(which, _threshold_for(self.threshold, which))
            self._slider.value = value
            self._slider.description = _SHORT.get(which, which)
            self._in_effect.value = _in_effect_html(effect, self.threshold)
        finally:
            self._quiet = quiet

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

    def scores_chart(self, title: str | None = None):
        """The per-feature chart as shown (an Altair chart)."""
        table = self.report.table
        if self.report.importance:
            table = table.assign(importance=table["feature"].map(self.report.importance))
        return charts.drift_scores(table, selected=self.selected_feature, title=title)

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

        scores = self.scores_chart(title=self.report.verdict)
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


def _as_threshold(threshold):
    if threshold is None or isinstance(threshold, dict):
        return None if threshold is None else {method_name(k): float(v) for k, v in threshold.items()}
    return float(threshold)


def _threshold_for(threshold, method: str) -> float:
    if isinstance(threshold, dict) and method in threshold:
        return float(threshold[method])
    if isinstance(threshold, (int, float)):
        return float(threshold)
    return DEFAULT_THRESHOLDS.get(method, DEFAULT_THRESHOLDS["psi"])


def _in_effect_html(effect: dict[str, float], threshold) -> str:
    if not effect:
        return ""
    given = threshold if isinstance(threshold, dict) else {m: threshold for m in effect} if threshold is not None \
        else {}
    parts = [f"{html.escape(charts.drift_when(m, v))} ({html.escape(m)}"
             + (", default)" if m not in given else ")") for m, v in effect.items()]
    return ("<div style='color:#444;font-size:12px;padding:0 0 2px 4px'>in effect: "
            + " · ".join(parts) + "</div>")


def _verdict_html(report) -> str:
    color = _BAD if report.drifted else _OK
    text = f"<b>{html.escape(report.verdict)}</b>"
    sources = f"<span style='color:#666'> {html.escape(report.reference)} → {html.escape(report.current)}</span>"
    skipped = report.table[(report.table["method"] == "") & (report.table["status"] != "ok")]
    notes = "; ".join(f"{f}: {s}" for f, s in zip(skipped["feature"], skipped["status"]))
    extra = f"<div style='color:#666'>{html.escape(notes)}</div>" if notes else ""
    caveats = "".join(f"<div style='color:{_CAVEAT}'>caveat: {html.escape(c)}</div>" for c in report.caveats)
    return f"<div style='border-left:3px solid {color};padding:2px 8px'>{text}{sources}{extra}{caveats}</div>"


def _line(text: str, color: str) -> str:
    return f"<div style='border-left:3px solid {color};padding:2px 8px;color:{color}'>{html.escape(text)}</div>"
