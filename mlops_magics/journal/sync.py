"""``mlops-magics sync``: deliver what the journal holds, from any process.

After a kernel was killed, its records wait in the journal and its runs are still
open; sync delivers the records and ends those runs ``FAILED`` with
``mlops.failure=kernel_died``. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import os
import time

from .. import locations
from .delivery import ProcessDelivery
from ..errors import MlopsError
from .faults import cause, is_storage_error
from .store import Journal, journal_uri, new_owner


def _with_credentials(stored: str) -> str:
    """The journal keeps URIs without credentials; take them back from the environment."""
    env = os.environ.get(locations.TRACKING_URI_ENV, "")
    return env if env and journal_uri(env) == stored else stored


def sync(*, tracking_uri: str | None = None, timeout: float = 60.0,
         journal_path: str | os.PathLike | None = None, retry_rejected: bool = False,
         tell=None) -> dict[str, int]:
    """Deliver every pending record; return, per URI, how many are still pending.

    Parameters
    ----------
    tracking_uri
        Only this URI; by default every URI with records in the journal.
    timeout
        Seconds to wait in all.
    journal_path
        The journal file; default ``$MLOPS_MAGICS_HOME/journal.db`` (``.mlops_magics/``).
    retry_rejected
        First put the records MLflow refused (set aside) back in line.
    tell
        Called with a one-line message about the journal itself (a corrupt file set aside).

    Raises
    ------
    JournalError
        The journal cannot be read (one line: the file and the cause).
    """
    path = journal_path or locations.journal_path()
    if not os.path.exists(path):
        return {}
    journal = Journal(path)
    notice = journal.take_notice()
    if notice and tell is not None:
        tell(notice)
    try:
        if retry_rejected:
            journal.retry_rejected(new_owner(), tracking_uri)
        targets = ([(journal_uri(tracking_uri), tracking_uri)] if tracking_uri
                   else [(u, _with_credentials(u)) for u in journal.uris()])
        # The journal's delivery process delivers (started here if nobody does); this process
        # waits, waking it out of any back-off every second.
        deliveries = [ProcessDelivery(real, journal) for _, real in targets]
        deadline = time.monotonic() + timeout
        left: dict[str, int] = {}
        for (uri, _), delivery in zip(targets, deliveries):
            delivery.end_orphans()
            delivery.start()
        for (uri, _), delivery in zip(targets, deliveries):
            left[uri] = delivery.flush(max(0.0, deadline - time.monotonic()), everyone=True)
        for delivery in deliveries:
            delivery.close(timeout=0)
        for uri, _ in targets:
            aside = journal.rejected_count(uri)
            if aside and tell is not None:
                tell(f"{locations.display_uri(uri)}: {aside} records set aside (MLflow refused them as invalid): "
                     "see `mlops-magics journal`, resend with `mlops-magics sync --retry-rejected`")
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        raise JournalError(f"cannot use the journal {path}: {cause(exc, path)}") from None
    finally:
        journal.close()
    return left


class JournalError(MlopsError):
    """The journal file cannot be used (read-only, locked, unreadable)."""
