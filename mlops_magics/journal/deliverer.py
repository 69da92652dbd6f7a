"""Who delivers a journal: one delivery process per journal, found, started and told from outside.

Exclusivity is an OS lock: the delivery process holds ``flock`` on ``<journal>.deliver.lock``
beside the journal for as long as it lives. The kernel releases it when the process dies,
however it dies (SIGKILL, OOM), so a killed or zombie holder never blocks anyone, and no
lease times out while a slow batch runs. ``<journal>.deliver.pid`` (0600) says who holds it
(pid, start time); it is believed only while the lock is held.

Whoever needs delivery (a kernel, a job, ``sync``, ``flush``, ``status``) calls ``ensure``:
a non-blocking look at the lock; if nobody holds it, it starts ``python -m
mlops_magics.journal.deliverd``, which takes the lock or, if another one won the race,
exits at once. So a race ends with exactly one delivery process, and nobody keeps a
process of its own.

Credentials. The journal stores URIs without credentials (they must never reach a file),
yet a kernel whose URI carries ``user:password@`` (or ``MLFLOW_TRACKING_USERNAME/PASSWORD``)
must be delivered. The full URIs go to the delivery process in its environment when it is
started (a process environment is readable by the same user only and is never written to
disk); a process already running is handed them over an abstract-namespace unix socket
(Linux): it has no file, disappears with the process, and the receiver checks with
``SO_PEERCRED`` that the sender runs as the same user. A loser of the start race forwards the
URIs it was given to the winner the same way. Where abstract sockets do not exist, a URI
with credentials is delivered when the next delivery process starts from a process that has it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..processes import alive

URIS_ENV = "MLOPS_MAGICS_DELIVER_URIS"  # full URIs, one a line: in the environment, never in a file
_SPAWNED: list[subprocess.Popen] = []  # children to reap: a finished one would stay a zombie


@dataclass(frozen=True)
class Deliverer:
    """The delivery process of a journal, as read from its pid file."""

    pid: int
    started: float  # epoch seconds

    def describe(self) -> str:
        return f"pid {self.pid} since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.started))}"


def lock_path(journal: str | os.PathLike) -> Path:
    return _beside(journal, ".deliver.lock")


def _beside(journal: str | os.PathLike, suffix: str) -> Path:
    """A file beside the journal, named for it: ``journal.db`` -> ``journal<suffix>``."""
    p = Path(journal)
    return p.with_name(p.stem + suffix)


def info_path(journal: str | os.PathLike) -> Path:
    return _beside(journal, ".deliver.pid")


def socket_name(journal: str | os.PathLike) -> bytes:
    """The abstract socket of a journal's delivery process: one per journal file on this host."""
    digest = hashlib.sha1(os.path.realpath(journal).encode()).hexdigest()[:20]
    return b"\0mlops-magics-deliver-" + digest.encode()


def _open_lock(journal: str | os.PathLike) -> int:
    path = lock_path(journal)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class JournalLock:
    """The exclusive delivery lock of a journal, held by one open file description."""

    def __init__(self, journal: str | os.PathLike) -> None:
        self.journal, self._fd = journal, None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, retrying for ``wait`` s (another process may be looking at it)."""
        if self._fd is not None:
            return True
        fd, deadline = _open_lock(self.journal), time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                write_info(self.journal)  # who delivers: this process, from now
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.02)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def _taken(fd: int, mode: int) -> bool:
    """Whether another process's flock stops ``mode`` on ``fd`` now; ``fd`` is closed (dropping ours)."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def held(journal: str | os.PathLike) -> bool:
    """Whether some process holds the journal's delivery lock (a look of a few microseconds)."""
    return _taken(_open_lock(journal), fcntl.LOCK_SH)


STARTING_GRACE_S = 1.0


def who(journal: str | os.PathLike) -> Deliverer | None:
    """The live delivery process of ``journal``, or None when nobody delivers.

    The lock taken while the pid file names a dead process is looked at again for up to
    ``STARTING_GRACE_S``: a delivery process writes the file right after taking the lock, and
    another process's look at the lock (``held``) takes it for an instant. Only a lock still
    taken with no live owner named after that is "starting" (pid 0); a lock that comes free is
    nobody, so the caller starts a delivery process.
    """
    deadline = time.monotonic() + STARTING_GRACE_S
    while True:
        if not held(journal):
            return None
        try:
            info = json.loads(info_path(journal).read_text())
            if alive(int(info["pid"])):
                return Deliverer(pid=int(info["pid"]), started=float(info["started"]))
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() >= deadline:
            return Deliverer(pid=0, started=time.time())  # starting: the lock is taken, the file not yet (re)written
        time.sleep(0.05)


def write_info(journal: str | os.PathLike) -> None:
    """Called by the delivery process once it holds the lock."""
    path = info_path(journal)
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "started": time.time()}, f)
    os.replace(tmp, path)


def has_credentials(uri: str) -> bool:
    """Whether delivering to ``uri`` needs something the journal does not keep."""
    from .store import journal_uri

    if journal_uri(uri) != uri:
        return True
    return uri.startswith(("http://", "https://")) and bool(os.environ.get("MLFLOW_TRACKING_USERNAME"))


def with_env_credentials(uri: str) -> str:
    """``uri`` with ``$MLFLOW_TRACKING_USERNAME/PASSWORD`` folded in as ``user:password@``, for a
    delivery process whose own environment lacks them (requests sends them as basic auth)."""
    from urllib.parse import quote

    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    if not user or not uri.startswith(("http://", "https://")) or "@" in uri.split("/", 3)[2]:
        return uri
    scheme, rest = uri.split("://", 1)
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def ensure(journal: str | os.PathLike, uris: list[str] = ()) -> bool:
    """Make sure a delivery process runs for ``journal``; True when this call started one.

    ``uris``: full tracking URIs this process records to; the new process gets them in its
    environment (a running one: ``tell``).
    """
    for child in list(_SPAWNED):
        if child.poll() is not None:
            _SPAWNED.remove(child)
    if held(journal):
        return False
    from ..locations import TRACKING_URI_ENV, absolute_uri

    # MLflow prints each run's URL, credentials included, to stdout: deliver.log is stdout.
    env = {**os.environ, URIS_ENV: "\n".join(uris), "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    if env.get(TRACKING_URI_ENV, "").strip():  # a relative sqlite:/// path: the starter's folder, as its records say
        env[TRACKING_URI_ENV] = absolute_uri(env[TRACKING_URI_ENV].strip())
    log = Path(journal).with_name("deliver.log")
    fd = os.open(log, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    try:
        _SPAWNED.append(subprocess.Popen(
            [sys.executable, "-m", "mlops_magics.journal.deliverd", str(journal)], env=env,
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True, close_fds=True))
    finally:
        os.close(fd)
    return True


def tell(journal: str | os.PathLike, uris: list[str], wait: float = 0.0) -> bool:
    """Hand full ``uris`` to the running delivery process; False when it could not be reached."""
    if not uris or not sys.platform.startswith("linux"):
        return False
    message = json.dumps({"uris": [with_env_credentials(u) for u in uris]}).encode()
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2.0)
                s.connect(socket_name(journal))
                s.sendall(message)
                s.shutdown(socket.SHUT_WR)
                return s.recv(16) == b"ok"
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT) or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def listen(journal: str | os.PathLike) -> socket.socket | None:
    """The delivery process's end of ``tell`` (None where abstract sockets do not exist)."""
    if not sys.platform.startswith("linux"):
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(socket_name(journal))
    except OSError:  # a previous holder's socket lingers a moment, or someone squats the name
        s.close()
        return None
    s.listen(16)
    return s


def receive(conn: socket.socket) -> list[str]:
    """Read one ``tell`` from a connection; only from a process of the same user."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():
        return []
    conn.settimeout(2.0)
    data = b""
    while len(data) < 1 << 20:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.sendall(b"ok")
    try:
        return [u for u in json.loads(data.decode()).get("uris", []) if isinstance(u, str)]
    except ValueError:
        return []


def describe(journal: str | os.PathLike, uris: list[str] = (), *, pending: int = 0) -> str:
    """``pid 123 since ...`` or why nobody delivers; with records ``pending`` a dead delivery
    process is replaced here, and the text says so."""
    found = who(journal)
    if found is not None:
        return found.describe() if found.pid else "a delivery process is starting"
    if not pending:
        return "nobody delivers (nothing is pending)"
    ensure(journal, list(uris))
    return f"nobody delivers: {pending} records were waiting; started a delivery process"


def clients_path(journal: str | os.PathLike) -> Path:
    return _beside(journal, ".clients.lock")


class ClientMark:
    """A shared ``flock`` on ``<journal>.clients.lock`` held while a process may record more:
    the delivery process stays while any is held. It goes with the process however it ends."""

    def __init__(self, journal: str | os.PathLike) -> None:
        self.journal, self._fd = journal, None

    def hold(self) -> None:
        if self._fd is not None:
            return
        path = clients_path(self.journal)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, deadline = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), time.monotonic() + 1.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # the delivery process looks for microseconds
                self._fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return
                time.sleep(0.005)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def clients_alive(journal: str | os.PathLike) -> bool:
    """Whether any process holds a ``ClientMark`` on ``journal``."""
    return _taken(os.open(clients_path(journal), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), fcntl.LOCK_EX)


def report(journal: str | os.PathLike, uri: str) -> list[tuple[str, str]]:
    """What ``mlops-magics status`` shows: the journal, who delivers it (a dead delivery process
    is replaced when records wait), what waits for each URI, and what is wrong with the store."""
    from ..locations import display_uri
    from .prepare import diagnose
    from .store import Journal

    rows = [("journal", str(journal))]
    if Path(journal).exists():
        j = Journal(journal)
        try:
            rows.append(("delivery", describe(journal, [uri], pending=j.pending())))
            for stored in j.uris():
                pending, error = j.pending(stored), j.last_error(stored)
                line = f"{pending} pending" + (f"; last error: {error}" if pending and error else "")
                rows.append((f"records for {display_uri(stored)}", line))
        finally:
            j.close()
    else:
        rows.append(("delivery", "nobody delivers (nothing recorded here yet)"))
    problem = diagnose(uri)
    return rows + [("store", problem)] if problem else rows
