"""The widgets in a real JupyterLab, driven in headless Chromium by Playwright.

JupyterLab runs on 127.0.0.1 with a temporary root, settings and MLflow store; Debian's
``chromium`` (``/usr/bin/chromium``, never a browser download) opens the notebooks in
``tests/notebooks/widgets_*.ipynb``, runs them, clicks marks and checks what Python saw
through a later cell's output. Every request and websocket the page opens is recorded:
all must go to 127.0.0.1. Screenshots are written under the test's tmp_path, or under
$MLOPS_MAGICS_ARTIFACTS when set (CI can keep them); their paths are printed.
The Lab, Page and browser are those of ``tests/lab.py``.

Under CI=true a missing browser, Playwright or JupyterLab fails the tests; elsewhere it
skips them with what to install.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lab import Lab, Page, require_browser

HERE = Path(__file__).parent

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_browser()
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


@pytest.fixture
def tab(browser, lab):
    page = Page(browser, lab)
    yield page
    page.close()


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

    assert tab.remote_hosts() == set(), tab.requests
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

    assert tab.remote_hosts() == set(), tab.requests
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
