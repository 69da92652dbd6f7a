"""Records set aside: what MLflow refused as invalid, kept whole in the journal's ``rejected`` table.

Nothing is discarded without the user asking: ``mlops-magics journal`` lists what waits
and what was set aside, and why; ``sync --retry-rejected`` puts set-aside records back
in line; ``journal drop --uri URI`` discards what was meant for a URI, and says how much.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..locations import uri_without_credentials
from ..sqlite_files import write_transaction


def describe(op_text: str) -> str:
    """A set-aside record in a few words: ``log of metric ../x``, ``start of run 'cell 3'``."""
    try:
        op = json.loads(op_text)
    except ValueError:
        return op_text  # from a version that kept only the kind of record
    kind = op.get("op", "?")
    if kind == "log":
        parts = [f"{what} {', '.join(list(op.get(field) or ())[:3])}"
                 for what, field in (("param", "params"), ("tag", "tags")) if op.get(field)]
        names = sorted({m[0] for m in op.get("metrics") or ()})
        if names:
            parts.append(f"metric {', '.join(names[:3])}")
        return "log of " + ("; ".join(parts) or "nothing")
    if kind == "start":
        return f"start of run {op.get('name')!r}"
    if kind == "artifact":
        return f"artifact {op.get('path')}"
    return kind


@dataclass
class JournalRow:
    """One line of ``mlops-magics journal``."""

    uri: str
    state: str  # "pending" or "set aside"
    records: int
    what: str
    reason: str


class SetAside:
    """The ``rejected`` table's side of ``Journal`` (mixed into it)."""

    def rejected_count(self, uri: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM rejected", ()
        if uri is not None:
            sql, args = sql + " WHERE uri = ?", (uri_without_credentials(uri),)
        return self._read(lambda: int(self._conn().execute(sql, args).fetchone()[0]), 0)

    def contents(self) -> list[JournalRow]:
        """What the journal holds, by URI: pending records with the last delivery error, and
        set-aside records grouped by reason."""
        db = self._conn()
        rows = []
        pending = db.execute("SELECT uri, SUM(n_ops - done), COUNT(*) FROM batches GROUP BY uri ORDER BY uri")
        for uri, count, batches in pending.fetchall():
            error = db.execute("SELECT last_error FROM batches WHERE uri = ? AND last_error IS NOT NULL "
                               "ORDER BY id LIMIT 1", (uri,)).fetchone()
            reason = error[0] if error else "not delivered yet (no attempt failed)"
            rows.append(JournalRow(uri, "pending", int(count), f"{batches} batches", reason))
        groups: dict[tuple[str, str], list[str]] = {}
        for uri, op, error in db.execute("SELECT uri, op, error FROM rejected ORDER BY uri, id"):
            groups.setdefault((uri, error or ""), []).append(describe(op))
        for (uri, error), whats in groups.items():
            what = "; ".join(dict.fromkeys(whats))
            rows.append(JournalRow(uri, "set aside", len(whats), what[:120], error))
        return sorted(rows, key=lambda r: (r.uri, r.state != "pending"))

    def retry_rejected(self, owner: str, uri: str | None = None) -> int:
        """Put set-aside records back in line (after what waits already), oldest first;
        returns how many. Records from a version that did not keep their content stay."""
        with write_transaction(self._conn()) as db:
            sql, args = "SELECT id, uri, op FROM rejected", ()
            if uri is not None:
                sql, args = sql + " WHERE uri = ?", (uri_without_credentials(uri),)
            by_uri: dict[str, list[tuple[int, dict]]] = {}
            for rid, u, text in db.execute(sql + " ORDER BY id", args).fetchall():
                try:
                    by_uri.setdefault(u, []).append((rid, json.loads(text)))
                except ValueError:
                    continue
            moved = 0
            for u, items in by_uri.items():
                ops = [op for _, op in items]
                db.execute("INSERT INTO batches (uri, ops, n_ops, owner, created) VALUES (?, ?, ?, ?, ?)",
                           (u, json.dumps(ops, separators=(",", ":")), len(ops), owner, time.time()))
                db.executemany("DELETE FROM rejected WHERE id = ?", [(rid,) for rid, _ in items])
                moved += len(ops)
        return moved

    def drop(self, uri: str) -> tuple[int, int]:
        """Discard everything meant for ``uri``: (pending records, set-aside records) dropped."""
        uri = uri_without_credentials(uri)
        with write_transaction(self._conn()) as db:
            pending = int(db.execute("SELECT COALESCE(SUM(n_ops - done), 0) FROM batches WHERE uri = ?",
                                     (uri,)).fetchone()[0])
            rejected = int(db.execute("SELECT COUNT(*) FROM rejected WHERE uri = ?", (uri,)).fetchone()[0])
            for table in ("batches", "rejected", "open_runs", "leases", "wakeups"):
                db.execute(f"DELETE FROM {table} WHERE uri = ?", (uri,))
        return pending, rejected

    def known_uris(self) -> list[str]:
        """Every URI with pending or set-aside records."""
        rows = self._conn().execute("SELECT uri FROM batches UNION SELECT uri FROM rejected ORDER BY 1")
        return [r[0] for r in rows]
