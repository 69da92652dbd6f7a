"""The line forms of ``%track``: each takes the magics object and its words, returns a display."""

from __future__ import annotations

import argparse
import time

from IPython.core.error import UsageError

from .. import locations
from ..display import Message, Table


def _argv(prog: str, words: list[str], *specs) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, add_help=False, exit_on_error=False)
    for flags, kwargs in specs:
        parser.add_argument(*flags, **kwargs)
    try:
        args, extra = parser.parse_known_args(words)
    except (argparse.ArgumentError, ValueError) as exc:
        raise UsageError(f"{prog}: {exc}") from None
    if extra:
        raise UsageError(f"{prog}: unexpected {' '.join(extra)}")
    return args


def status(magics, words: list[str]) -> Table:
    """Where records go and how many wait."""
    _argv("%track status", words)
    session = magics.session
    uri = locations.tracking_uri(magics.tracking_uri or None)
    rows = [["tracking URI", locations.display_uri(uri)],
            ["experiment", locations.experiment_name(magics.experiment or None)],
            ["tracked cells", len(session.history)]]
    for st in session.statuses():
        where = locations.display_uri(st.uri)
        line = f"{st.pending} pending"
        if st.rejected:
            line += f", {st.rejected} rejected ({st.rejected_errors[-1]})"
        if st.last_error:
            line += f"; last error: {st.last_error}"
        rows.append([f"records for {where}", line])
    rows += _delivery_rows(session.journal(), uri)
    return Table(["", ""], rows, caption="mlops-magics status")


def _delivery_rows(journal, uri: str) -> list[list[str]]:
    """Who delivers (a dead delivery process is replaced here) and what is wrong with the store."""
    from ..journal.deliverer import describe
    from ..journal.prepare import diagnose

    rows = [["delivery", describe(journal.path, [uri], pending=journal.pending())]]
    problem = diagnose(uri)
    return rows + [["store", problem]] if problem else rows


def flush(magics, words: list[str]) -> Message:
    """Deliver pending records now."""
    from ..journal.flusher import OUTAGE_GRACE

    args = _argv("%track flush", words, (("--timeout",), {"type": float, "default": None}))
    # Without --timeout, an MLflow that fails every attempt for 5 s is not waited for longer:
    # in a notebook job it would hold the job for the whole default wait.
    timeout = magics.flush_timeout if args.timeout is None else args.timeout
    started = time.monotonic()
    left = magics.session.flush(timeout, outage_grace=OUTAGE_GRACE if args.timeout is None else None)
    waited = time.monotonic() - started  # less than the timeout when MLflow kept failing
    statuses = magics.session.statuses()
    aside = magics.session.journal().rejected_count()  # refused by MLflow: never "all are in MLflow"
    aside_text = f"{aside} set aside: see mlops-magics journal"
    if left == 0:
        return Message(f"nothing pending; {aside_text}", level="warning") if aside else \
            Message("all records are in MLflow")
    errors = [s.last_error for s in statuses if s.last_error]
    tail = f"; last error: {errors[-1]}" if errors else ""
    tail += f"; {aside_text}" if aside else ""
    return Message(f"{left} records still pending after {waited:.1f}s{tail}", level="warning")


def runs(magics, words: list[str]) -> Table | Message:
    """The most recent tracked runs of this session, as MLflow has them."""
    args = _argv("%track runs", words, (("-n",), {"type": int, "default": 10}))
    if args.n < 1:
        raise UsageError("%track runs: -n must be at least 1")
    session = magics.session
    from ..journal.flusher import OUTAGE_GRACE

    # Run ids exist once delivered: wait for that (a first delivery starts the delivery process),
    # but not through an outage, where the rows say "(pending)".
    session.flush(magics.flush_timeout, outage_grace=OUTAGE_GRACE)
    recent = session.history[-args.n:][::-1]
    if not recent:
        return Message("no tracked runs yet in this session: put %%track on a cell")
    rows = []
    for r in recent:
        run_id = session.delivery(r.uri).run_id(r.key) or "(pending)"
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in list(r.metrics.items())[:4])
        rows.append([r.name, r.status, run_id, r.experiment, metrics])
    return Table(["run", "status", "run id", "experiment", "metrics"], rows,
                 caption=f"last {len(rows)} tracked runs")
