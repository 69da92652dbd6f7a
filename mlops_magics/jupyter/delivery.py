"""While the server runs: the journal's delivery process kept alive, and what ``/status`` says.

The rule is the journal's own (``journal.deliverer``): one delivery process per journal,
found by its lock and started by whoever needs it. The server holds a client mark on the
journal for as long as it runs (its kernels and jobs may record at any moment, so the
delivery process does not give up on records that wait for a server that is down), and
every few seconds starts a delivery process when records wait and nobody delivers.
"""

from __future__ import annotations

import logging

from ..journal import deliverer
from .places import Places

log = logging.getLogger("mlops_magics")


class DeliveryKeeper:
    def __init__(self, places: Places) -> None:
        self.places = places
        self.mark = deliverer.ClientMark(places.journal)
        self._journal = None

    def start(self) -> None:
        self.mark.hold()

    def stop(self) -> None:
        self.mark.release()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def journal(self):
        """The journal, opened once it exists (None before anything was recorded here)."""
        if self._journal is None and self.places.journal.exists():
            from ..journal.store import Journal

            self._journal = Journal(self.places.journal)
        return self._journal

    def tick(self) -> bool:
        """Start a delivery process when records wait and nobody delivers; True when started."""
        journal = self.journal()
        if journal is None or not journal.pending():
            return False
        started = deliverer.ensure(self.places.journal, [self.places.uri])
        if started:
            log.info("mlops_magics: records were waiting in %s; started its delivery process", self.places.journal)
        return started

    def status(self) -> dict:
        """``GET /status``."""
        from ..locations import display_uri

        journal = self.journal()
        pending = journal.pending() if journal is not None else 0
        set_aside = journal.rejected_count() if journal is not None else 0
        found = deliverer.who(self.places.journal) if self.places.journal.exists() else None
        state = "none" if found is None else ("starting" if not found.pid else "delivering")
        reachable = _reachable(self.places.uri)
        error = None
        if journal is not None and pending:
            error = next((journal.last_error(u) for u in journal.uris() if journal.pending(u)), None)
        return {"journal": str(self.places.home), "tracking_uri": display_uri(self.places.uri), "pending": pending,
                "set_aside": set_aside, "deliverer": {"state": state, "pid": found.pid if found and found.pid else None},
                "server_reachable": reachable, "summary": _summary(pending, set_aside, state, reachable, error)}


def _reachable(uri: str) -> bool | None:
    """Whether a tracking server answers a TCP connection (None: the store is not a server)."""
    if not uri.startswith(("http://", "https://")):
        return None
    from ..journal.reach import ServerProbe

    probe = ServerProbe(uri)
    probe._look()  # the probe's one look, made here in the request's worker thread
    return probe.error(uri) is None


def _summary(pending: int, set_aside: int, state: str, reachable: bool | None, error: str | None) -> str:
    if pending:
        why = ("server not reachable" if reachable is False else
               f"last error: {error}" if error else
               "delivering" if state == "delivering" else
               "a delivery process is starting" if state == "starting" else "nobody delivers yet")
        text = f"{pending} record{'s' if pending != 1 else ''} waiting: {why}"
    else:
        text = "all records delivered"
    if set_aside:
        text += f"; {set_aside} set aside (see `mlops-magics journal`)"
    return text
