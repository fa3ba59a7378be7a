"""Inbound mode: when a platform accepts a TAKE IT DOWN request, find its own uploads that are identical or
near-identical copies of the reported media, and tell it which to remove.

How the platform takes part: it registers the hash of every upload in its uploads bank (``takedown_uploads_bank``,
"uploads" by default) with ``POST /v1/banks/uploads/signals``, each signal's ``note`` holding its own upload
reference (an id or URL it can act on).  Accepting a request matches the request's hashes against that bank through
the match service's index — the same index and the same threshold (``pdq_threshold``, the vPDQ rule) as
``/v1/match`` — so "near-identical" means exactly what it means for every other match.  The matching uploads are
recorded on the request, counted in the answer and the requester's e-mail, and sent as ordinary ``match`` webhook
events (with a ``reason`` naming the request) to every client granted the uploads bank: the systems that
registered the uploads are the ones that remove them.  The Act asks for reasonable efforts to remove known
identical copies (§3(a)(3)(B)); this is that effort, made the moment the request is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from takeback.index import Query
from takeback.web.state import AppState
from takeback.web.webhooks import Target, match_event

#: At most this many matching uploads are recorded on one request (the webhooks carry all of them).
MAX_RECORDED = 10_000


@dataclass(frozen=True, slots=True)
class SweepResult:
    #: The uploads bank swept (None: the sweep is off or the request has no hashes).
    bank: str | None
    #: One entry per (reported hash, matching upload signal): upload_ref, signal_id, signal_type, distance, query.
    matches: list[dict[str, Any]] = field(default_factory=list)
    #: Why nothing was swept, when nothing was ("no uploads bank named 'uploads'").
    note: str = ""
    bank_id: int | None = None
    #: Per reported hash: (query, its match items as webhook events carry them).
    per_query: list[tuple[Query, list[dict[str, Any]]]] = field(default_factory=list)

    @property
    def uploads(self) -> int:
        return len({m["upload_ref"] for m in self.matches})


def sweep_uploads(state: AppState, signals: list[tuple[str, str]]) -> SweepResult:
    """Match the accepted request's hashes (canonical, from ``intake.check_signals``) against the uploads bank.
    Nothing is sent yet: ``notify`` fires the webhooks once the acceptance is committed."""
    name = state.settings.takedown_uploads_bank
    if not name or not signals:
        return SweepResult(None, note="no uploads bank configured" if not name else "the request has no hashes")
    bank = state.store.bank_by_name(name)
    if bank is None:
        return SweepResult(None, note=f"no uploads bank named {name!r}: the platform registers none")
    queries = [Query(signal_type, value, None) for signal_type, value in signals]
    results = state.matcher.match(queries, frozenset({bank.id}), canonical=True)
    notes = state.store.signal_notes([m.signal_id for found in results for m in found])
    matches: list[dict[str, Any]] = []
    per_query: list[tuple[Query, list[dict[str, Any]]]] = []
    for index, (query, found) in enumerate(zip(queries, results, strict=True)):
        items = []
        for m in found:
            if m.signal_id not in notes:
                continue  # removed since the index saw it
            item: dict[str, Any] = {"bank": bank.name, "signal_id": m.signal_id, "signal_type": query.signal_type,
                                    "distance": m.distance, "upload_ref": notes[m.signal_id] or f"signal:{m.signal_id}"}
            if m.query_match_pct is not None:
                item["query_match_pct"] = m.query_match_pct
            if m.compared_match_pct is not None:
                item["compared_match_pct"] = m.compared_match_pct
            items.append(item)
            matches.append({**item, "query": index})
        per_query.append((query, items))
    return SweepResult(bank.name, matches[:MAX_RECORDED], bank_id=bank.id, per_query=per_query)


def notify(state: AppState, result: SweepResult, *, reference: str, due_at: datetime) -> int:
    """Send a ``match`` event per reported hash with copies to every webhook of the clients granted the uploads
    bank; returns how many events were submitted (delivery is the dispatcher's, with its retries)."""
    if result.bank_id is None or not result.matches:
        return 0
    by_client: dict[str, list[Target]] = {}
    for client, target in state.store.bank_webhooks(result.bank_id):
        by_client.setdefault(client, []).append(target)
    reason = {"type": "takeitdown_request", "reference": reference, "remove_by": due_at.isoformat()}
    events = 0
    for query, items in result.per_query:
        if not items:
            continue
        for client, targets in by_client.items():
            event_id, body = match_event(client, {"signal_type": query.signal_type, "value": query.value}, items,
                                         reason=reason)
            state.dispatcher.submit(targets, event_id, body)
            events += len(targets)
    return events
