"""The process a sweep's job kernels are forked from.

Run as ``python -m mlops_magics.runner.kernels.fork_server FD`` by ``forks.KernelForks``:
FD is a listening Unix socket its parent made (clients may connect before this process
has finished importing). A request whose environment differs from this process's in
what the interpreter reads at start (``PYTHON*``, ``LD_*``) is refused, and the
client starts that kernel the usual way. It imports once what every IPython kernel imports when it starts
(ipykernel, IPython, the debugger, this package's magics), then forks one child per
request. The child turns into a fresh kernel exactly as ``python -m ipykernel_launcher``
would, in its own session, with the request's environment, working folder and
arguments; no child is ever asked to run a second job.

Protocol, one connection per kernel: the client sends one JSON line
``{"argv": [...], "env": {...}, "cwd": "..."}``; the server answers ``pid N`` when the
child exists and ``exit CODE`` when it has ended. The server ends when its standard
input closes (its parent is gone); kernels it forked then end too (ipykernel's parent
poller watches this process).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
from typing import NoReturn

# Entry points of what a kernel imports at start; their imports follow.
_PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
            "IPython.core.completer", "IPython.core.history", "jupyter_client.session",
            "mlops_magics.magics", "mlops_magics.magics.track", "mlops_magics.magics.drift_history",
            "mlops_magics.tracking.session", "mlops_magics.tracking.cell", "mlops_magics.tracking.lineage",
            "mlops_magics.journal.delivery", "mlops_magics.journal.store", "sqlite3")
_REQUEST_TIMEOUT = 10.0


def _preload() -> None:
    import importlib

    # debugpy warns about frozen modules on import; in a kernel the warning goes to the
    # kernel's captured stderr and nowhere else, here it would reach the terminal.
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    try:
        for name in _PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # the kernel imports it again, and reports what is wrong
                pass
    finally:
        del os.environ["PYDEVD_DISABLE_FILE_VALIDATION"]
    try:  # the installed distributions, read once for every job's run (same interpreter, same path)
        from mlops_magics.tracking.lineage import environment

        environment()
    except Exception:
        pass


def _startup_env(env) -> dict[str, str]:
    """What the interpreter reads when it starts, which a fork cannot change."""
    return {k: v for k, v in env.items() if k.startswith(("PYTHON", "LD_"))}


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def main(argv: list[str]) -> int:
    listener = socket.socket(fileno=int(argv[0]))
    _preload()
    # Forking a process with threads can copy a lock held by one of them into the child.
    single = _threads() == 1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C is for the sweep; it closes our stdin
    children: dict[int, socket.socket] = {}
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(0, selectors.EVENT_READ, "parent")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    while True:
        for key, _ in sel.select():
            if key.data == "parent":
                if not os.read(0, 4096):
                    return 0
            elif key.data == "child":
                os.read(wake_r, 4096)
                _reap(children)
            else:
                conn, _ = listener.accept()
                request = _request(conn)
                if request is None or not single or _startup_env(request["env"]) != _startup_env(os.environ):
                    conn.close()  # the client falls back to starting the kernel itself
                    continue
                pid = os.fork()
                if pid == 0:
                    sel.close()
                    for fd in (wake_r, wake_w):
                        os.close(fd)
                    for other in (listener, conn, *children.values()):
                        other.close()
                    _become_kernel(request)
                children[pid] = conn
                _send(conn, f"pid {pid}\n")


def _request(conn: socket.socket) -> dict | None:
    conn.settimeout(_REQUEST_TIMEOUT)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        request = json.loads(data)
    except (OSError, ValueError):
        return None
    ok = isinstance(request, dict) and isinstance(request.get("argv"), list) and isinstance(request.get("env"), dict)
    return request if ok else None


def _send(conn: socket.socket, text: str) -> None:
    try:
        conn.sendall(text.encode())
    except OSError:
        pass  # the client is gone; its kernel is still reaped here


def _reap(children: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            _send(conn, f"exit {os.waitstatus_to_exitcode(status)}\n")
            conn.close()


def _become_kernel(request: dict) -> NoReturn:
    """In the forked child: become the kernel ``python -m ipykernel_launcher ARGV`` would start.

    Never returns into the server's loop: the kernel's end (or an error before it starts)
    leaves through ``SystemExit``, and the interpreter exits as a kernel's would, running
    its ``atexit`` handlers.
    """
    os.setsid()  # its own session and process group, as jupyter_client gives a kernel
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(request.get("cwd") or os.getcwd())
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    # The kernel ends if this server does (ipykernel read its variable when imported here).
    os.environ["JPY_PARENT_PID"] = str(os.getppid())
    argv = [*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
    import ipykernel_launcher
    from ipykernel import kernelapp

    sys.argv = [ipykernel_launcher.__file__, *argv]
    if sys.path and not sys.flags.safe_path:
        del sys.path[0]  # this server's folder, which ``-m`` put first; ipykernel_launcher drops it too
    kernelapp.launch_new_instance(argv=argv)
    sys.exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
