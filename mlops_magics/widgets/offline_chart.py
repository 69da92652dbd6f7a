"""``VegaChart``: Altair's ``JupyterChart`` with its JavaScript served by the kernel, once.

Altair's default front end imports Vega from a CDN; ``JupyterChart.enable_offline()``
inlines the whole 0.9 MB bundle into every chart's ``_esm``, and so into the notebook's
saved widget state, once per chart. Here ``_esm`` is a 2 kB loader (``_loader.js``): the
first chart on a page asks the kernel for the bundle over its comm (a custom message,
never part of the widget state), imports it from a ``blob:`` URL and caches the module
on the page, keyed by the Altair and vl-convert versions; every later chart reuses it.
The bundle is built by vl-convert in the kernel, from the wheels: nothing leaves the machine.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import altair as alt
import vl_convert as vlc
from altair.jupyter.jupyter_chart import load_js_src
from altair.utils._importers import vl_version_for_vl_convert

BUNDLE_KEY = f"altair-{alt.__version__}+vl-convert-{vlc.__version__}"
_REQUEST, _REPLY = "mlops-magics:bundle?", "mlops-magics:bundle"
_lock = threading.Lock()
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}


@lru_cache(maxsize=1)
def _bundle_cached() -> bytes:
    # Altair's own renderer (index.js) without its CDN imports, bundled with Vega,
    # Vega-Lite, vega-embed and lodash.debounce: what enable_offline() does, but once.
    lines = load_js_src().split("\n")
    while lines and (not lines[0].strip() or lines[0].startswith(("import", "//"))):
        lines.pop(0)
    return vlc.javascript_bundle("\n".join(lines), vl_version=vl_version_for_vl_convert()).encode()


def bundle() -> bytes:
    """The chart library as one ES module (about 0.9 MB), built on first use (about 1 s)."""
    with _lock:
        return _bundle_cached()


def prefetch() -> None:
    """Build the bundle in the background, so the first chart's request finds it ready."""
    if _bundle_cached.cache_info().currsize == 0:
        threading.Thread(target=bundle, name="mlops-magics-vega-bundle", daemon=True).start()


def _loader() -> str:
    source = (Path(__file__).with_name("_loader.js")).read_text(encoding="utf-8")
    return source.replace("__BUNDLE_KEY__", BUNDLE_KEY)


class VegaChart(alt.JupyterChart):
    """An Altair chart widget (``.chart``, ``.selections``, ``.params``) that works offline
    without storing the Vega library in the notebook. ``chart=None`` shows nothing."""

    _esm = _loader()

    def __init__(self, chart=None, **kwargs) -> None:
        # SVG marks (readable, testable); export actions only: "Open in Vega Editor" would
        # send the chart to a web site.
        kwargs.setdefault("embed_options", EMBED_OPTIONS)
        super().__init__(chart, **kwargs)
        if chart is None:
            self.spec = None
        self.on_msg(self._answer)
        prefetch()

    def _answer(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != _REQUEST:
            return
        try:
            data = bundle()
        except Exception as exc:  # vl-convert missing or broken: say so in the chart's place
            self.send({"type": _REPLY, "error": f"{type(exc).__name__}: {exc}"})
            return
        self.send({"type": _REPLY}, buffers=[data])


SVG_LIMIT = 150_000  # above this an SVG (one element per mark) is bigger than the PNG


def static_image(chart) -> dict[str, str]:
    """The chart as an image for the mimebundle, rendered by vl-convert in the kernel (no
    browser, no network): ``image/svg+xml``, or ``image/png`` (base64) when the SVG
    would be large (many points), so saved notebooks stay light."""
    spec, version = chart.to_dict(), vl_version_for_vl_convert()
    text = vlc.vegalite_to_svg(spec, vl_version=version)
    if len(text) <= SVG_LIMIT:
        return {"image/svg+xml": text}
    import base64

    return {"image/png": base64.b64encode(vlc.vegalite_to_png(spec, vl_version=version, scale=1)).decode()}
