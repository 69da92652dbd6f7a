"""The widgets in a real JupyterLab, driven in headless Chromium by Playwright.

JupyterLab runs on 127.0.0.1 with a temporary root, settings and MLflow store; Debian's
``chromium`` (``/usr/bin/chromium``, never a browser download) opens the notebooks in
``tests/notebooks/widgets_*.ipynb``, runs them, clicks marks and checks what Python saw
through a later cell's output. Every request and websocket the page opens is recorded:
all must go to 127.0.0.1. Screenshots are written under the test's tmp_path, or under
$MLOPS_MAGICS_ARTIFACTS when set (CI can keep them); their paths are printed.

Under CI=true a missing browser, Playwright or JupyterLab fails the tests; elsewhere it
skips them with what to install.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

HERE = Path(__file__).parent
CHROMIUM = os.environ.get("MLOPS_MAGICS_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LOCAL = {"127.0.0.1"}

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]


def _require():
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
        message = "browser tests need: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


# -- JupyterLab ------------------------------------------------------------------------------
class Lab:
    """A JupyterLab server process on 127.0.0.1 with everything under one temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.store = f"sqlite:///{root / 'mlflow.db'}"
        self.log = root.parent / "jupyterlab.log"
        config = root.parent / "jupyter-config"
        config.mkdir()
        quiet = root.parent / "lab-settings" / "@jupyterlab" / "apputils-extension"
        quiet.mkdir(parents=True)  # no "get notified about Jupyter news?" toast over the page
        (quiet / "notification.jupyterlab-settings").write_text(json.dumps(
            {"fetchNews": "false", "checkForUpdates": False}))
        (config / "jupyter_server_config.json").write_text(json.dumps({
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
        self.env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require()
    root = tmp_path_factory.mktemp("lab") / "root"
    root.mkdir()
    for nb in HERE.glob("notebooks/widgets_*.ipynb"):
        shutil.copy(nb, root / nb.name)
    server = Lab(root)
    _history_runs(server.store, root)
    server.start()
    yield server
    server.stop()


def _history_runs(store: str, root: Path) -> None:
    """Tracked runs with f1, params, data fingerprints and profiles; a champion."""
    here = os.getcwd()
    os.chdir(root)  # MLflow puts the artifact root beside the working directory
    try:
        from mlflow import MlflowClient
        from test_widgets import crown, make_runs

        client = MlflowClient(tracking_uri=store)
        ids = make_runs(client, "churn", f1s=(0.71, 0.83, 0.78, 0.88, 0.80, 0.76, 0.85), inputs=("X_train", "X_test"))
        crown(client, ids[1])
    finally:
        os.chdir(here)


# -- the browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


class Page:
    """One JupyterLab tab with every request and websocket recorded."""

    def __init__(self, browser, lab: Lab) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 1400})
        self.requests: list[str] = []
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.on("websocket", self._websocket)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.lab = lab

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

    def close(self) -> None:
        self.context.close()


def _bytes(payload) -> bytes:
    return payload if isinstance(payload, bytes) else str(payload).encode()


@pytest.fixture
def tab(browser, lab):
    page = Page(browser, lab)
    yield page
    page.close()


def _remote(hosts: set[str]) -> set[str]:
    """Hosts other than this machine's loopback; blob: and data: URLs are in-page."""
    return {h for h in hosts if h not in LOCAL and h not in ("blob", "data")}


# -- the tests ------------------------------------------------------------------------------------
def test_drift_widget_renders_offline_and_a_click_shows_the_distribution(tab, tmp_path):
    tab.open("widgets_drift.ipynb")
    tab.run_all()
    page = tab.page
    widget = page.locator(".mlops-magics-drift").first
    scores = widget.locator(".mlops-magics-chart").nth(0)
    scores.locator("svg .mark-rect path").first.wait_for(timeout=60_000)

    bars = scores.locator(".mark-rect.role-mark path")
    assert bars.count() == 4  # one bar per feature
    assert "features drifted" in widget.inner_text()
    titles = scores.locator(".role-axis-title text").all_text_contents()  # what each panel's bars are, as rendered
    assert "JS distance (base 2): drift when >= 0.1, past the rule" in titles
    assert "Wasserstein (scaled: W1 / reference std): drift when >= 0.1, past the rule" in titles
    assert "JS distance >= 0.1 (js, default)" in widget.inner_text()  # the control: each method's threshold
    assert widget.locator(".mlops-magics-chart").nth(1).locator("svg").count() == 0  # nothing picked yet
    tab.screenshot(tmp_path / "charts-drift-before-click.png", ".mlops-magics-drift")

    scores.locator('.mark-rect.role-mark path[aria-label*="feature: age"]').click()
    dist = widget.locator(".mlops-magics-chart").nth(1)
    dist.locator("svg .mark-rect path").first.wait_for(timeout=30_000)
    assert "age: reference vs current" in dist.inner_text()
    assert dist.locator(".mark-rect.role-mark path").count() >= 10  # reference and current buckets
    assert "selected feature: age" in tab.run_cell(2)
    tab.screenshot(tmp_path / "charts-drift-widget.png", ".mlops-magics-drift")

    magic = page.locator(".mlops-magics-drift").nth(1)  # %drift in the last cell
    magic.locator("svg .mark-rect path").first.wait_for(timeout=30_000)
    assert magic.locator(".mark-rect.role-mark path").count() == 2  # --features age,city
    tab.screenshot(tmp_path / "charts-drift-notebook.png")

    assert _remote(tab.hosts()) == set(), tab.requests
    # Four charts on the page, one copy of the chart library, sent once over the comm.
    asked = [f for f in tab.sent if b'"mlops-magics:bundle?"' in f]
    answers = [f for f in tab.received if b'"mlops-magics:bundle"' in f]
    assert len(asked) == 1 and len(answers) == 1
    assert page.evaluate("() => Object.keys(globalThis.__mlopsMagicsVega || {}).length") == 1
    assert not tab.errors


def test_history_widget_click_sets_selected_run_and_opens_drift(tab, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tab.lab.store)
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id],
                              "attributes.run_name = 'train-2'")
    wanted = runs[0].info.run_id
    tab.open("widgets_history.ipynb")
    tab.run_all()
    widget = tab.page.locator(".mlops-magics-history").first
    chart = widget.locator(".mlops-magics-chart").first
    chart.locator("svg .mark-symbol path").first.wait_for(timeout=60_000)

    points = chart.locator(".history_points_marks path")  # the runs' points, not the best's diamond
    assert points.count() >= 7
    text = chart.inner_text()
    assert "threshold 0.8" in text and "champion: churn v1 (f1 0.83)" in text and "best f1 0.88" in text
    titles = chart.locator(".role-axis-title text").all_text_contents()
    assert titles[0].startswith("run, in the order started (") and "f1" in titles  # x is the sequence, dated
    assert "03:16" not in chart.inner_text() and "1" in chart.locator(".role-axis-label text").all_text_contents()
    assert "selected run: None" in tab.output(2)
    outlined = "(els) => els.filter(e => e.getAttribute('stroke') === 'black').map(e => e.getAttribute('aria-label'))"
    assert points.evaluate_all(outlined) == []  # nothing highlighted before a click

    target = chart.locator(f'.mark-symbol.role-mark path[aria-label*="run_id: {wanted}"]').first
    target.click()
    tab.page.wait_for_timeout(300)  # the selection's debounce, then the comm round trip
    assert f"selected run: {wanted}" in tab.run_cell(2)
    assert "train-2" in widget.inner_text()
    highlighted = points.evaluate_all(outlined)
    assert len(highlighted) == 1 and f"run_id: {wanted}" in highlighted[0]  # the clicked point, outlined
    assert float(target.get_attribute("stroke-width")) == 2.5
    tab.screenshot(tmp_path / "charts-history-widget.png", ".mlops-magics-history")

    button = widget.get_by_role("button", name="drift vs latest run")
    assert button.evaluate("b => b.scrollWidth <= b.clientWidth")  # its text is not cut to "drift vs lat..."
    data = widget.locator("select").nth(1)  # the data set, from the selected run's logged inputs
    assert data.locator("option").all_inner_texts() == ["X_train", "X_test"]
    button.click()
    drift = widget.locator(".mlops-magics-drift")
    drift.locator("svg .mark-rect path").first.wait_for(timeout=60_000)
    assert "features drifted" in drift.inner_text() and "/X_train" in drift.inner_text()
    tab.screenshot(tmp_path / "charts-history-with-drift.png", ".mlops-magics-history")

    assert _remote(tab.hosts()) == set(), tab.requests
    assert not tab.errors


def test_report_widget_and_magic_say_one_verdict(tab, tmp_path):
    tab.open("widgets_verdict.ipynb")
    tab.run_all()
    page = tab.page
    report, from_report, magic = (page.locator(".mlops-magics-drift").nth(i) for i in range(3))
    for w in (from_report, magic):
        w.locator("svg .mark-rect path").first.wait_for(timeout=60_000)

    said = [w.locator("b").first.inner_text() for w in (report, from_report, magic)]

    assert said[0] == said[1] == "1 of 4 features drifted (25%): dataset drift yes (rule: at least 25% of features)"
    assert said[2] == "1 of 4 features drifted (25%): dataset drift no"
    assert f"default rule: {said[2]}" in tab.output(4)  # %drift uses the rule mm.drift uses by default
    tab.screenshot(tmp_path / "charts-one-verdict.png")
    assert not tab.errors
