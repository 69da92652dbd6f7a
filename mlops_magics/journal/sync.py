"""``mlops-magics sync``: deliver what the journal holds, from any process.

After a kernel was killed, its records wait in the journal and its runs are still
open; sync delivers the records and ends those runs ``FAILED`` with
``mlops.failure=kernel_died``. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import os

from .. import locations
from .flusher import Delivery
from .store import Journal, journal_uri


def _with_credentials(stored: str) -> str:
    """The journal keeps URIs without credentials; take them back from the environment."""
    env = os.environ.get(locations.TRACKING_URI_ENV, "")
    return env if env and journal_uri(env) == stored else stored


def sync(*, tracking_uri: str | None = None, timeout: float = 60.0,
         journal_path: str | os.PathLike | None = None) -> dict[str, int]:
    """Deliver every pending record; return, per URI, how many are still pending.

    Parameters
    ----------
    tracking_uri
        Only this URI; by default every URI with records in the journal.
    timeout
        Seconds to wait in all.
    journal_path
        The journal file; default ``$MLOPS_MAGICS_HOME/journal.db`` (``.mlops_magics/``).
    """
    path = journal_path or locations.journal_path()
    if not os.path.exists(path):
        return {}
    journal = Journal(path)
    targets = ([(journal_uri(tracking_uri), tracking_uri)] if tracking_uri
               else [(u, _with_credentials(u)) for u in journal.uris()])
    left: dict[str, int] = {}
    try:
        for uri, real in targets:
            delivery = Delivery(real, journal)
            delivery.end_orphans()
            left[uri] = delivery.flush(timeout, everyone=True)
            delivery.close(timeout=0)
    finally:
        journal.close()
    return left
