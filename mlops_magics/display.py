"""What users see: small display objects with both ``text/html`` and ``text/plain``.

They read well in JupyterLab, in terminal IPython and in papermill's saved
notebooks. No IPython import: any frontend that calls ``_repr_html_`` works.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import naming
from .locations import display_uri

if TYPE_CHECKING:
    from .tracking.session import CellRun

_CSS = ("font-family:var(--jp-code-font-family,monospace);font-size:12px;border-left:3px solid {c};"
        "padding:4px 8px;margin:2px 0;line-height:1.5")
_OK, _BAD, _WARN = "#2e7d32", "#c62828", "#ef6c00"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _e(text: object) -> str:
    return html.escape(str(text))


class Message:
    """A one-line notice: ``Message("3 records pending", level="warning")``."""

    def __init__(self, text: str, level: str = "info") -> None:
        self.text, self.level = text, level

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        color = {"info": _OK, "warning": _WARN, "error": _BAD}.get(self.level, _OK)
        return f'<div style="{_CSS.format(c=color)}">{_e(self.text)}</div>'


class Table:
    """A small table with a caption."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> None:
        self.columns, self.rows, self.caption = list(columns), [list(r) for r in rows], caption

    def __repr__(self) -> str:
        cells = [self.columns] + [[str(c) for c in r] for r in self.rows]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(([self.caption] if self.caption else []) + lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{_e(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        cap = f"<caption style='text-align:left'>{_e(self.caption)}</caption>" if self.caption else ""
        return f"<table class='mlops-magics'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class CellSummary:
    """The compact summary shown under a tracked cell, with what changed since last time."""

    def __init__(self, run: CellRun, pending: int = 0, last_error: str | None = None) -> None:
        self.run, self.pending, self.last_error = run, pending, last_error

    def lines(self) -> list[tuple[str, str]]:
        r, prev = self.run, self.run.previous
        head = f"{r.name} · {r.status} · experiment {r.experiment} · key {r.key[:8]}"
        if r.error:
            head += f" · {r.error}"
        out = [("run", head)]
        if r.params:
            out.append(("params", " · ".join(_param_change(k, v, prev) for k, v in r.params.items())))
        if r.metrics:
            out.append(("metrics", " · ".join(_metric_change(k, v, prev) for k, v in r.metrics.items())))
        if r.step_points:
            out.append(("steps", f"{r.step_points} metric points logged"))
        if r.data or r.unhashed:
            items = [_data_change(d, prev) for d in r.data]
            items += [f"{name}: not fingerprinted ({why})" for name, why in r.unhashed.items()]
            out.append(("data", " · ".join(items)))
        if prev is not None:
            gone = sorted(set(prev.params) - set(r.params))
            if gone:
                out.append(("removed", "params " + ", ".join(gone)))
        u = r.usage
        out.append(("system", f"wall {u[naming.SYSTEM_WALL]:.3g} s · cpu {u[naming.SYSTEM_CPU]:.3g} s · "
                              f"peak mem +{u[naming.SYSTEM_PEAK_MEM]:.1f} MB"))
        for a in r.alerts:
            out.append(("alert", a))
        for w in r.warnings:
            out.append(("warning", w))
        if self.last_error:
            out.append(("waiting", f"{self.pending} earlier records wait for {display_uri(r.uri)} ({self.last_error}); "
                                   "they are delivered when it answers, or on %track flush"))
        return out

    def __repr__(self) -> str:
        mark = "✓" if self.run.status == "FINISHED" else "✗"
        return "\n".join(f"{mark if i == 0 else ' '} {k:<8} {v}" for i, (k, v) in enumerate(self.lines()))

    def _repr_html_(self) -> str:
        color = _OK if self.run.status == "FINISHED" else _BAD
        rows = "".join(
            f"<tr><td style='color:{_WARN if k in ('warning', 'alert') else '#666'};padding-right:8px;vertical-align:top'>"
            f"{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in self.lines())
        return f'<div class="mlops-magics-summary" style="{_CSS.format(c=color)}"><table>{rows}</table></div>'


def _param_change(key: str, value: str, prev: CellRun | None) -> str:
    if prev is None or key not in prev.params:
        return f"{key}={value}" + (" (new)" if prev is not None else "")
    old = prev.params[key]
    return f"{key}={value}" if old == value else f"{key}={value} (was {old})"


def _metric_change(key: str, value: float, prev: CellRun | None) -> str:
    if prev is None or key not in prev.metrics:
        return f"{key}={_fmt(value)}" + (" (new)" if prev is not None else "")
    delta = value - prev.metrics[key]
    if delta == 0:
        return f"{key}={_fmt(value)} (=)"
    return f"{key}={_fmt(value)} ({'+' if delta > 0 else '−'}{_fmt(abs(delta))})"


def _data_change(d: dict, prev: CellRun | None) -> str:
    shape = "×".join(str(s) for s in d["shape"]) if d.get("shape") else ""
    text = f"{d['context'][:3]} {d['name']} {d['short']}" + (f" [{shape}]" if shape else "")
    if prev is None:
        return text
    same = [p for p in prev.data if p["name"] == d["name"] and p["context"] == d["context"]]
    if not same:
        return text + " (new)"
    if same[-1]["digest"] == d["digest"]:
        return text + " (unchanged)"
    if d.get("schema_digest") and same[-1].get("schema_digest") != d.get("schema_digest"):
        return text + " (schema changed)"
    return text + " (values changed)"
