"""``make demo``: the whole loop on the embedded default store, in a few minutes.

1. a sweep of ``notebooks/train.ipynb`` over ``C`` (jobs on a local Dask cluster);
2. the best run's model promoted to ``champion``;
3. a ``monitor`` schedule (``notebooks/monitor.ipynb``) run once on a clean batch and once on a
   drifted one (its ``shift`` parameter: the ten ``mean ...`` features times ``1 + shift``);
4. the drift alert triggering the ``retrain`` schedule exactly once, and the retrained model
   promoted if it beats the champion;
5. ``demo-output/``: executed notebooks (and their HTML), drift and F1-history charts as PNG and
   SVG, and an ``index.html`` tying them together; then a closing summary table.
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


class DemoError(Exception):
    """The demo could not go on; the message says why."""


def run_demo(output_dir: str | Path = "demo-output", *, echo: Callable[[str], None] = print,
             workers: int = 2) -> dict:
    """Run the loop; returns what it did (run ids, promotions, alerts) for tests and the summary."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the demo prints its own story
    out = Path(output_dir).resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    train, monitor = ROOT / "notebooks" / "train.ipynb", ROOT / "notebooks" / "monitor.ipynb"
    if not train.is_file() or not monitor.is_file():
        raise DemoError(f"the demo notebooks are missing under {ROOT / 'notebooks'}")
    echo(f"MLflow store: {locations.display_uri(locations.tracking_uri())}, experiment {EXPERIMENT!r}")
    done: dict = {"steps": []}
    best = _sweep(train, done, echo, workers)
    _promote(best, "sweep winner", done, echo)
    _schedules(train, monitor, done, echo)
    _collect(out, done, echo)
    _summary(done, echo)
    echo(f"\nopen {out / 'index.html'} for the charts and executed notebooks;"
         "\n`make lab` opens JupyterLab on notebooks/ and `make ui` the MLflow UI, on this same store.")
    return done


def _sweep(train: Path, done: dict, echo, workers: int) -> str:
    from .runner.sweep import run_sweep

    echo(f"\n1. sweep: {train.name} over C = {', '.join(GRID['C'])} on a local Dask cluster of {workers} workers")
    result = run_sweep(train, GRID, workers=workers, experiment=EXPERIMENT, metric="f1")
    echo(repr(result.table()))
    if result.best is None:
        raise DemoError(f"no point of the sweep finished: {result.note}")
    done["sweep"] = result
    done["steps"].append(("sweep", f"{result.finished} of {len(result.points)} points finished",
                          result.best.job.run_id))
    return result.best.job.run_id


def _promote(run_id: str, why: str, done: dict, echo):
    from .models.promote import promote

    p = promote(run_id, MODEL, metric="f1")
    echo(f"   promote ({why}): {p!r}")
    done["steps"].append(("promote", ("promoted" if p.promoted else "kept") + f" v{p.version}", run_id))
    return p


def _schedules(train: Path, monitor: Path, done: dict, echo) -> None:
    from .schedules.due import run_due
    from .schedules.manage import add_schedule
    from .schedules.store import ScheduleStore

    store = ScheduleStore()
    for name in ("demo-monitor", "demo-retrain", "demo-monitor-drifted"):
        if any(s.name == name for s in store.all()):
            store.remove(name)
    # Simulated time: tomorrow, from midnight; run-due at 08:00 sees the 06:00 and 07:00 slots.
    midnight = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    common = {"experiment": EXPERIMENT, "store": store, "start": midnight, "timezone": "UTC"}
    add_schedule("demo-retrain", train, "0 0 1 1 *", **common)  # yearly: it runs when an alert triggers it
    add_schedule("demo-monitor", monitor, "0 6 * * *", parameters=[("shift", "0.0")], on_alert="demo-retrain",
                 **common)
    add_schedule("demo-monitor-drifted", monitor, "0 7 * * *", parameters=[("shift", str(DRIFT_SHIFT))],
                 on_alert="demo-retrain", **common)
    day = midnight.replace(hour=8)
    echo(f"\n2. schedules: monitor a clean batch (06:00) and a drifted one (07:00, shift {DRIFT_SHIFT:+.0%}),"
         f" both with --on-alert demo-retrain; `run-due --at {day.isoformat()}` simulates the day")
    outcomes = run_due(day, store=store)
    for o in outcomes:
        echo(f"   {o.line()}")
    done["outcomes"] = outcomes
    for o in outcomes:
        done["steps"].append((o.schedule, o.state + (f", alert {o.alert}" if o.alert else ""), o.run_id))
    retrained = [o for o in outcomes if o.schedule == "demo-retrain" and o.state == "finished" and o.run_id]
    if len(retrained) != 1:
        raise DemoError(f"expected one triggered retrain, got {len(retrained)}: "
                        + "; ".join(o.line() for o in outcomes))
    _promote(retrained[0].run_id, "retrained after the drift alert", done, echo)


def _collect(out: Path, done: dict, echo) -> None:
    """Executed notebooks, charts as PNG and SVG, and index.html."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=locations.tracking_uri())
    notebooks = []
    for step, _, run_id in done["steps"]:
        if run_id and step != "promote":
            notebooks += _download(client, run_id, out / "notebooks", step)
    charts = _charts(client, out, done)
    (out / "index.html").write_text(_index(done, notebooks, charts), encoding="utf-8")
    echo(f"\n3. demo-output: {len(notebooks)} executed notebooks, {len(charts)} charts (PNG and SVG), index.html")


def _download(client, run_id: str, folder: Path, step: str) -> list[tuple[str, str]]:
    found = []
    for artifact, suffix in ((naming.ARTIFACT_JOB_NOTEBOOK, ".ipynb"), (naming.ARTIFACT_JOB_HTML, ".html")):
        try:
            local = client.download_artifacts(run_id, artifact, str(folder / run_id))
        except Exception:
            continue
        target = folder / f"{step}-{run_id[:8]}{suffix}"
        shutil.move(local, target)
        found.append((step, target.name))
    shutil.rmtree(folder / run_id, ignore_errors=True)
    return found


def _charts(client, out: Path, done: dict) -> list[str]:
    import pandas as pd
    import vl_convert as vlc

    from .widgets import charts
    from .widgets._runs import champions, load_runs

    made = []
    drifted = next((o for o in done["outcomes"] if o.schedule == "demo-monitor-drifted" and o.run_id), None)
    if drifted is not None:
        report = json.loads(Path(client.download_artifacts(drifted.run_id, naming.ARTIFACT_DRIFT)).read_text())
        table = pd.DataFrame(report["rows"]).fillna(value=pd.NA)
        chart = charts.drift_scores(table, title=f"drift of the batch shifted by {DRIFT_SHIFT:+.0%}: {report['verdict']}")
        made += _save(vlc, chart, out / "drift")
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = load_runs(client, exp.experiment_id)
    runs["champion"] = runs["run_id"].map(champions(client, runs["run_id"])).fillna("")
    made += _save(vlc, charts.metric_history(runs, "f1", title="F1 of every tracked run"), out / "f1-history")
    return made


def _save(vlc, chart, stem: Path) -> list[str]:
    spec = chart.to_dict()
    stem.with_suffix(".svg").write_text(vlc.vegalite_to_svg(spec), encoding="utf-8")
    stem.with_suffix(".png").write_bytes(vlc.vegalite_to_png(spec, scale=2))
    return [stem.name]


def _index(done: dict, notebooks: list[tuple[str, str]], charts: list[str]) -> str:
    rows = "".join(f"<tr><td>{html.escape(step)}</td><td>{html.escape(what)}</td><td><code>{html.escape(run or '')}"
                   "</code></td></tr>" for step, what, run in done["steps"])
    figs = "".join(f'<figure><img src="{c}.svg" alt="{c}"><figcaption>{c} '
                   f'(<a href="{c}.png">PNG</a>, <a href="{c}.svg">SVG</a>)</figcaption></figure>' for c in charts)
    links = "".join(f'<li><a href="notebooks/{html.escape(name)}">{html.escape(step)}: {html.escape(name)}</a></li>'
                    for step, name in notebooks)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>mlops-magics demo</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}td,th{padding:2px 10px;"
            "text-align:left}figure{display:inline-block;margin:1em}</style></head><body>"
            "<h1>mlops-magics demo</h1><p>A sweep, a promotion, a drifted batch, the alert, the retrain.</p>"
            f"<h2>What happened</h2><table><tr><th>step</th><th>outcome</th><th>MLflow run</th></tr>{rows}</table>"
            f"<h2>Charts</h2>{figs}<h2>Executed notebooks</h2><ul>{links}</ul></body></html>")


def _summary(done: dict, echo) -> None:
    from .display import Table

    echo("\n" + repr(Table(["step", "outcome", "MLflow run"], [[s, w, r or ""] for s, w, r in done["steps"]],
                           caption="demo summary")))
