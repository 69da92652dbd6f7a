"""How quickly a command says the MLflow server is not there (moved here from a timed test).

Run: .venv/bin/python bench/cli_errors.py

Anchor: ``MlflowClient(uri).search_experiments()`` against a port nothing listens on, with
MLflow's default HTTP retries (it keeps retrying with back-off; cut at --cap seconds).
Project: ``mlops-magics runs --tracking-uri <same uri>``, which answers in one line.
Both in fresh processes, same machine, same moment. Never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def _timed(argv: list[str], cap: float) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_HTTP_REQUEST_MAX_RETRIES"}
    started = time.perf_counter()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=cap, env=env)
        return time.perf_counter() - started, (out.stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        return float("inf"), f"still retrying after {cap:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=90.0, help="Seconds before the anchor is cut off.")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    anchor = [sys.executable, "-c", f"from mlflow import MlflowClient; MlflowClient({uri!r}).search_experiments()"]
    ours = [str(Path(sys.executable).with_name("mlops-magics")), "runs", "--tracking-uri", uri]
    t_ours, line = _timed(ours, args.cap)
    t_anchor, anchor_line = _timed(anchor, args.cap)
    shown = f"{t_anchor:.1f} s" if t_anchor != float("inf") else f"> {args.cap:.0f} s"
    print(f"unreachable server: mlflow client {shown} ({anchor_line[:80]})")
    print(f"unreachable server: mlops-magics runs {t_ours:.1f} s: {line}")
    if t_anchor != float("inf"):
        print(f"ratio: {t_anchor / t_ours:.1f}x quicker")


if __name__ == "__main__":
    main()
