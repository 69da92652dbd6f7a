"""Fresh job kernels forked from a process that has already imported what a kernel imports.

A Python kernel spends most of its start-up importing ipykernel, IPython and the
debugger: a quarter second of CPU, every job. In a sweep, ``KernelForks`` starts one
fork server (``_kernel_fork_server``) that imports them once; each job's kernel is a
new child of it, which then starts exactly as ``python -m ipykernel_launcher`` would,
with the job's environment, folder and connection file. A kernel is never reused.

``provisioner.ForkedProvisioner`` is the jupyter_client provisioner for such
kernels: the ``LocalProvisioner`` with the ``Popen`` replaced by ``ForkedProcess``, a
handle on the forked child. When
the kernel spec is not this interpreter's ipykernel, or the server cannot fork, the
kernel is started the usual way.

What a forked kernel shares with its siblings: the modules imported before the fork,
and Python's string-hash seed (as with multiprocessing's ``fork``); ``random`` is
reseeded in every child.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...processes import alive

log = logging.getLogger("mlops_magics")

_CONNECT_TIMEOUT = 30.0  # the server may still be importing when the first kernels are asked for


class KernelForks:
    """A fork server for job kernels, alive for a ``with`` block (one sweep)."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="mlops-kernels-"))
        self.path = str(self._folder / "forks.sock")
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> KernelForks:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the server; kernels may be asked for at once (they wait for its imports)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            listener.listen(64)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlops_magics.runner.kernels.fork_server", str(listener.fileno())],
                stdin=subprocess.PIPE, pass_fds=(listener.fileno(),), start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # as kernel_env gives a job's kernel
        finally:
            listener.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stdin.close()  # the server's cue to end
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


def use_forks(km, server: str | None) -> None:
    """Have kernel manager ``km`` start its kernel as a child of the fork server at ``server``
    (unless its kernel spec is not this interpreter's ipykernel)."""
    if not server or kernel_argv(km.kernel_spec.argv) is None:
        return
    import uuid

    km.kernel_id = km.kernel_id or str(uuid.uuid4())
    # Unix sockets in the server's folder, not TCP ports: kernels that start within
    # milliseconds of each other in several workers would race for the same free port.
    km.transport = "ipc"
    km.ip = os.path.join(os.path.dirname(server), f"k-{km.kernel_id[:12]}")
    from .provisioner import ForkedProvisioner

    provisioner = ForkedProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
    provisioner.server = server
    km.provisioner = provisioner


# What jupyter_client replaces with the running interpreter in a kernel spec's command.
_THIS_PYTHON = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def kernel_argv(cmd: list[str]) -> list[str] | None:
    """The ipykernel arguments of ``cmd`` when it starts this interpreter's ipykernel, else None."""
    if len(cmd) < 3 or cmd[1:3] != ["-m", "ipykernel_launcher"]:
        return None
    if cmd[0] in _THIS_PYTHON:
        return list(cmd[3:])
    exe = shutil.which(cmd[0]) or cmd[0]
    try:
        same = os.path.samefile(exe, sys.executable)
    except OSError:
        same = False
    return list(cmd[3:]) if same else None


class ForkedProcess:
    """A forked kernel, with the part of ``subprocess.Popen`` a provisioner uses."""

    stdin = stdout = stderr = None

    def __init__(self, server: str, argv: list[str], env: dict[str, str], cwd: str) -> None:
        self.returncode: int | None = None
        self._buffer = b""
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(_CONNECT_TIMEOUT)
            self._sock.connect(server)
            self._sock.sendall(json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode() + b"\n")
            word, _, value = self._line(_CONNECT_TIMEOUT).partition(" ")
            if word != "pid":
                raise ValueError(f"unexpected answer from the kernel fork server: {word!r}")
            self.pid = int(value)
        except BaseException:
            self._sock.close()
            raise

    def _line(self, timeout: float | None) -> str:
        """The server's next line; '' at its end (or none yet within ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._sock], [], [], left)
            if not ready:
                return ""
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("the kernel fork server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _check(self, timeout: float | None) -> None:
        try:
            word, _, value = self._line(timeout).partition(" ")
        except OSError:  # the server is gone: the kernel's own parent poller ends it
            if not alive(self.pid):
                self._done(-9)
            elif timeout:
                time.sleep(min(timeout, 0.1))
            return
        if word == "exit":
            self._done(int(value))

    def _done(self, code: int) -> None:
        self.returncode = code
        self._sock.close()

    def poll(self) -> int | None:
        if self.returncode is None:
            self._check(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("kernel", timeout)
            self._check(left if left is not None else 1.0)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)
