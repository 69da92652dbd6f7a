"""The JupyterLab extension in a real JupyterLab, driven in headless Chromium by Playwright.

JupyterLab runs on 127.0.0.1 with a token, a temporary root, journal folder and SQLite MLflow
store, the server extension enabled and the prebuilt lab extension (``make labext`` builds it
into ``mlops_magics/labextension`` and links it into the environment). Debian's ``chromium``
opens a notebook with a parameters cell and a ``%%track`` cell, in a browser whose time zone
is not the server's. The Lab, Page and browser are those of ``tests/lab.py``.
Screenshots go under the test's tmp_path, or $MLOPS_MAGICS_ARTIFACTS when set.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import skip_or_fail
from lab import Lab, Page, require_browser

HERE = Path(__file__).parent
ROOT = HERE.parent
STARTUP = ROOT / "jupyter-config" / "ipython" / "startup" / "50-mlops_magics.py"
NOTEBOOK = "train.ipynb"  # a copy of notebooks/job_params.ipynb: n:int=3, rate=0.5, label, layers, seed
USER_ZONE = "America/New_York"

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(420)]


def _require_labextension() -> None:
    from jupyter_core.paths import jupyter_path

    found = [p for p in jupyter_path("labextensions") if (Path(p) / "mlops-magics-labextension" / "package.json").exists()]
    if not found:
        skip_or_fail("the lab extension is not built and installed: run `make labext` (npm and JupyterLab's builder)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_browser()
    _require_labextension()
    root = tmp_path_factory.mktemp("lablx") / "root"
    root.mkdir()
    shutil.copy(HERE / "notebooks" / "job_params.ipynb", root / NOTEBOOK)
    server = Lab(root)
    # the server extension as an installed package enables it, and %%track loaded at kernel start
    settings = json.loads(server.config.read_text())
    settings.setdefault("ServerApp", {})["jpserver_extensions"] = {"mlops_magics": True}
    server.config.write_text(json.dumps(settings))
    startup = root.parent / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(STARTUP, startup / STARTUP.name)
    server.start()
    try:
        _wait_for_api(server)
        yield server
    finally:
        server.stop()


def _wait_for_api(server: Lab, timeout: float = 60) -> None:
    """The server extension answers /mlops/api/status, or a failure showing the server's log."""
    import time
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{server.port}/mlops/api/status"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(url, headers={"Authorization": f"token {server.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the server extension did not answer {url}:\n{server.log.read_text()[-3000:]}")


class ZonedPage(Page):
    """A Page whose browser lives in USER_ZONE, with the API calls it makes recorded."""

    def __init__(self, browser, lab: Lab) -> None:
        self.api_calls: list[str] = []
        super().__init__(browser, lab, viewport={"width": 1400, "height": 1000}, timezone_id=USER_ZONE)

    def _request(self, request) -> None:
        super()._request(request)
        if "/mlops/api/" in request.url:
            self.api_calls.append(f"{request.method} {request.url.split('/mlops/api/')[1]}")

    def posted(self, what: str) -> int:
        return sum(1 for call in self.api_calls if call.startswith(f"POST {what}"))

    def open_panel(self):
        self.page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlops-panel"]').click()
        panel = self.page.locator("#mlops-panel")
        panel.locator(".mlops-Runs").wait_for(timeout=30_000)
        return panel

    def shot(self, name: str, selector: str | None = None) -> Path:
        path = Path(os.environ.get("MLOPS_MAGICS_ARTIFACTS") or self.lab.root.parent) / name
        return self.screenshot(path, selector)


@pytest.fixture
def tab(browser, lab):
    page = ZonedPage(browser, lab)
    page.open(NOTEBOOK)
    yield page
    page.close()


def _field(dialog, key: str):
    return dialog.locator(f'.mlops-Form-row[data-field="{key}"]')


def test_schedule_dialog_checks_inline_then_the_schedule_is_listed(tab):
    page = tab.page
    panel = tab.open_panel()
    assert panel.locator(".mlops-Delivery").inner_text().strip() != ""  # the journal's state, from /status

    page.locator('[data-jp-item-name="mlops-schedule"] button').click()
    dialog = page.locator(".mlops-ScheduleDialog")
    dialog.wait_for(timeout=30_000)
    # one typed field per parameter, with the notebook's default
    assert dialog.locator('input[data-param="n"]').input_value() == "3"
    assert dialog.locator('input[data-param="rate"]').input_value() == "0.5"
    assert dialog.locator('input[data-param="layers"]').input_value() == "[8, 4]"
    assert dialog.locator('input[name="timezone"]').input_value() == USER_ZONE
    assert dialog.locator(".mlops-CronWords").inner_text() == "At 06:00, on Monday through Friday"
    nxt = dialog.locator(".mlops-CronNext").inner_text()
    assert nxt.count("06:00") == 3 and f"({USER_ZONE})" in nxt

    # misspelt values: shown under their fields as they are typed, and nothing is sent
    dialog.locator('input[data-param="n"]').fill("3O")
    dialog.locator('input[name="cron"]').fill("0 6 * * mon-fry")
    dialog.locator('button[type="submit"]').click()
    assert _field(dialog, "param:n").locator(".mlops-FieldError").inner_text() == "parameter 'n' wants an int, got '3O'"
    assert "'fry' is not a valid day of week" in _field(dialog, "cron").locator(".mlops-FieldError").inner_text()
    assert _field(dialog, "param:n").locator(".mlops-FieldError").is_visible()
    tab.shot("lab-schedule-dialog-errors.png", ".mlops-Dialog .jp-Dialog-content")
    assert tab.posted("schedules") == 0

    # a mistake only the server knows (the name), shown inline with the server's own words
    dialog.locator('input[data-param="n"]').fill("4")
    dialog.locator('input[data-param="layers"]').fill("[16, 8, 4]")
    dialog.locator('input[name="cron"]').fill("*/30 9-17 * * mon-fri")
    assert dialog.locator(".mlops-CronWords").inner_text() == "Every 30 minutes between 09:00 and 17:59, on Monday through Friday"
    dialog.locator('input[name="name"]').fill("nightly train")
    dialog.locator('button[type="submit"]').click()
    name_error = _field(dialog, "name").locator(".mlops-FieldError")
    name_error.wait_for(state="visible", timeout=30_000)
    assert name_error.inner_text().startswith("invalid schedule name 'nightly train'")
    assert tab.posted("schedules") == 1

    dialog.locator('input[name="name"]').fill("train-weekdays")
    dialog.locator('select[name="catch_up"]').select_option("none")
    dialog.locator('input[name="retries"]').fill("2")
    tab.shot("lab-schedule-dialog.png", ".mlops-Dialog .jp-Dialog-content")
    dialog.locator('button[type="submit"]').click()
    dialog.wait_for(state="detached", timeout=30_000)

    row = panel.locator('.mlops-Schedule[data-schedule="train-weekdays"]')
    row.wait_for(timeout=30_000)
    assert "Monday through Friday" in row.inner_text() and f"({USER_ZONE})" in row.inner_text()
    assert "next: " in row.inner_text() and "not run yet" in row.inner_text()
    stored = json.loads(page.evaluate("""async () => {
        const r = await fetch('/mlops/api/schedules', {headers: {Authorization: 'token ' + window.jupyterapp.serviceManager.serverSettings.token}});
        return await r.text(); }"""))["schedules"]
    [schedule] = [s for s in stored if s["name"] == "train-weekdays"]
    assert schedule["parameters"] == {"n": 4, "layers": [16, 8, 4]}  # typed, and only what differs
    assert (schedule["cron"], schedule["timezone"], schedule["catch_up"], schedule["retries"]) == (
        "*/30 9-17 * * mon-fri", USER_ZONE, "none", 2)

    row.locator(".mlops-Pause").click()
    row.locator(".mlops-Paused").wait_for(timeout=15_000)
    assert "next: paused" in row.inner_text()
    row.locator(".mlops-Resume").click()
    row.locator(".mlops-Paused").wait_for(state="detached", timeout=15_000)
    tab.shot("lab-panel-schedule.png", "#mlops-panel")
    assert tab.remote_hosts() == set(), tab.requests
    assert not tab.errors


def test_run_now_reaches_finished_in_the_panel_and_opens_the_executed_notebook(tab):
    page = tab.page
    panel = tab.open_panel()
    page.locator('[data-jp-item-name="mlops-run-job"] button').click()
    dialog = page.locator(".mlops-RunDialog")
    dialog.wait_for(timeout=30_000)
    dialog.locator('input[data-param="rate"]').fill("fast")
    dialog.locator('button[type="submit"]').click()
    assert _field(dialog, "param:rate").locator(".mlops-FieldError").inner_text() == "parameter 'rate' wants a float, got 'fast'"
    assert tab.posted("jobs") == 0
    dialog.locator('input[data-param="rate"]').fill("0.25")
    dialog.locator('button[type="submit"]').click()
    dialog.wait_for(state="detached", timeout=30_000)
    assert tab.posted("jobs") == 1

    job = panel.locator(".mlops-Job").first
    job.wait_for(timeout=30_000)
    assert "rate=0.25" in job.inner_text()
    panel.locator('.mlops-Job[data-state="FINISHED"]').first.wait_for(timeout=240_000)
    finished = panel.locator('.mlops-Job[data-state="FINISHED"]').first
    assert "FINISHED" in finished.inner_text()
    assert any(c.startswith("GET jobs?notebook=") for c in tab.api_calls)
    tab.shot("lab-panel-job-finished.png", "#mlops-panel")

    output = finished.locator(".mlops-OpenOutput")
    wanted = output.get_attribute("title")
    output.click()
    page.wait_for_function("(p) => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=wanted,
                           timeout=30_000)
    assert wanted.endswith(".ipynb") and wanted != NOTEBOOK
    assert not tab.errors


def test_a_tracked_cell_gets_a_mark_with_its_last_run(tab):
    page = tab.page
    panel = tab.open_panel()
    tab.run_cell(0)  # the parameters
    out = tab.run_cell(1, timeout=120_000)  # %%track
    assert "Error" not in out, out
    mark = page.locator(".jp-Cell.mlops-tracked .mlops-CellMark")
    page.locator('.jp-Cell.mlops-tracked .mlops-CellMark[data-status="finished"]').wait_for(timeout=90_000)
    assert page.locator(".jp-Cell.mlops-tracked").count() == 1  # only the %%track cell
    assert "finished" in mark.inner_text()
    cell_id = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.id")
    run_id = mark.get_attribute("data-run")
    run = panel.locator(f'.mlops-Run[data-run="{run_id}"]')
    run.wait_for(timeout=30_000)
    runs = json.loads(page.evaluate("""async (nb) => {
        const r = await fetch('/mlops/api/runs?notebook=' + nb, {headers: {Authorization: 'token ' + window.jupyterapp.serviceManager.serverSettings.token}});
        return await r.text(); }""", NOTEBOOK))["runs"]
    ours = next(r for r in runs if r["run_id"] == run_id)
    assert ours["cell_id"] == cell_id and ours["status"] == "FINISHED"
    assert ours["primary_metric"], ours  # the cell binds `score`: the mark shows it
    name, value = ours["primary_metric"]["name"], ours["primary_metric"]["value"]
    shown = mark.locator(".mlops-CellMark-metric").inner_text()
    assert shown.startswith(name) and f"{value:.2f}"[:3] in shown, (shown, value)
    assert name in run.inner_text()
    tab.shot("lab-tracked-cell.png")
    assert tab.remote_hosts() == set(), tab.requests
    assert not tab.errors
