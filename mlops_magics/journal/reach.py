"""Is the tracking server there? A quick look started when the extension loads.

The delivery process learns that a server is down only after loading MLflow (seconds), so
the first tracked cell's summary would not say so. ``ServerProbe`` opens one TCP connection
to an ``http(s)://`` tracking URI in a thread of its own, touching nothing process-wide,
and the summary reads its answer without waiting. It is believed for a minute: after that,
the delivery process's own attempts (the journal's last error) say how things are.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

TRUSTED_S = 60.0
_TIMEOUT_S = 2.0


class ServerProbe:
    """One look at a tracking server; ``error(uri)`` is why it did not answer, if it did not."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._error: str | None = None
        self._done_at: float | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, uri: str) -> ServerProbe:
        probe = cls(uri)
        if uri.startswith(("http://", "https://")):
            probe._thread = threading.Thread(target=probe._look, name="mlops-magics-probe", daemon=True)
            probe._thread.start()
        return probe

    def _look(self) -> None:
        from ..locations import display_uri

        try:
            parts = urlsplit(self.uri)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            with socket.create_connection((parts.hostname or "", port), timeout=_TIMEOUT_S):
                pass
        except ConnectionRefusedError:
            self._error = f"tracking server {display_uri(self.uri)} not reachable (connection refused)"
        except socket.gaierror:
            self._error = f"tracking server {display_uri(self.uri)} not reachable (unknown host)"
        except (TimeoutError, socket.timeout):
            self._error = f"tracking server {display_uri(self.uri)} not reachable (no answer in {_TIMEOUT_S:g} s)"
        except (OSError, ValueError) as exc:
            self._error = f"tracking server {display_uri(self.uri)} not reachable ({type(exc).__name__})"
        self._done_at = time.monotonic()

    def error(self, uri: str) -> str | None:
        """Why ``uri`` did not answer the look, if it is the URI looked at and the answer is fresh;
        None while the look is still on (never waits)."""
        if uri != self.uri or self._done_at is None or time.monotonic() - self._done_at > TRUSTED_S:
            return None
        return self._error
