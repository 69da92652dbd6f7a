"""Whole-notebook overhead of ``%%track`` on the real-notebook corpus (tests/notebooks/corpus/).

Run: .venv/bin/python bench/real_notebooks.py [--rounds 3] [--notebooks pca,kde]
Each notebook runs in a fresh kernel of this venv as written and with ``%%track`` on every code
cell that has no cell magic, alternating which goes first, ``--rounds`` times. The time is the
cells' execution (kernel start and shutdown left out, the same for both); records are delivered
between runs so no run pays for the previous one's background work. Results print as ratios.
Never asserted in tests: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "notebooks" / "corpus"
TARGET = 1.05


def with_track(nb):
    """A copy of ``nb`` with ``%%track`` on every code cell that starts with no cell magic."""
    import nbformat

    out = nbformat.from_dict(nb)
    for cell in out.cells:
        if cell.cell_type == "code" and not cell.source.startswith("%%"):
            cell.source = "%%track\n" + cell.source
    return out


def cells_time(nb, cwd: str) -> float:
    """Seconds to execute every cell of ``nb`` in a fresh kernel, start-up and shutdown excluded."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name="python3", timeout=600, startup_timeout=120,
                            allow_errors=True, resources={"metadata": {"path": cwd}})
    with client.setup_kernel():
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        return time.perf_counter() - start


def isolate(workdir: str) -> None:
    """Kernels see a temporary store, journal and Jupyter/IPython folders; Agg plots."""
    os.chdir(workdir)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir}/mlflow.db"
    os.environ["MLOPS_MAGICS_HOME"] = f"{workdir}/.mlops_magics"
    os.environ["IPYTHONDIR"] = f"{workdir}/.ipython"
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime")):
        os.environ[var] = f"{workdir}/.jupyter/{sub}"
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: oversubscribed BLAS/OpenMP is pure noise
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    for var in ("MLOPS_MAGICS_NO_AUTOLOAD", "MLFLOW_EXPERIMENT_NAME", "MLOPS_MAGICS_NOTEBOOK", "JPY_SESSION_NAME"):
        os.environ.pop(var, None)


def measure(names: list[str], rounds: int, workdir: str) -> dict[str, tuple[list[float], list[float]]]:
    import nbformat

    from mlops_magics.journal.sync import sync

    times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in names}
    for r in range(rounds):
        for name in names:
            source = nbformat.read(CORPUS / f"{name}.ipynb", as_version=4)
            order = [False, True] if r % 2 == 0 else [True, False]
            for tracked in order:
                nb = with_track(source) if tracked else nbformat.from_dict(source)
                times[name][tracked].append(cells_time(nb, workdir))
                if tracked:
                    sync(timeout=120)  # untimed: the next run starts with nothing left to deliver
            plain, track = times[name]
            print(f"  round {r + 1}: {name:<24} untracked {plain[-1]:6.2f} s   tracked {track[-1]:6.2f} s", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each notebook in each variant")
    parser.add_argument("--notebooks", default="", help="comma-separated corpus names (default: all)")
    args = parser.parse_args()
    names = [n for n in args.notebooks.split(",") if n] or sorted(p.stem for p in CORPUS.glob("*.ipynb"))
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        isolate(tmp)
        try:
            times = measure(names, args.rounds, tmp)
        finally:
            os.chdir(here)
    print(f"{'notebook':<24} {'untracked':>10} {'tracked':>10} {'ratio':>7}   (median of {args.rounds})")
    total_plain = total_tracked = 0.0
    for name in names:
        plain, tracked = (statistics.median(t) for t in times[name])
        total_plain, total_tracked = total_plain + plain, total_tracked + tracked
        print(f"{name:<24} {plain:9.2f}s {tracked:9.2f}s {tracked / plain:6.2f}x")
    ratio = total_tracked / total_plain
    print(f"whole corpus (%%track on every cell) {total_plain:8.2f} s untracked | {total_tracked:8.2f} s tracked"
          f" | {ratio:5.2f}x  (target < {TARGET:.2f}x)")


if __name__ == "__main__":
    main()
