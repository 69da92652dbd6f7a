"""Real servers for tests: an ``mlflow server`` process on 127.0.0.1, started and stopped by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on 127.0.0.1:port with the given backend store; stop() kills it."""

    def __init__(self, backend: str, workdir: Path, port: int | None = None, app: str | None = None,
                 env: dict | None = None) -> None:
        self.backend, self.workdir, self.app = backend, Path(workdir), app
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> MlflowServer:
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend,
               "--artifacts-destination", str(self.workdir / "artifacts"),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if self.app:
            cmd += ["--app-name", self.app]
        log = open(self.workdir / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env, stdout=log, stderr=log,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.workdir / f'server-{self.port}.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers (an auth app guards /health)
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("mlflow server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


def _pg_bin(name: str) -> str | None:
    import glob
    import shutil

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def postgres_missing() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None."""
    if _pg_bin("initdb") is None or _pg_bin("pg_ctl") is None:
        return "PostgreSQL server binaries not found: install Debian's 'postgresql' (make test does, as root)"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as"
    return None


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port in a temporary data directory."""

    def __init__(self) -> None:
        import tempfile

        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mlops-magics-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
            import pwd
            import shutil

            pg = pwd.getpwnam("postgres")
            os.chown(self.dir, pg.pw_uid, pg.pw_gid)
            self._as = [shutil.which("runuser") or "/sbin/runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        out = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")

    def start(self) -> Postgres:
        data = str(self.dir / "data")
        self._run(_pg_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", data, "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        self._run(_pg_bin("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-c", "CREATE DATABASE mlflow")
        return self

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def stop(self) -> None:
        import shutil

        subprocess.run([*self._as, _pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
