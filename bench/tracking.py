"""Load time, per-cell overhead and step-metric rate: mlops-magics next to plain MLflow.

Run: .venv/bin/python bench/tracking.py [--cells 50] [--steps 10000]
Anchor and project run on the same machine in one run; results print as ratios.
Never asserted in tests: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from _timing import fresh_python


def _fresh(code: str) -> float:
    return float(fresh_python(code))


def load_times(repeats: int) -> tuple[float, float]:
    load = ("from IPython.core.interactiveshell import InteractiveShell\nimport time\n"
            "ip = InteractiveShell.instance()\nt = time.perf_counter()\n"
            "ip.run_line_magic('load_ext', 'mlops_magics')\nprint(time.perf_counter() - t)")
    anchor = "import time\nt = time.perf_counter()\nimport mlflow\nprint(time.perf_counter() - t)"
    ours = statistics.median(_fresh(load) for _ in range(repeats))
    theirs = statistics.median(_fresh(anchor) for _ in range(repeats))
    return ours, theirs


def cell_overhead(cells: int, workdir: str) -> tuple[float, float, float]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlops_magics")
    ip.run_line_magic("config", "TrackMagics.summary = False")
    body = "lr = 0.1\ndepth = 4\nacc = 0.9\nloss = 0.1"
    ip.run_cell("%%track\n" + body)  # warm: first delivery imports mlflow in the background
    ip.run_line_magic("track", "flush")
    plain, tracked = [], []
    for _ in range(cells):
        t = time.perf_counter()
        ip.run_cell(body)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        ip.run_cell("%%track\n" + body)
        tracked.append(time.perf_counter() - t)
    ip.run_line_magic("track", "flush")
    overhead = statistics.median(tracked) - statistics.median(plain)

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/anchor.db")
    mlflow.set_experiment("anchor")
    anchor = []
    for _ in range(cells):
        t = time.perf_counter()
        with mlflow.start_run():
            mlflow.log_params({"lr": 0.1, "depth": 4})
            mlflow.log_metrics({"acc": 0.9, "loss": 0.1})
        anchor.append(time.perf_counter() - t)
    return overhead, statistics.median(anchor), statistics.median(tracked)


def step_rates(steps: int, anchor_steps: int, workdir: str) -> tuple[float, float]:
    """Points per second: mm.log_metric in a tracked cell (journal commit included) vs mlflow.log_metric."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    cell = f"import mlops_magics as mm\nfor i in range({steps}):\n    mm.log_metric('loss', 1.0 / (i + 1))"
    plain = "for i in range(3):\n    pass"
    t = time.perf_counter()
    ip.run_cell("%%track --no-auto\n" + cell)
    tracked = time.perf_counter() - t
    t = time.perf_counter()
    ip.run_cell(plain)
    base = time.perf_counter() - t
    ours = steps / max(tracked - base, 1e-9)
    ip.run_line_magic("track", "flush")

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/anchor.db")
    with mlflow.start_run():
        t = time.perf_counter()
        for i in range(anchor_steps):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        theirs = anchor_steps / (time.perf_counter() - t)
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50, help="tracked cells to time")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per load timing")
    parser.add_argument("--steps", type=int, default=10_000, help="mm.log_metric points in one cell")
    parser.add_argument("--anchor-steps", type=int, default=1_000,
                        help="mlflow.log_metric calls (about 10 ms each on SQLite)")
    args = parser.parse_args()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        ours, theirs = load_times(args.repeats)
        print(f"%load_ext mlops_magics      {ours * 1000:8.1f} ms   | import mlflow {theirs * 1000:8.1f} ms"
              f"   | {theirs / ours:6.1f}x faster  (target < 150 ms)")
        overhead, anchor, tracked = cell_overhead(args.cells, tmp)
        print(f"%%track overhead per cell   {overhead * 1000:8.2f} ms   | MLflow start_run+log_params+log_metrics"
              f" {anchor * 1000:8.2f} ms | {anchor / max(overhead, 1e-9):6.1f}x less  (target < 10 ms;"
              f" tracked cell median {tracked * 1000:.2f} ms)")
        ours_rate, their_rate = step_rates(args.steps, args.anchor_steps, tmp)
        print(f"step metrics into journal   {ours_rate:10,.0f} /s | mlflow.log_metric {their_rate:10,.0f} /s"
              f"          | {ours_rate / their_rate:6.0f}x  (target >= 100,000/s)")
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.instance().run_line_magic("unload_ext", "mlops_magics")  # before tmp goes
        os.chdir(here)


if __name__ == "__main__":
    main()
