"""``make demo``: the whole loop on the project's store, in a few minutes.

1. a sweep of ``notebooks/train.ipynb`` over ``C`` (jobs on a local Dask cluster); each run logs
   its model scored against a dummy baseline (``--eval``), F1 by tumour size band
   (``mm.log_slices``) and permutation importance (``mm.log_importance``);
2. the best run's model promoted to ``champion`` and the runner-up's to ``challenger``, each
   after promotion's checks (beats its baseline, loads in a fresh process, same signature);
3. a ``monitor`` schedule (``notebooks/monitor.ipynb``) run on a simulated clock: a clean batch
   at 06:00 and a drifted one at 07:00 (its ``shift`` parameter: the twenty ``mean ...`` and
   ``worst ...`` features times ``1 + shift``); each run validates the batch against the
   champion's training data, measures drift, and compares champion and challenger on it;
4. the drift alert triggering the ``retrain`` schedule exactly once: the champion's ``C`` on the
   old data plus the labelled drifted batch, promoted if its checks pass and it beats the champion;
5. ``demo-output/``: the executed notebooks (an HTML copy beside each), drift and F1-history
   charts as PNG and SVG, and an ``index.html`` tying them together (run ids link to the MLflow
   UI when one serves this store); then a closing summary table.
"""

from __future__ import annotations

import html
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from . import locations, naming

ROOT = Path(__file__).resolve().parent.parent
MODEL = "breast-cancer"
EXPERIMENT = "mlops-magics-demo"
GRID = {"C": ["0.01", "0.1", "1.0", "10.0"]}
DRIFT_SHIFT = 0.5
CHALLENGER = "challenger"
UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlops-magics ui` serves


class DemoError(Exception):
    """The demo could not go on; the message says why."""


def run_demo(output_dir: str | Path = "demo-output", *, echo: Callable[[str], None] = print,
             workers: int = 2, ui_url: str | None = None) -> dict:
    """Run the loop; returns what it did (run ids, promotions, alerts) for tests and the summary.

    ``ui_url``: the MLflow UI serving this store, for links in ``index.html`` (default: the
    tracking server itself, else ``mlops-magics ui``'s address when it answers for these runs).
    """
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the demo prints its own story
    out = Path(output_dir).resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    train, monitor = ROOT / "notebooks" / "train.ipynb", ROOT / "notebooks" / "monitor.ipynb"
    if not train.is_file() or not monitor.is_file():
        raise DemoError(f"the demo notebooks are missing under {ROOT / 'notebooks'}")
    echo(f"MLflow store: {locations.display_uri(locations.tracking_uri())}, experiment {EXPERIMENT!r}")
    done: dict = {"steps": [], "promotions": []}
    result = _sweep(train, done, echo, workers)
    _promote(result.best.job.run_id, "sweep winner", done, echo)
    runner_up = next((p for p in result.points[1:] if p.value is not None and p.job.run_id), None)
    if runner_up is not None:
        _promote(runner_up.job.run_id, "sweep runner-up", done, echo, alias=CHALLENGER)
    _schedules(train, monitor, str(result.best.parameters["C"]), done, echo)
    _collect(out, done, echo, ui_url)
    _summary(done, echo)
    echo(f"\nopen {out / 'index.html'} for the story, charts and executed notebooks;"
         "\n`make lab` opens JupyterLab on notebooks/ and `make ui` (`mlops-magics ui`) the MLflow UI, on this same store.")
    return done


def _sweep(train: Path, done: dict, echo, workers: int):
    from .runner.sweep import run_sweep

    echo(f"\n1. sweep: {train.name} over C = {', '.join(GRID['C'])} on a local Dask cluster of {workers} workers")
    result = run_sweep(train, GRID, workers=workers, experiment=EXPERIMENT, metric="f1")
    echo(repr(result.table()))
    if result.best is None:
        raise DemoError(f"no point of the sweep finished: {result.note}")
    done["sweep"] = result
    best = result.best
    done["steps"].append(("sweep", f"{result.finished} of {len(result.points)} points finished; "
                                   f"best C={best.parameters['C']} (f1 {best.value:.4f})", best.job.run_id))
    return result


def _promote(run_id: str, why: str, done: dict, echo, alias: str = "champion"):
    """Promote ``run_id``'s model to ``alias``; a refusal by the checks is part of the story, not an error."""
    from .models.checks import summary
    from .models.promote import PromotionRefused, promote

    try:
        p = promote(run_id, MODEL, metric="f1", alias=alias)
    except PromotionRefused as exc:
        echo(f"   promote to {alias} ({why}): {exc}")
        done["steps"].append((f"promote: {alias}", f"refused ({summary(exc.checks)})", run_id))
        done["promotions"].append(None)
        return None
    echo(f"   promote to {alias} ({why}): {p!r}")
    echo(f"      checks: {_checks_text(p.checks)}")
    if p.promoted:
        what = f"v{p.version} is now {alias}"
    else:
        what = f"v{p.version} registered; {alias} stays v{p.holder_version}"
    if p.holder_value is not None and p.holder_version != p.version:
        sign = ">" if p.promoted else "not >"
        rows = "the same held-out rows" if _same_test_rows(run_id, p.holder_run_id) else "each its own held-out rows"
        what += f" (f1 {p.value:.4f} {sign} {p.holder_value:.4f} of v{p.holder_version}, on {rows})"
    done["steps"].append((f"promote: {alias}", f"{what}; checks: {_checks_text(p.checks)}", run_id))
    done["promotions"].append(p)
    return p


def _same_test_rows(run_id: str, other: str | None) -> bool:
    """Both runs logged the same ``X_test`` (by digest): their ``f1`` values compare like with like."""
    from .store_read import Store

    if not other:
        return False
    reads = Store()
    digests = [{d.digest for d in reads.get_run(r).inputs if d.name == "X_test"} for r in (run_id, other)]
    return bool(digests[0]) and digests[0] == digests[1]


def _checks_text(checks) -> str:
    """``baseline passed, loads passed, signature skipped``."""
    return ", ".join(f"{c.name} {'passed' if c.passed else 'failed' if c.passed is False else 'skipped'}"
                     for c in checks) or "none"


def _schedules(train: Path, monitor: Path, C: str, done: dict, echo) -> None:
    from .schedules.due import run_due
    from .schedules.manage import add_schedule
    from .schedules.store import ScheduleStore
    from .store_read import Store

    store = ScheduleStore()
    names = ("demo-monitor", "demo-retrain", "demo-monitor-drifted")
    for name in names:
        if any(s.name == name for s in store.all()):
            store.remove(name)
    # A simulated clock: tomorrow, from midnight. run-due at 06:00 and at 07:00 runs each slot on time.
    midnight = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    common = {"experiment": EXPERIMENT, "store": store, "timezone": "UTC"}
    # The retrain runs only when an alert triggers it: its yearly slot starts after the simulated day.
    add_schedule("demo-retrain", train, "0 0 1 1 *", parameters=[("C", C)], start=midnight + timedelta(days=1),
                 **common)
    add_schedule("demo-monitor", monitor, "0 6 * * *", parameters=[("shift", "0.0")], on_alert="demo-retrain",
                 start=midnight, **common)
    add_schedule("demo-monitor-drifted", monitor, "0 7 * * *", parameters=[("shift", str(DRIFT_SHIFT))],
                 on_alert="demo-retrain", start=midnight, **common)
    echo(f"\n2. schedules on a simulated clock ({midnight:%Y-%m-%d}, UTC): the monitor on a clean batch at 06:00"
         f" and on a drifted one at 07:00 (shift {DRIFT_SHIFT:+.0%}), both --on-alert demo-retrain;"
         f" the retrain trains C={C} on the old data plus the batch that raised the alert")
    outcomes = []
    for hour in (6, 7):
        at = midnight.replace(hour=hour)
        echo(f"   run-due --at {at.isoformat()} (simulated)")
        outcomes += run_due(at, store=store)
    reads = Store()
    done["outcomes"] = outcomes
    for o in outcomes:
        text = _outcome_text(reads, o)
        echo(f"   {o.schedule}: {text}" + (f"; run {o.run_id}" if o.run_id else ""))
        done["steps"].append((o.schedule, text, o.run_id))
    for name in names:  # the demo's day is over: a real scheduler must not run them tomorrow
        store.set_paused(name, True, midnight)
    retrained = [o for o in outcomes if o.schedule == "demo-retrain" and o.state == "finished" and o.run_id]
    if len(retrained) != 1:
        raise DemoError(f"expected one triggered retrain, got {len(retrained)}: "
                        + "; ".join(o.line() for o in outcomes))
    _promote(retrained[0].run_id, "retrained after the drift alert", done, echo)


def _outcome_text(reads, o) -> str:
    """What one scheduled run found, read back from its run: validation, drift, the comparison."""
    head = f"{o.slot[11:16]} on the simulated clock" if o.slot else "on the simulated clock"
    if o.schedule == "demo-monitor":
        head += ", clean batch"
    elif o.schedule == "demo-monitor-drifted":
        head += f", batch shifted {DRIFT_SHIFT:+.0%}"
    if o.triggered_by:
        head = f"triggered by the alert of run {o.triggered_by[:8]}, trained on the old rows plus the drifted batch"
    if o.state != "finished" or not o.run_id:
        return f"{head}: {o.state}" + (f"; {o.detail}" if o.detail else "")
    parts = []
    validation = _artifact_json(reads, o.run_id, naming.ARTIFACT_VALIDATION)
    if validation:
        parts.append(validation["verdict"])
    drift = _artifact_json(reads, o.run_id, naming.ARTIFACT_DRIFT)
    if drift:
        counted = drift["verdict"].split(": dataset drift")[0]
        parts.append(f"{'dataset drift' if drift['drifted'] else 'no drift'}: {counted}")
    compared = _artifact_json(reads, o.run_id, naming.ARTIFACT_COMPARE)
    if compared:
        parts.append(_comparison_text(compared, o.schedule == "demo-retrain"))
    if o.alert:
        parts.append(f"alert {o.alert}")
    return head + (": " + "; ".join(parts) if parts else "")


def _comparison_text(c: dict, retrain: bool) -> str:
    """``champion f1 0.9511, challenger 0.9655 (+0.0144, 95% CI [...])`` from a ``compare.json``."""
    a, b = ("champion", "this model") if retrain else ("champion", CHALLENGER)
    f1 = next((m for m in c.get("metrics") or [] if m["metric"] == "f1"), None)
    agree = f"{b} agrees on {c['agreement']:.0%} of {c['rows']} rows" if c.get("agreement") is not None else ""
    if f1 is None or f1.get("a") is None:
        return agree
    ci = ""
    if f1.get("ci_low") is not None and f1.get("ci_high") is not None:
        ci = f", {c.get('confidence', 0.95):.0%} CI [{f1['ci_low']:+.3f}, {f1['ci_high']:+.3f}]"
    scores = f"f1 {a} {f1['a']:.4f}, {b} {f1['b']:.4f} ({f1['delta']:+.4f}{ci})"
    return f"on the {c['rows']} held-out rows of the drifted batch, {scores}" if retrain else f"{agree}, {scores}"


def _artifact_json(reads, run_id: str, path: str) -> dict | None:
    try:
        return json.loads(reads.read_artifact_text(run_id, path))
    except Exception:  # a run that did not log it: that part of the story is not told
        return None


def _collect(out: Path, done: dict, echo, ui_url: str | None = None) -> None:
    """Executed notebooks (an HTML copy beside each), charts as PNG and SVG, and index.html."""
    from .store_read import Store

    client = Store()  # reads only: mlflow's client is not needed for them
    notebooks = []
    for step, _, run_id in done["steps"]:
        if run_id and not step.startswith("promote"):
            found = _download(client, run_id, out / "notebooks", step)
            if found:
                notebooks.append((_NOTEBOOK_LABELS.get(step, step), found))
    charts = _charts(client, out, done)
    experiment_id = client.experiment(EXPERIMENT).experiment_id
    ui = _ui(ui_url, client, done["steps"])
    done["ui"] = ui
    (out / "index.html").write_text(_index(done, notebooks, charts, ui, experiment_id), encoding="utf-8")
    done["notebooks"] = notebooks
    html_copies = sum(".html" in found for _, found in notebooks)
    beside = (" (an HTML copy beside each)" if html_copies == len(notebooks)
              else f" ({html_copies} with an HTML copy)")
    echo(f"\n3. demo-output: {len(notebooks)} executed notebook{'s' if len(notebooks) != 1 else ''}{beside},"
         f" {len(charts)} charts (PNG and SVG), index.html"
         + (f"; run ids link to the MLflow UI at {ui}" if ui else
            "; to open the runs in the MLflow UI: `mlops-magics ui`"))


def _download(client, run_id: str, folder: Path, step: str) -> dict[str, str]:
    """The job's executed notebook and its HTML copy: ``{".ipynb": name, ".html": name}``."""
    found = {}
    for artifact, suffix in ((naming.ARTIFACT_JOB_NOTEBOOK, ".ipynb"), (naming.ARTIFACT_JOB_HTML, ".html")):
        try:
            local = client.download_artifact(run_id, artifact, folder / run_id)
        except Exception:
            continue
        target = folder / f"{step}-{run_id[:8]}{suffix}"
        shutil.move(local, target)
        found[suffix] = target.name
    shutil.rmtree(folder / run_id, ignore_errors=True)
    return found


def _ui(given: str | None, client, steps) -> str | None:
    """The MLflow UI for links: ``given``; else the tracking server itself; else ``mlops-magics ui``'s
    address when it answers for one of these runs (so a UI on another store is not linked)."""
    if given:
        return given.rstrip("/")
    uri = locations.uri_without_credentials(client.tracking_uri)
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    run_id = next((r for _, _, r in steps if r), None)
    if run_id is None:
        return None
    import urllib.request

    try:
        with urllib.request.urlopen(f"{UI_DEFAULT}/api/2.0/mlflow/runs/get?run_id={run_id}", timeout=1) as reply:
            found = json.loads(reply.read()).get("run", {}).get("info", {}).get("run_id")
    except Exception:
        return None
    return UI_DEFAULT if found == run_id else None


def _charts(client, out: Path, done: dict) -> list[str]:
    import pandas as pd
    import vl_convert as vlc

    from .widgets import charts

    made = []
    drifted = next((o for o in done["outcomes"] if o.schedule == "demo-monitor-drifted" and o.run_id), None)
    if drifted is not None:
        report = json.loads(client.read_artifact_text(drifted.run_id, naming.ARTIFACT_DRIFT))
        table = pd.DataFrame(report["rows"]).fillna(value=pd.NA)
        chart = charts.drift_scores(table, title=f"drift of the batch shifted by {DRIFT_SHIFT:+.0%}: {report['verdict']}")
        made += _save(vlc, chart, out / "drift")
    runs = client.history_frame(EXPERIMENT)
    runs["champion"] = runs["run_id"].map(client.champions(runs["run_id"])).fillna("")
    made += _save(vlc, charts.metric_history(runs, "f1", title="F1 of every tracked run"), out / "f1-history")
    return made


def _save(vlc, chart, stem: Path) -> list[str]:
    spec = chart.to_dict()
    stem.with_suffix(".svg").write_text(vlc.vegalite_to_svg(spec), encoding="utf-8")
    stem.with_suffix(".png").write_bytes(vlc.vegalite_to_png(spec, scale=2))
    return [stem.name]


def _lines(outcome: str) -> list[str]:
    """An outcome as lines for the page: its head, then each finding."""
    head, sep, rest = outcome.partition(": ")
    if not sep or ";" in head:
        return outcome.split("; ")
    return [head + ":", *rest.split("; ")]


def _run_cell(run_id: str | None, ui: str | None, experiment_id: str) -> str:
    if not run_id:
        return ""
    code = f"<code>{html.escape(run_id)}</code>"
    if ui is None:
        return code
    href = f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"
    return f'<a href="{html.escape(href, quote=True)}">{code}</a>'


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222;line-height:1.4}"
          "table{border-collapse:collapse;width:100%}td,th{padding:6px 10px;text-align:left;vertical-align:top;"
          "border-bottom:1px solid #e3e3e3}th{background:#f5f5f5}td:first-child{white-space:nowrap;font-weight:600}"
          "code{font-size:12px}a code{color:inherit}a{color:#1a5fb4}.note{color:#555;font-size:14px}"
          "figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:14px}")


def _index(done: dict, notebooks: list[tuple[str, dict[str, str]]], charts: list[str], ui: str | None,
           experiment_id: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(step)}</td><td>{'<br>'.join(html.escape(x) for x in _lines(what))}</td>"
                   f"<td>{_run_cell(run, ui, experiment_id)}</td></tr>" for step, what, run in done["steps"])
    if ui:
        where = (f"<p class='note'>Run ids open the run in the MLflow UI at <a href='{html.escape(ui, quote=True)}'>"
                 f"{html.escape(ui)}</a>.</p>")
    else:
        where = ("<p class='note'>Run ids are MLflow run ids. To open them: <code>mlops-magics ui</code> (or "
                 f"<code>make ui</code>) serves the MLflow UI on this store at {UI_DEFAULT}, experiment "
                 f"<code>{html.escape(EXPERIMENT)}</code>. A demo run while it serves (or given "
                 "<code>--ui-url</code>) links them from this page.</p>")
    figs = "".join(f'<figure><img src="{c}.svg" alt="{c}"><figcaption>{_CAPTIONS.get(c, c)} '
                   f'(<a href="{c}.png">PNG</a>, <a href="{c}.svg">SVG</a>)</figcaption></figure>' for c in charts)
    links = "".join(
        f"<li><b>{html.escape(step)}</b>: "
        + " · ".join(f'<a href="notebooks/{html.escape(name, quote=True)}">{label}</a>'
                     for suffix, label in ((".html", "executed notebook (HTML)"), (".ipynb", ".ipynb"))
                     if (name := found.get(suffix)))
        + "</li>" for step, found in notebooks)
    story = ("A sweep trains four models; the best becomes <code>champion</code>, the runner-up "
             "<code>challenger</code>, each after promotion's checks. On a simulated clock, the monitor "
             "schedule validates a clean batch and a drifted one, measures their drift and compares champion "
             "and challenger on them; the drift alert triggers one retrain on the old data plus the drifted "
             "batch, which is promoted only if its checks pass and it beats the champion.")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>mlops-magics demo</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<h1>mlops-magics demo</h1><p>{story}</p>"
            f"<h2>What happened</h2><table><tr><th>step</th><th>outcome</th><th>MLflow run</th></tr>{rows}</table>"
            f"{where}<h2>Charts</h2>{figs}"
            f"<h2>Executed notebooks</h2><ul>{links}</ul></body></html>")


_NOTEBOOK_LABELS = {"sweep": "the sweep's best point (train.ipynb)", "demo-monitor": "monitor.ipynb on the clean batch",
                    "demo-monitor-drifted": "monitor.ipynb on the drifted batch",
                    "demo-retrain": "train.ipynb, the retrain"}
_CAPTIONS = {"drift": "Drift of each feature of the batch shifted by "
                      f"{DRIFT_SHIFT:+.0%}, against the champion's training data.",
             "f1-history": "F1 of every tracked run of the experiment, the champion marked."}


def _summary(done: dict, echo) -> None:
    from .display import Table

    echo("\n" + repr(Table(["step", "outcome", "MLflow run"], [[s, w, r or ""] for s, w, r in done["steps"]],
                           caption="demo summary")))
