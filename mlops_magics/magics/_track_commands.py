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
    store = locations.store_choice(magics.tracking_uri or None, given_by="%config TrackMagics.tracking_uri")
    uri = store.value
    journal = session.journal().path
    rows = [["tracking URI", locations.display_uri(uri)],
            ["  chosen by", store.reason],
            ["journal", str(journal)],
            ["  chosen by", _journal_reason(session, journal)],
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


def _journal_reason(session, journal) -> str:
    """Why the session's journal is where it is (opened once: a later chdir does not move it)."""
    if session.journal_path:
        return "given to this session"
    choice = locations.home_choice()
    if str(journal) == str(locations.journal_path()):
        return choice.reason
    return f"chosen when the session opened it (now it would be {choice.value}: {choice.reason})"


def _delivery_rows(journal, uri: str) -> list[list[str]]:
    """Who delivers (a dead delivery process is replaced here) and what is wrong with the store."""
    from ..journal.deliverer import describe
    from ..journal.prepare import diagnose

    rows = [["delivery", describe(journal.path, [uri], pending=journal.pending())]]
    problem = diagnose(uri)
    return rows + [["store", problem]] if problem else rows


def flush(magics, words: list[str]) -> Message:
    """Deliver pending records now."""
    from ..journal.delivery import OUTAGE_GRACE

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
    from ..journal.delivery import OUTAGE_GRACE

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
        rows.append([r.name, r.status, run_id, r.experiment, changed_params(r, _before(session.history, r)), metrics])
    return Table(["run", "status", "run id", "experiment", "changed", "metrics"], rows,
                 caption=f"last {len(rows)} tracked runs; changed: params since the run before of that cell")


def _before(history: list, run):
    """The run ``run`` is compared with: the same cell's last run (``CellRun.previous``: its
    frontend cell id, ``--name`` or saved cell), else the last earlier run of the same name."""
    if run.previous is not None:
        return run.previous
    at = next((i for i, old in enumerate(history) if old is run), 0)  # by identity: CellRun compares by value
    return next((old for old in reversed(history[:at]) if old.name == run.name), None)


def changed_params(run, prev, most: int = 4, width: int = 24) -> str:
    """``n_estimators 100->200, depth (none)->5``: the params of ``run`` that differ from ``prev``'s."""
    if prev is None:
        return "(first run)"
    keys = [k for k in sorted(set(prev.params) | set(run.params)) if prev.params.get(k) != run.params.get(k)]
    if not keys:
        return "no change"

    def shown(value: str | None) -> str:
        if value is None:
            return "(none)"
        return value if len(value) <= width else value[:width - 1] + "…"

    parts = [f"{k} {shown(prev.params.get(k))}->{shown(run.params.get(k))}" for k in keys[:most]]
    return ", ".join(parts) + (f", +{len(keys) - most} more" if len(keys) > most else "")
