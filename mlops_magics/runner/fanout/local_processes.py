"""The processes a local sweep forks from, started first thing and cheaply.

This module imports nothing heavy, so the sweep can start both before it imports Dask
(half a second): their own imports then overlap everything the sweep does next.
"""

from __future__ import annotations

# What a job needs on a worker: loaded once, in the process local workers fork from.
_WORKER_MODULES = ["mlops_magics.runner.fanout.worker_preload"]


def warm_forkserver() -> bool:
    """Start the process local Dask workers fork from, with a job's modules loaded."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload(_WORKER_MODULES)
    forkserver.ensure_running()  # a no-op when it runs already
    return True
