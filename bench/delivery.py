"""Memory of N tracked kernels with their delivery, and time from "server back" to "all delivered".

Run: .venv/bin/python bench/delivery.py [--kernels 1,8]

Memory: N IPython processes (``python -c`` with an InteractiveShell, the extension loaded, one
tracked cell each, left open) and the journal's delivery process; total RSS printed next to
the former design's figure, one delivery process per kernel (N x the delivery process's RSS,
which loads mlflow: the issue measured 257 MB each).
Recovery: a real ``mlflow server`` on 127.0.0.1 is down while a kernel records; once the
delivery process sleeps in its longest back-off the server starts, and ``mlops-magics sync``
is timed to its return (the target: within 2 s of the server answering).
Never asserted in tests: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

KERNEL = """
import sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "mlops_magics")
assert ip.run_cell("%%track\\nlr = 0.1\\nacc = 0.9 + 0", store_history=True).success
import mlops_magics as mm
mm.flush(600)
print("ready", flush=True)
sys.stdin.read()  # open until the bench is done
"""


def _ready(kernel: subprocess.Popen) -> None:
    for line in kernel.stdout:  # the cell's summary prints first
        if line.strip() == "ready":
            return
    raise RuntimeError("a kernel died before its tracked cell was delivered")


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def memory(n: int, workdir: Path) -> tuple[float, float, int]:
    """(RSS of the kernels, RSS of the delivery processes, how many delivery processes), in MB."""
    import psutil

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
           "MLOPS_MAGICS_HOME": str(workdir / ".mlops_magics")}
    kernels = [subprocess.Popen([sys.executable, "-c", KERNEL], cwd=workdir, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(n)]
    try:
        for k in kernels:
            _ready(k)
        time.sleep(1.0)
        delivery = [p for p in psutil.process_iter(["cmdline"])
                    if "mlops_magics.journal.deliverd" in " ".join(p.info["cmdline"] or [])
                    and str(workdir) in " ".join(p.info["cmdline"] or [])]
        return (sum(_rss_mb(k.pid) for k in kernels), sum(_rss_mb(p.pid) for p in delivery), len(delivery))
    finally:
        for k in kernels:
            k.stdin.close()
            k.wait(timeout=120)


def recovery(workdir: Path) -> float:
    """Seconds from the server answering again to ``mlops-magics sync`` returning, all delivered."""
    from servers import MlflowServer, free_port

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
           "MLOPS_MAGICS_HOME": str(workdir / ".mlops_magics")}
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL.replace("mm.flush(600)", "mm.flush(0)")], cwd=workdir,
                              env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    log = workdir / ".mlops_magics" / "deliver.log"
    server = MlflowServer(f"sqlite:///{workdir}/server.db", workdir, port=port)
    try:
        _ready(kernel)
        deadline = time.monotonic() + 300
        while not (log.exists() and re.search(r"retrying in (16|30)\.0s", log.read_text())):
            if time.monotonic() > deadline:
                raise RuntimeError("the delivery process never backed off")
            time.sleep(0.2)
        server.start(timeout=300)
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "mlops_magics.cli", "sync", "--timeout", "300"], cwd=workdir,
                             env=env, capture_output=True, text=True)
        took = time.perf_counter() - started
        if out.returncode != 0:
            raise RuntimeError(out.stdout + out.stderr)
        return took
    finally:
        kernel.stdin.close()
        kernel.wait(timeout=120)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", default="1,8", help="comma-separated kernel counts")
    args = parser.parse_args()
    per_delivery = None
    for n in (int(k) for k in args.kernels.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            kernels, delivery, count = memory(n, Path(tmp))
        per_delivery = delivery / max(count, 1)
        before = kernels + n * per_delivery  # one delivery process per kernel, as before
        print(f"{n} kernel(s): kernels {kernels:.0f} MB + {count} delivery process(es) {delivery:.0f} MB "
              f"= {kernels + delivery:.0f} MB; one delivery per kernel would be {before:.0f} MB "
              f"({before / (kernels + delivery):.2f}x)")
    with tempfile.TemporaryDirectory() as tmp:
        took = recovery(Path(tmp))
    print(f"server back -> all delivered by `mlops-magics sync`: {took:.2f} s "
          f"(the delivery process was in a 16-30 s back-off; before: up to the back-off, 41 s measured)")


if __name__ == "__main__":
    main()
