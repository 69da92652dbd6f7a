"""The delivery process of a journal: ``python -m mlops_magics.journal.deliverd JOURNAL``.

One per journal, whoever started it (see ``deliverer``): it holds the journal's delivery
lock, and delivers every URI with pending records, one thread per URI. Full URIs
(credentials) come in ``$MLOPS_MAGICS_DELIVER_URIS``, ``$MLFLOW_TRACKING_URI`` and over
its socket. It exits when no client (a kernel, a job, a sweep, ``sync``) holds its mark
and nothing is pending; with no client left it gives up (records stay in the journal, for
the next session or ``mlops-magics sync``) once MLflow has taken nothing for two minutes;
idle for ten minutes it exits even with clients (their next record starts it again).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

log = logging.getLogger("mlops_magics")

GIVE_UP_S = 120.0
IDLE_EXIT_S = 600.0
_SCAN_S = 0.5
_NICE = 19


class DeliveryProcess:
    """The delivery of one journal by this process, which holds its delivery lock."""

    def __init__(self, path: str) -> None:
        from .deliverer import JournalLock
        from .store import Journal

        self.path = path
        self.lock = JournalLock(path)
        self.journal = Journal(path)
        self.workers: dict = {}  # journal URI -> Delivery
        self.full: dict[str, str] = {}  # journal URI -> the URI to deliver with (credentials)
        self._guard = threading.Lock()

    def learn(self, uris: list[str]) -> None:
        """Full URIs handed over: used for the store they name, from the next batch on."""
        from .store import journal_uri

        with self._guard:
            for uri in uris:
                key = journal_uri(uri)
                if not uri or (uri == key and key in self.full):  # never trade credentials for none
                    continue
                if self.full.get(key) != uri:
                    self.full[key] = uri
                    if key in self.workers:
                        self.workers[key].use_uri(uri)

    def serve(self, sock) -> None:
        """Accept ``deliverer.tell`` until the socket closes."""
        from .deliverer import receive

        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                with conn:
                    self.learn(receive(conn))
            except Exception:
                log.debug("a hand-over failed", exc_info=True)

    def scan(self) -> int:
        """Start a worker for each URI with work; return the records pending in all."""
        total = 0
        for uri in self.journal.uris():
            work = self.journal.pending(uri)
            total += work
            if not work and uri not in self.workers:
                work = len(self.journal.orphaned_runs(uri))
            if work:
                self.worker(uri)
        return total

    def worker(self, uri: str) -> None:
        """The worker of ``uri`` (a journal URI), started with MLflow loaded ahead of its records."""
        from .delivery import Delivery

        with self._guard:
            if uri not in self.workers:
                self.workers[uri] = Delivery(self.full.get(uri, uri), self.journal, locked=True)
                self.workers[uri].warm()

    def run(self) -> tuple[str, bool]:
        """Deliver until there is no reason to stay; return why, and whether it stops idle."""
        from .deliverer import clients_alive

        progress = idle = time.monotonic()
        before = None
        while True:
            time.sleep(_SCAN_S)
            try:
                pending = self.scan()
            except Exception as exc:  # the journal is busy or faulty: look again
                log.debug("journal scan failed: %s", exc)
                continue
            now = time.monotonic()
            if pending == 0 or (before is not None and pending < before):
                progress = now
            if pending:
                idle = now
            before = pending
            if not clients_alive(self.path):
                if pending == 0:
                    return "nothing pending and no client left", True
                if now - progress > GIVE_UP_S:
                    return f"MLflow took nothing for {GIVE_UP_S:.0f} s, no client is left; {pending} records wait", False
            elif now - idle > IDLE_EXIT_S:
                return f"idle for {IDLE_EXIT_S:.0f} s", True

    def stop(self) -> None:
        with self._guard:
            workers, self.workers = list(self.workers.values()), {}
        for w in workers:
            w.stop()


def main(argv: list[str]) -> int:
    from .deliverer import URIS_ENV, has_credentials, listen, tell
    from .store import journal_uri

    _log_masked()
    path = argv[0]
    given = [u for u in os.environ.get(URIS_ENV, "").splitlines() if u.strip()]
    given += [os.environ[k] for k in ("MLFLOW_TRACKING_URI",) if os.environ.get(k)]
    process = DeliveryProcess(path)
    # Another process may be looking at the lock this very moment: retry briefly.
    if not process.lock.acquire(wait=1.0):
        tell(path, [u for u in given if has_credentials(u)], wait=3.0)  # the winner gets them
        return 0
    os.nice(_NICE)  # background work: the kernels it delivers for (and their notebooks) come first
    while True:
        log.info("delivery process %d delivers journal %s", os.getpid(), path)
        process.learn(given)
        for uri in given:  # what its starter records to: mlflow loads before the records come
            process.worker(journal_uri(uri))
        sock = listen(path)
        if sock is not None:
            threading.Thread(target=process.serve, args=(sock,), name="mlops-magics-handover", daemon=True).start()
        why, idle = process.run()
        process.stop()
        if sock is not None:
            sock.close()
        process.lock.release()
        # A client may have committed records while it still saw the lock held: look once more.
        if not idle or process.journal.pending() == 0 or not process.lock.acquire(wait=1.0):
            break
    log.info("delivery process %d exits: %s", os.getpid(), why)
    process.journal.close()
    return 0


def _log_masked() -> None:
    """deliver.log (this process's stderr): every line masked, tracebacks and warnings included,
    so a tracking URI's password or a token in an error text never lands in the file."""
    from ..secrets import MaskFilter, MaskedStream

    sys.stderr = MaskedStream(sys.stderr)  # before mlflow binds its own handler to it
    sys.stdout = MaskedStream(sys.stdout)  # the same deliver.log: whatever a library prints
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskFilter())
    logging.captureWarnings(True)
    log = logging.getLogger("mlops_magics")
    sys.excepthook = lambda *exc: log.critical("delivery process failed", exc_info=exc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
