"""Delivery from the journal to MLflow, in a background thread that never blocks a cell.

``Delivery.submit`` commits records to the journal and returns; the worker thread
holds the URI's lease and applies pending batches in order with ``log_batch``.
An outage (connection refused, database locked, server 5xx) keeps the batch and
retries with exponential backoff; a record MLflow rejects outright is set aside in
the journal's ``rejected`` table so it cannot block the rest. Runs left open by a
process that died are ended ``FAILED`` with ``mlops.failure=kernel_died``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from .. import naming
from ..errors import one_line
from ..tracking import records
from .store import Batch, Journal, new_owner

log = logging.getLogger("mlops_magics")

_BACKOFF_START, _BACKOFF_MAX, _IDLE_POLL = 0.25, 30.0, 1.0
# At the end of a job, MLflow failing every attempt for this long ends the wait for it: the
# records stay in the journal for later.
OUTAGE_GRACE = 5.0
_WAKE_POLL = 0.05  # how often an idle delivery looks for a flush asked by another process


@dataclass
class DeliveryStatus:
    uri: str
    pending: int  # records in the journal not yet in MLflow
    rejected: int
    last_error: str | None
    rejected_errors: list[str] = field(default_factory=list)


class _Outage:
    """How long MLflow has been failing without a break, as seen by one ``flush``."""

    def __init__(self, grace: float | None) -> None:
        self.grace, self._since = grace, None

    def long(self, error: str | None) -> bool:
        """Given the latest delivery error (None: the last attempt went through or none failed)."""
        if self.grace is None or not error:
            self._since = None
            return False
        self._since = self._since or time.monotonic()
        return time.monotonic() - self._since >= self.grace


class Delivery:
    """Delivers the journal's batches for one MLflow tracking URI."""

    def __init__(self, tracking_uri: str, journal: Journal, owner: str | None = None, *,
                 hold: bool = False) -> None:
        """``hold``: keep the URI's lease from the first record (or ``warm``) until ``close``,
        even while idle, so other processes' records wait for this one to deliver them.
        """
        self.uri, self.journal, self.hold = tracking_uri, journal, hold
        self.owner = owner or new_owner()
        self._warm = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._writer = None
        self._stopping = self._wake = False
        self._last_error: str | None = None
        self._seen_wake = time.time()

    # -- producer side -------------------------------------------------------------
    def submit(self, ops: list[records.Op]) -> None:
        """Commit ``ops`` to the journal (durable on return); delivery follows in the background."""
        if ops:
            self.journal.append(self.uri, ops, self.owner)
            self.start()

    def warm(self) -> None:
        """Start delivering now and load MLflow's client (seconds of CPU) before records come."""
        self._warm = True
        self.start()

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="mlops-magics-flusher", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self, everyone: bool = True) -> int:
        return self.journal.pending(self.uri, None if everyone else self.owner)

    def run_id(self, key: str) -> str | None:
        """MLflow's run id for a client key, once delivered."""
        return self.journal.run_id(self.uri, key)

    def flush(self, timeout: float = 30.0, everyone: bool = False, outage_grace: float | None = None) -> int:
        """Deliver now, waiting up to ``timeout`` s; return records still pending (own, or all).

        ``outage_grace``: stop waiting once MLflow has failed every attempt for that long
        (the records stay in the journal); for waits at the end of a job, where a server
        that is down would otherwise hold the user for the whole ``timeout``.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        outage = _Outage(outage_grace)
        self.start()
        while True:
            left = self.pending(everyone)
            if left == 0 or time.monotonic() >= deadline or self._thread is None or outage.long(self._last_error):
                return left
            with self._cond:
                self._wake = True  # skip any backoff: the user asked for delivery now
                self._cond.notify_all()
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def last_error(self) -> str | None:
        """Why the oldest waiting records are not in MLflow yet, when an attempt failed."""
        return self.journal.last_error(self.uri)

    def status(self) -> DeliveryStatus:
        """What waits and what MLflow refused, from the journal (whichever process delivers)."""
        pending, rejected = self.pending(), self.journal.rejected(self.uri)
        return DeliveryStatus(uri=self.uri, pending=pending, rejected=len(rejected),
                              last_error=self.last_error() if pending else None, rejected_errors=rejected)

    def close(self, timeout: float = 10.0) -> int:
        """Flush, then stop the worker and hand the lease back. Returns own records left.

        During an outage it waits at most a second: the records are safe in the journal
        and the next session, or ``mlops-magics sync``, delivers them.
        """
        if self._last_error:
            timeout = min(timeout, 1.0)
        left = self.flush(timeout) if self._thread is not None else self.pending(everyone=False)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        try:
            self.journal.release(self.uri, self.owner)
        except Exception:
            log.debug("could not release the journal lease", exc_info=True)
        return left

    # -- worker side ---------------------------------------------------------------
    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless woken by flush/stop (here, or another process through
        the journal); False when stopping."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._wake and not self._stopping and time.monotonic() < deadline:
                self._cond.wait(min(_WAKE_POLL, max(0.0, deadline - time.monotonic())))
                woken = self.journal.woken_at(self.uri)
                if woken > self._seen_wake:
                    self._seen_wake = woken
                    break
            self._wake = False
            return not self._stopping

    def _run(self) -> None:
        backoff = _BACKOFF_START
        try:  # housekeeping, once per delivery: not on the path of a process that only records
            self.journal.prune_latest_metrics()
        except Exception:
            log.debug("could not prune the journal's latest metrics", exc_info=True)
        if self._warm:
            self._load_writer()
        while not self._stopping:
            try:
                batch = self._next()
            except Exception as exc:  # the journal itself is busy: try again shortly
                log.debug("journal read failed: %s", exc)
                batch = None
            if batch is None:
                if not self._sleep(_IDLE_POLL):
                    return
                continue
            try:
                self._apply(batch)
            except Exception as exc:  # an outage: keep the batch, retry later
                error = one_line(exc)
                self.journal.failed(batch, error)
                with self._cond:
                    self._last_error = error
                # Not a warning: printed from this thread it would land in whatever cell runs now.
                log.info("MLflow at %s unreachable (%s); retrying in %.1fs", self.uri, error, backoff)
                if not self._sleep(backoff):
                    return
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_START
            self.journal.delivered(batch)
            with self._cond:
                self._last_error = None
                self._cond.notify_all()

    def _load_writer(self) -> None:
        from .mlflow_writer import MlflowWriter

        try:
            if self.hold:
                self.journal.acquire(self.uri, self.owner)
            self._writer = MlflowWriter(self.uri, self.journal)
        except Exception:  # the first batch tries again and reports what is wrong
            log.debug("could not load the MLflow client ahead", exc_info=True)

    def _next(self) -> Batch | None:
        if self.hold:
            if not self.journal.acquire(self.uri, self.owner):
                return None
            if self.journal.pending(self.uri) == 0 and self.end_orphans() == 0:
                return None  # idle, and the lease stays held
            return self.journal.next_batch(self.uri)
        if self.journal.pending(self.uri) == 0 and self.end_orphans() == 0:
            self.journal.release(self.uri, self.owner)
            return None
        if not self.journal.acquire(self.uri, self.owner):
            return None  # another live process delivers this URI now
        return self.journal.next_batch(self.uri)

    def end_orphans(self) -> int:
        """Runs opened by a process that died never get their end: record what happened."""
        orphans = self.journal.orphaned_runs(self.uri)
        for key, kind in orphans:
            status = "KILLED" if kind == naming.KIND_SESSION else "FAILED"
            tags = {naming.FAILURE: naming.FAILURE_KERNEL_DIED,
                    naming.ERROR: "KernelDied: the process recording this run ended before the run did"}
            self.journal.append(self.uri, [records.log(key, tags=tags),
                                           records.end(key, status=status, end_ms=records.now_ms())], self.owner)
        return len(orphans)

    def _apply(self, batch: Batch) -> None:
        from .mlflow_writer import MlflowWriter, is_transient, probe

        probe(self.uri)
        if self._writer is None:
            self._writer = MlflowWriter(self.uri, self.journal)
        for i in range(batch.done, len(batch.ops)):
            op = batch.ops[i]
            try:
                self._writer.apply(op, replay=batch.attempts > 1)
            except Exception as exc:
                if is_transient(exc):
                    raise
                self.journal.reject(self.uri, op, one_line(exc))
                log.error("MLflow rejected a %s record: %s", op["op"], one_line(exc))
            self.journal.progress(batch, i + 1)


class ProcessDelivery(Delivery):
    """Delivery from a separate process: what a kernel (and a sweep) uses.

    Importing mlflow in a thread of the user's kernel puts half-imported modules (pandas,
    polars, ...) in ``sys.modules`` while the user's code runs, and libraries that probe
    ``sys.modules`` (scikit-learn does) then fail. So the kernel only writes the journal;
    a small process (``python -m mlops_magics.journal.deliverd``) holds the URI's lease and
    delivers, and goes on after the kernel exits until the journal is empty. With ``hold``
    it keeps the lease while this process lives, even when idle (a sweep's kernels then
    never start their own); ``warm`` starts it before the first record.
    """

    def __init__(self, tracking_uri: str, journal: Journal, owner: str | None = None, *,
                 hold: bool = False) -> None:
        super().__init__(tracking_uri, journal, owner, hold=hold)
        self._process = None

    def start(self) -> None:
        import os
        import subprocess
        import sys

        with self._cond:
            if self._stopping or (self._process is not None and self._process.poll() is None):
                return
            if self.journal.lease_holder(self.uri) is not None:
                return  # another live process (a sweep's parent, a delivery process) delivers this URI
            from .deliverd import HOLD_ENV, URI_ENV

            env = {**os.environ, URI_ENV: self.uri}
            if self.hold:
                env[HOLD_ENV] = "1"
            log_path = self.journal.path.with_name("deliver.log")
            fd = os.open(log_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlops_magics.journal.deliverd", str(self.journal.path), str(os.getpid())],
                env=env, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True)
            os.close(fd)

    def flush(self, timeout: float = 30.0, everyone: bool = False, outage_grace: float | None = None) -> int:
        deadline = time.monotonic() + max(0.0, timeout)
        outage = _Outage(outage_grace)
        self.journal.wake(self.uri)
        checked = 0.0
        while True:
            if time.monotonic() - checked > 1.0:  # (re)start delivery if nobody delivers
                self.start()
                checked = time.monotonic()
            left = self.pending(everyone)
            if left == 0 or time.monotonic() >= deadline:
                return left
            if outage.grace is not None and outage.long(self.last_error()):
                return left
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` for own records; the delivery process finishes the rest."""
        if self.last_error():
            timeout = min(timeout, 1.0)
        left = self.flush(timeout) if self._process is not None else self.pending(everyone=False)
        with self._cond:
            self._stopping = True
        return left
