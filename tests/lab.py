"""A real JupyterLab for browser tests, and headless Chromium driving it through Playwright.

``Lab`` runs ``jupyter lab`` on 127.0.0.1 with a token on a free port, everything (settings,
runtime, IPython dir, MLflow store, journal) under one temporary folder; ``chromium()`` launches
Debian's ``chromium`` (``/usr/bin/chromium``, never a browser download) by ``executable_path``;
``Page`` is one JupyterLab tab with every request and websocket it opens recorded. Used by
``test_browser`` and ``test_lab_extension``; the ``browser`` fixture is in conftest.py.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from conftest import skip_or_fail
from servers import free_port

CHROMIUM = os.environ.get("MLOPS_MAGICS_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LOCAL = {"127.0.0.1"}


def require_browser() -> None:
    """Playwright, JupyterLab and Chromium, or a skip (a failure under CI) naming the fix."""
    missing = []
    for module, pip in (("playwright", "playwright"), ("jupyterlab", "jupyterlab"), ("altair", "altair"),
                        ("anywidget", "anywidget"), ("vl_convert", "vl-convert-python")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"pip install {pip}")
    if not Path(CHROMIUM).exists():
        missing.append("apt-get install chromium (Debian's package; Playwright's own browser download is not used)")
    if missing:
        skip_or_fail("browser tests need: " + "; ".join(missing))


# -- JupyterLab ------------------------------------------------------------------------------
class Lab:
    """A JupyterLab server process on 127.0.0.1 with everything under one temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.store = f"sqlite:///{root / 'mlflow.db'}"
        self.log = root.parent / "jupyterlab.log"
        self.config = root.parent / "jupyter-config" / "jupyter_server_config.json"
        self.config.parent.mkdir()
        quiet = root.parent / "lab-settings" / "@jupyterlab" / "apputils-extension"
        quiet.mkdir(parents=True)  # no "get notified about Jupyter news?" toast over the page
        (quiet / "notification.jupyterlab-settings").write_text(json.dumps(
            {"fetchNews": "false", "checkForUpdates": False}))
        self.config.write_text(json.dumps({
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
        self.env = {**os.environ, "JUPYTER_CONFIG_DIR": str(self.config.parent),
                    "JUPYTER_DATA_DIR": str(root.parent / "jupyter-data"),
                    "JUPYTER_RUNTIME_DIR": str(root.parent / "jupyter-runtime"),
                    "JUPYTERLAB_SETTINGS_DIR": str(root.parent / "lab-settings"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(root.parent / "lab-workspaces"),
                    "IPYTHONDIR": str(root.parent / "ipython"), "MLFLOW_TRACKING_URI": self.store,
                    "MLOPS_MAGICS_HOME": str(root / ".mlops_magics"), "PYTHONUNBUFFERED": "1"}
        self.env.pop("MLFLOW_EXPERIMENT_NAME", None)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
               "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not listen within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}&reset"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own process (its own session: kernels go with it)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# -- the browser -------------------------------------------------------------------------------
@contextmanager
def chromium():
    """Debian's chromium, headless, launched by Playwright from its path (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Page:
    """One JupyterLab tab with every request and websocket recorded; ``context`` options are
    Playwright's ``new_context`` keywords (viewport, timezone_id, ...)."""

    def __init__(self, browser, lab: Lab, **context) -> None:
        self.context = browser.new_context(**{"viewport": {"width": 1200, "height": 1400}, **context})
        self.requests: list[str] = []
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.errors: list[str] = []
        self.context.on("request", self._request)
        self.page = self.context.new_page()
        self.page.on("websocket", self._websocket)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.lab = lab

    def _request(self, request) -> None:
        self.requests.append(request.url)

    def _websocket(self, ws) -> None:
        self.requests.append(ws.url)
        ws.on("framesent", lambda payload: self.sent.append(_bytes(payload)))
        ws.on("framereceived", lambda payload: self.received.append(_bytes(payload)))

    def open(self, notebook: str) -> None:
        self.page.goto(self.lab.url(notebook))
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        self.page.wait_for_function("""() => {
            const nb = window.jupyterapp?.shell.currentWidget;
            return nb?.sessionContext?.session?.kernel?.status === "idle"; }""", timeout=60_000)

    def run_all(self, timeout: float = 120_000) -> None:
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.wait_idle(timeout)

    def run_cell(self, index: int, timeout: float = 60_000) -> str:
        """Run cell ``index`` and return its output text."""
        self.page.evaluate("""async (i) => {
            const nb = window.jupyterapp.shell.currentWidget;
            nb.content.activeCellIndex = i;
            await window.jupyterapp.commands.execute('notebook:run-cell');
        }""", index)
        self.wait_idle(timeout)
        return self.output(index)

    def wait_idle(self, timeout: float) -> None:
        self.page.wait_for_function("""() => {
            const nb = window.jupyterapp.shell.currentWidget;
            const busy = nb.content.widgets.some(
                c => c.model.type === "code" && c.promptNode?.textContent.includes("*"));
            return !busy && nb.sessionContext.session?.kernel?.status === "idle"; }""", timeout=timeout)

    def output(self, index: int) -> str:
        return self.page.evaluate("""(i) => {
            const nb = window.jupyterapp.shell.currentWidget;
            return nb.content.widgets[i].outputArea.node.innerText; }""", index)

    def screenshot(self, path: Path, selector: str | None = None) -> Path:
        keep = os.environ.get("MLOPS_MAGICS_ARTIFACTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            path = Path(keep) / path.name
        self.page.mouse.move(1, 1)  # no tooltip left over the chart
        self.page.wait_for_timeout(200)
        target = self.page.locator(selector).first if selector else self.page
        target.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname or urlsplit(u).scheme for u in self.requests}

    def remote_hosts(self) -> set[str]:
        """Hosts other than this machine's loopback; blob: and data: URLs are in-page."""
        return {h for h in self.hosts() if h not in LOCAL and h not in ("blob", "data")}

    def close(self) -> None:
        self.context.close()


def _bytes(payload) -> bytes:
    return payload if isinstance(payload, bytes) else str(payload).encode()
