"""Delivery from the journal to MLflow, in a background thread that never blocks a cell.

``Delivery.submit`` commits records to the journal and returns; the worker thread,
in the journal's one delivery process (``deliverd``), applies pending batches in order
with ``log_batch``. A kernel uses ``ProcessDelivery``: it writes the journal and makes
sure that process runs.
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
from ..locations import display_uri
from ..journal import records
from .store import Batch, Journal, new_owner

log = logging.getLogger("mlops_magics")

_BACKOFF_START, _BACKOFF_MAX, _IDLE_POLL = 0.25, 30.0, 1.0
# At the end of a job, MLflow failing every attempt for this long ends the wait for it: the
# records stay in the journal for later.
OUTAGE_GRACE = 5.0
_WAKE_POLL = 0.25  # how often an idle delivery looks for a flush asked by another process
_REWAKE_S = 1.0  # a waiting flush asks for a new attempt this often: delivery resumes within 2 s


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
    """Delivers the journal's batches for one MLflow tracking URI, from a thread of this process.

    The delivery process runs one per URI (``locked``: it holds the journal's delivery lock).
    Used on its own, a ``Delivery`` takes that lock while it has something to deliver, so it
    never delivers alongside the delivery process.
    """

    def __init__(self, tracking_uri: str, journal: Journal, owner: str | None = None, *,
                 locked: bool = False) -> None:
        from .deliverer import JournalLock

        self.uri, self.journal, self.locked = tracking_uri, journal, locked
        self.owner = owner or new_owner()
        self._lock = None if locked else JournalLock(journal.path)
        self._warm = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._writer = None
        self._prepared = False
        self._new_uri: str | None = None
        self._stopping = self._wake = self._woken = False
        self._last_error: str | None = None
        self._seen_wake = time.time()

    # -- producer side -------------------------------------------------------------
    def submit(self, ops: list[records.Op]) -> None:
        """Commit ``ops`` to the journal (durable on return); delivery follows in the background.

        Never raises on a storage fault: the journal then keeps the records in memory and
        says why once (``journal.take_notice``); a cell or a training loop goes on.
        """
        if not ops:
            return
        self.journal.append(self.uri, ops, self.owner)
        try:
            self.start()
        except Exception as exc:  # e.g. no room for the delivery process's log: the next submit tries again
            log.info("mlops-magics could not start delivery for %s: %s", display_uri(self.uri), one_line(exc))

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

    def use_uri(self, uri: str) -> None:
        """Deliver from now on with ``uri`` (the same store, with credentials handed over later)."""
        with self._cond:
            self._new_uri, self._wake = uri, True
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
        return DeliveryStatus(uri=self.uri, pending=pending, rejected=self.journal.rejected_count(self.uri),
                              last_error=self.last_error() if pending else None, rejected_errors=rejected)

    def close(self, timeout: float = 10.0) -> int:
        """Flush, then stop the worker (handing the delivery lock back). Returns own records left.

        During an outage it waits at most a second: the records are safe in the journal
        and the next session, or ``mlops-magics sync``, delivers them.
        """
        if self._last_error:
            timeout = min(timeout, 1.0)
        left = self.flush(timeout) if self._thread is not None and timeout > 0 else self.pending(everyone=False)
        self.stop()
        return left

    def stop(self, wait: float = 5.0) -> None:
        """Stop the worker without waiting for records."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=wait)
        if self._lock is not None:
            self._lock.release()

    # -- worker side ---------------------------------------------------------------
    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless woken by flush/stop (here, or another process through
        the journal); False when stopping."""
        deadline = time.monotonic() + seconds
        looked = time.monotonic()
        with self._cond:
            while not self._wake and not self._stopping and time.monotonic() < deadline:
                self._cond.wait(min(_WAKE_POLL, max(0.0, deadline - time.monotonic())))
                if time.monotonic() - looked < _WAKE_POLL:
                    continue
                looked = time.monotonic()
                try:
                    woken = self.journal.woken_at(self.uri)
                except Exception:  # the journal is busy: look again next time
                    woken = 0.0
                if woken > self._seen_wake:
                    self._seen_wake, self._wake = woken, True
            self._woken, self._wake = self._wake, False
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
                self._ready()
                self._apply(batch)
            except Exception as exc:  # an outage: keep the batch, retry later
                error = one_line(exc)
                self.journal.failed(batch, error)
                with self._cond:
                    self._last_error = error
                # Not a warning: printed from this thread it would land in whatever cell runs now.
                log.info("MLflow at %s unreachable (%s); retrying in %.1fs", display_uri(self.uri), error, backoff)
                if not self._sleep(backoff):
                    return
                # Woken by a flush or sync: the user is waiting, the server may be back.
                backoff = _BACKOFF_START if self._woken else min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_START
            self.journal.delivered(batch)
            with self._cond:
                self._last_error = None
                self._cond.notify_all()

    def _ready(self) -> None:
        """Before a batch: take up a URI handed over meanwhile; the store prepared, the client loaded."""
        with self._cond:
            if self._new_uri is not None:
                self.uri, self._new_uri, self._writer = self._new_uri, None, None
        if self._writer is None:
            from .mlflow_writer import MlflowWriter
            from .prepare import prepare

            if not self._prepared:
                prepare(self.uri)  # a fresh SQLite store: created and migrated under its lock
                self._prepared = True
            self._writer = MlflowWriter(self.uri, self.journal)

    def _load_writer(self) -> None:
        try:
            self._ready()
        except Exception:  # the first batch tries again and reports what is wrong
            log.debug("could not load the MLflow client ahead", exc_info=True)

    def _next(self) -> Batch | None:
        if self._lock is not None and not self._lock.acquire():
            return None  # the delivery process delivers this journal now
        if self.journal.pending(self.uri) == 0 and self.end_orphans() == 0:
            if self._lock is not None:
                self._lock.release()  # idle: the delivery process may take over
            return None
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
                aside = self._writer.apply(op, replay=batch.attempts > 1)
            except Exception as exc:
                if is_transient(exc):
                    raise  # an outage (or an answer that is not MLflow's): the batch waits
                aside = [(op, one_line(exc))]
            for part, reason in aside:  # kept whole: `mlops-magics sync --retry-rejected` resends it
                self.journal.reject(self.uri, part, reason)
                log.error("MLflow refused a %s record, set aside: %s", part["op"], reason)
            self.journal.progress(batch, i + 1)


class ProcessDelivery(Delivery):
    """Delivery by the journal's delivery process: what a kernel, a job and a sweep use.

    Importing mlflow in a thread of the user's kernel puts half-imported modules (pandas,
    polars, ...) in ``sys.modules`` while the user's code runs, and libraries that probe
    ``sys.modules`` (scikit-learn does) then fail. So this process only writes the journal
    and makes sure the one delivery process of the journal runs (``deliverer.ensure``),
    handing it the full URI when it carries credentials. Until ``close`` it marks itself a
    client, so the delivery process stays while it may record more.
    """

    def __init__(self, tracking_uri: str, journal: Journal, owner: str | None = None) -> None:
        from .deliverer import ClientMark

        super().__init__(tracking_uri, journal, owner, locked=True)
        self._mark = ClientMark(journal.path)
        self._told: object = None  # the delivery process last handed our URI

    def submit(self, ops: list[records.Op]) -> None:
        if ops and not self._stopping:
            try:
                self._mark.hold()  # before the records: a delivery process exiting now sees them
            except OSError as exc:  # a read-only or full home: the journal holds the records in memory
                log.debug("could not mark this process as a client: %s", exc)
        super().submit(ops)

    def start(self) -> None:
        """Make sure the journal's delivery process runs, and that it can reach our URI."""
        from . import deliverer

        with self._cond:
            if self._stopping:
                return
            path = self.journal.path
            try:
                self._mark.hold()
                if deliverer.ensure(path, [self.uri]):
                    self._told = None  # its environment carries the URI
                    return
            except OSError as exc:  # a full or read-only home: records wait in the journal (or memory)
                log.debug("could not start the delivery process: %s", exc)
                return
            if deliverer.has_credentials(self.uri):
                holder = deliverer.who(path)
                if holder is not None and holder != self._told and deliverer.tell(path, [self.uri]):
                    self._told = holder

    def wake(self) -> None:
        """Ask the delivery process to try now, out of any back-off (restarting it if it died)."""
        self.journal.wake(self.uri)
        self.start()

    def flush(self, timeout: float = 30.0, everyone: bool = False, outage_grace: float | None = None) -> int:
        deadline = time.monotonic() + max(0.0, timeout)
        outage = _Outage(outage_grace)
        woken = 0.0
        while True:
            if time.monotonic() - woken >= _REWAKE_S:  # one attempt a second while the user waits
                self.wake()
                woken = time.monotonic()
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
        left = self.flush(timeout) if timeout > 0 and self.pending(everyone=False) else self.pending(everyone=False)
        self.stop()
        return left

    def stop(self, wait: float = 5.0) -> None:
        super().stop(wait)  # no thread of ours to join, no delivery lock to hand back
        self._mark.release()
