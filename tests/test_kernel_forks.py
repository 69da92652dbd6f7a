"""Job kernels forked from a preloaded server: real kernels, driven by jupyter_client as any other."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest
from jupyter_core.utils import run_sync

from mlops_magics.runner.run import start_kernel, stop_kernel
from mlops_magics.runner.kernels.forks import KernelForks

pytestmark = pytest.mark.kernel


def run_code(km, code: str) -> str:
    """What ``code`` printed in the kernel."""
    kc = km.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
        out: list[str] = []
        run_sync(kc.execute_interactive)(code, timeout=60, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        return "".join(out).strip()
    finally:
        kc.stop_channels()


@pytest.fixture
def forks():
    with KernelForks() as server:
        yield server


def test_a_forked_kernel_is_a_fresh_child_of_the_server_and_is_stopped_for_good(forks, tmp_path):
    env = {**os.environ, "JOB_MARK": "one"}
    km = start_kernel("python3", env, str(tmp_path), forks=forks.path)
    try:
        facts = run_code(km, "import os, sys; print(os.getppid(), os.getcwd(), os.environ['JOB_MARK'], "
                             "sys.argv[0].endswith('ipykernel_launcher.py'))")
        parent, cwd, mark, launcher = facts.split()
        server = psutil.Process(int(parent))
        assert "mlops_magics.runner.kernels.fork_server" in " ".join(server.cmdline())
        assert (cwd, mark, launcher) == (str(tmp_path), "one", "True")
        assert km.transport == "ipc"  # Unix sockets: no free-port races between workers
        pid = km.provisioner.pid
    finally:
        stop_kernel(km)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_forked_kernel_that_dies_is_seen_dead(forks):
    km = start_kernel("python3", dict(os.environ), forks=forks.path)
    try:
        kc = km.client()
        kc.start_channels()
        run_sync(kc.wait_for_ready)(timeout=60)
        kc.execute("import os; os._exit(5)")
        deadline = time.monotonic() + 20
        while run_sync(km.is_alive)() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not run_sync(km.is_alive)()
        assert km.provisioner.process.returncode == 5
        kc.stop_channels()
    finally:
        stop_kernel(km)


def test_a_different_interpreter_set_up_starts_the_kernel_the_usual_way(forks):
    """A fork cannot change what Python read when it started (PYTHONHASHSEED, PYTHONPATH...)."""
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    km = start_kernel("python3", env, forks=forks.path)
    try:
        parent = int(run_code(km, "import os; print(os.getppid())"))
        assert parent == os.getpid()  # launched by this process, not forked by the server
        fresh = subprocess.run([sys.executable, "-c", "print(hash('abc'))"], env=env, capture_output=True,
                               text=True, check=True).stdout.strip()
        assert run_code(km, "print(hash('abc'))") == fresh  # the seed it asked for
    finally:
        stop_kernel(km)
