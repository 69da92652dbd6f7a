"""The seam between the tracker and MLflow: records in, delivered in the background.

``Delivery.submit`` returns at once; one worker thread per tracking URI imports
mlflow on first use and applies batches in order. An outage (connection refused,
database locked) keeps the batch and retries with backoff; a record MLflow
rejects outright is logged and skipped so it cannot block the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .records import Op

log = logging.getLogger("mlops_magics")

_BACKOFF_START, _BACKOFF_MAX = 0.25, 30.0


@dataclass
class DeliveryStatus:
    uri: str
    pending: int  # records not yet in MLflow
    delivered: int
    rejected: int
    last_error: str | None
    retry_in: float | None = None
    rejected_errors: list[str] = field(default_factory=list)


class Delivery:
    """Delivers batches of run records to one MLflow tracking URI."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri
        self._queue: deque[list[Op]] = deque()
        self._cond = threading.Condition()
        self._writer = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._delivered = self._rejected = 0
        self._last_error: str | None = None
        self._rejections: list[str] = []
        self._next_try = 0.0
        self._wake = False
        self._callbacks: list = []

    # -- producer side -------------------------------------------------------------
    def submit(self, ops: list[Op]) -> None:
        """Queue ``ops`` (applied in order, after everything queued before)."""
        if not ops:
            return
        with self._cond:
            self._queue.append(list(ops))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlops-magics-delivery", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return sum(len(b) for b in self._queue)

    def run_id(self, key: str) -> str | None:
        """MLflow's run id for a client key, once delivered."""
        return self._writer.run_ids.get(key) if self._writer is not None else None

    def on_delivered(self, callback) -> None:
        """Call ``callback(ops)`` in the worker thread after each delivered batch."""
        self._callbacks.append(callback)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait up to ``timeout`` seconds for the queue to drain; return what is still pending."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._wake = True  # skip any backoff: the user asked for delivery now
            self._cond.notify_all()
            while self._queue and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            return sum(len(b) for b in self._queue)

    def status(self) -> DeliveryStatus:
        with self._cond:
            retry = max(0.0, self._next_try - time.monotonic()) if self._queue and self._last_error else None
            return DeliveryStatus(
                uri=self.uri, pending=sum(len(b) for b in self._queue), delivered=self._delivered,
                rejected=self._rejected, last_error=self._last_error, retry_in=retry,
                rejected_errors=list(self._rejections[-5:]),
            )

    def close(self, timeout: float = 10.0) -> int:
        """Flush, then stop the worker. Returns records left undelivered."""
        left = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        return left

    # -- worker side ---------------------------------------------------------------
    def _run(self) -> None:
        backoff = _BACKOFF_START
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or
                                              (time.monotonic() < self._next_try and not self._wake)):
                    wait = None if not self._queue else max(0.01, self._next_try - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping:
                    return
                self._wake = False
                batch = self._queue[0]
            try:
                done = self._apply(batch)
            except Exception as exc:  # an outage: keep the batch, retry later
                from .mlflow_writer import describe

                with self._cond:
                    self._last_error = describe(exc)
                    self._next_try = time.monotonic() + backoff
                    del batch[: getattr(exc, "_mm_done", 0)]
                # Not a warning: printed from this thread it would land in whatever cell runs now.
                log.info("MLflow at %s unreachable (%s); retrying in %.1fs", self.uri, self._last_error, backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_START
            with self._cond:
                self._queue.popleft()
                self._delivered += done
                self._last_error = None
                self._cond.notify_all()
            for cb in list(self._callbacks):
                try:
                    cb(batch)
                except Exception:  # a display callback must never stop delivery
                    log.debug("delivery callback failed", exc_info=True)

    def _apply(self, batch: list[Op]) -> int:
        from .mlflow_writer import MlflowWriter, describe, is_transient

        if self._writer is None:
            self._writer = MlflowWriter(self.uri)  # a failure here is retried like an outage
        done = 0
        for i, op in enumerate(batch):
            try:
                self._writer.apply(op)
            except Exception as exc:
                if is_transient(exc):
                    exc._mm_done = i  # type: ignore[attr-defined]
                    raise
                with self._cond:
                    self._rejected += 1
                    self._rejections.append(f"{op['op']}: {describe(exc)}")
                log.error("MLflow rejected a %s record: %s", op["op"], describe(exc))
                continue
            done += 1
        return done
