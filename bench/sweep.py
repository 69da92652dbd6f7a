"""Sweep throughput: 8 points of a small notebook, papermill one after another vs ``run_sweep``.

Run: .venv/bin/python bench/sweep.py [--points 8] [--workers 2] [--repeat 3] [--tracked-anchor]

The anchor is papermill's Python API in one process, one point after another, on the
same notebook without ``%%track`` and without the extension loaded (papermill alone,
recording nothing). Ours is ``run_sweep`` on a local Dask cluster: every point a fresh
kernel and a job run in MLflow, children of one sweep run. Each side runs in a fresh
Python process, timed from its first import to its last record in MLflow; the MLflow
store is created beforehand. The two sides alternate ``--repeat`` times, each in a fresh
store, and the medians are compared: on this shared machine a papermill kernel start now
and then stalls for seconds, which one run alone would count as the anchor's speed.
Never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import fresh_python

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "notebooks" / "sweep_small.ipynb"
TARGET = 1.8

# CPU seconds of the whole process tree (kernels, Dask workers, fork server), sampled while it
# lives: the tree's processes are not all reaped by this one, so rusage would miss some.
_CLOCK = """
import json, sys, threading, time
import psutil
_seen = {}
def _sample():
    me = psutil.Process()
    while True:
        for p in [me, *me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                _seen[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        time.sleep(0.05)
threading.Thread(target=_sample, daemon=True).start()
def _cpu():
    time.sleep(0.1)
    return sum(_seen.values())
"""

ANCHOR = _CLOCK + """
if __name__ == "__main__":
    notebook, out, values = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    t = time.perf_counter()
    import papermill as pm
    for i, x in enumerate(values):
        pm.execute_notebook(notebook, f"{out}/anchor-{i}.ipynb", parameters={"x": x}, progress_bar=False)
    print(json.dumps({"wall": time.perf_counter() - t, "cpu": _cpu()}))
"""

OURS = _CLOCK + """
if __name__ == "__main__":
    notebook, workers, values = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    t = time.perf_counter()
    from mlops_magics.runner.sweep import run_sweep
    result = run_sweep(notebook, {"x": values}, workers=workers, progress=False)
    wall = time.perf_counter() - t
    cpu = _cpu()
    from mlflow import MlflowClient
    client = MlflowClient()
    jobs = client.search_runs([client.get_experiment_by_name("Default").experiment_id],
                              f"tags.`mlops.sweep` = '{result.key}'")
    complete = [r for r in jobs if r.info.status == "FINISHED" and "score" in r.data.metrics
                and r.data.tags.get("mlflow.parentRunId") == result.run_id]
    import os, sqlite3
    journal = sqlite3.connect(os.path.join(os.environ["MLOPS_MAGICS_HOME"], "journal.db"))
    refused = [r[0] for r in journal.execute("SELECT error FROM rejected")]
    print(json.dumps({"wall": wall, "cpu": cpu, "runs": len(complete), "best": result.best.parameters,
                      "sweep_status": client.get_run(result.run_id).info.status, "refused": refused}))
"""


def _run(code: str, args: list[str], env: dict[str, str], cwd: str) -> dict:
    return json.loads(fresh_python(code, *args, env=env, cwd=cwd))


def _plain_copy(folder: Path) -> Path:
    """The same notebook for papermill alone: the ``%%track`` line removed."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        cell.source = "\n".join(line for line in cell.source.splitlines() if line.strip() != "%%track")
    path = folder / "plain.ipynb"
    nbformat.write(nb, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (medians are compared)")
    parser.add_argument("--tracked-anchor", action="store_true",
                        help="Also time papermill on the notebook as it is, %%%%track on: each kernel "
                             "then delivers its own runs to MLflow (slow: it loads mlflow per kernel).")
    args = parser.parse_args()
    values = json.dumps([round(i / args.points, 4) for i in range(args.points)])
    args.load = os.getloadavg()[0]  # a busy machine slows the CPU-bound side most
    anchors, ours, tracked = [], [], []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
            folder = Path(tmp)
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
                   "MLOPS_MAGICS_HOME": str(folder / ".mlops_magics")}
            env.pop("MLFLOW_EXPERIMENT_NAME", None)
            subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
                           check=True, env=env, cwd=tmp, capture_output=True)  # the store exists, as it would
            anchors.append(_run(ANCHOR, [str(_plain_copy(folder)), tmp, values],
                                {**env, "MLOPS_MAGICS_NO_AUTOLOAD": "1"}, tmp))
            ours.append(_run(OURS, [str(NOTEBOOK), str(args.workers), values], env, tmp))
            if args.tracked_anchor:
                tracked.append(_run(ANCHOR, [str(NOTEBOOK), tmp, values], env, tmp))
    _report(args, anchors, ours, tracked)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _walls(runs: list[dict]) -> str:
    return ", ".join(f"{r['wall']:.2f}" for r in runs)


def _report(args, anchors: list[dict], ours: list[dict], tracked: list[dict]) -> None:
    anchor, mine = _median(anchors, "wall"), _median(ours, "wall")
    ratio = anchor / mine
    print(f"sweep of {args.points} points of {NOTEBOOK.name} on {os.cpu_count()} CPUs, {len(ours)} runs a side "
          f"(load average before: {args.load:.1f})")
    print(f"  anchor  papermill API, one after another, no tracking: median {anchor:6.2f} s "
          f"(cpu {_median(anchors, 'cpu'):.1f} s; runs {_walls(anchors)})")
    complete = min(r["runs"] for r in ours)
    print(f"  ours    run_sweep, {args.workers} Dask workers, fresh kernel per job: median {mine:6.2f} s "
          f"(cpu {_median(ours, 'cpu'):.1f} s; runs {_walls(ours)}); at least {complete}/{args.points} job runs "
          f"complete in MLflow per run, sweep runs {', '.join(sorted({r['sweep_status'] for r in ours}))}")
    print(f"  ratio   {ratio:.2f}x the anchor's median (target {TARGET}x): {'met' if ratio >= TARGET else 'NOT met'}")
    if tracked:
        other = _median(tracked, "wall")
        print(f"  anchor  papermill API, one after another, %%track on: median {other:6.2f} s "
              f"(cpu {_median(tracked, 'cpu'):.1f} s): ours is {other / mine:.2f}x that")
    refused = [e for r in ours for e in r["refused"]]
    if refused:
        print(f"  lost    {len(refused)} records MLflow refused, e.g. {refused[0]}")


if __name__ == "__main__":
    main()
