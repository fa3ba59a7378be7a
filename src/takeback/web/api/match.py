"""Matching: one signal or a batch, against the banks this key may use (or a named subset of them).

The hot path: authentication and grants come from the in-memory cache, the index answers, and webhook events are
only handed to the background dispatcher — the response never waits for a delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import pydantic_core
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from takeback.index import Match, Query
from takeback.signals.types import SignalType
from takeback.signals.validate import InvalidSignal, all_canonical, canonical_value
from takeback.web.auth import app_state, require, usable_bank
from takeback.web.errors import ApiError
from takeback.web.schemas import MatchBatchRequest, MatchBatchResult, MatchRequest, MatchResult, QueryIn
from takeback.web.state import AppState, Principal
from takeback.web.webhooks import match_event

router = APIRouter(prefix="/v1/match", tags=["match"])
#: Batches larger than this are matched in a worker thread so the event loop keeps serving other requests.
INLINE_BATCH = 32


def _to_json(content: Any) -> bytes:
    """The same compact UTF-8 JSON as JSONResponse, written by pydantic-core's serialiser: a 1,000-query answer
    costs about a quarter of the stdlib encoder's time (measured 0.25 vs 1.1 ms)."""
    return pydantic_core.to_json(content)


#: One query as the answer functions take it: (signal type, value, threshold or None), as the body gave them.
QueryTuple = tuple[str, str, int | None]


def query_tuple(q: QueryIn) -> QueryTuple:
    return (q.signal_type, q.value, q.threshold)


def _query(state: AppState, q: QueryTuple, index: int | None = None) -> Query:
    where = "" if index is None else f"queries[{index}]: "
    detail = None if index is None else {"index": index}
    signal_type, raw, threshold = q
    try:
        stype, value = canonical_value(signal_type, raw)
    except InvalidSignal as exc:
        raise ApiError(400, exc.code, f"{where}{exc.message}", detail=detail) from None
    if threshold is not None and threshold > state.settings.max_threshold:
        message = f"{where}threshold may be at most {state.settings.max_threshold}"
        raise ApiError(400, "invalid_threshold", message, detail=detail)
    return Query(stype.value, value, threshold)


def _pdq_lane(queries: list[QueryTuple]) -> list[str] | None:
    """The values, when every query is a canonical PDQ hash at the default threshold (what platforms send);
    None sends the batch through the per-query checks, which name a bad query."""
    if not all(q[0] == "pdq" and q[2] is None for q in queries):
        return None
    values = [q[1] for q in queries]
    return values if all_canonical(SignalType.PDQ, values) else None


def _bank_scope(state: AppState, principal: Principal, names: list[str] | None) -> frozenset[int] | None:
    """Bank ids to search: the named ones (each must be usable) or all the key may use (None = all banks)."""
    if not names:
        return principal.bank_ids
    return frozenset(usable_bank(state, principal, name).id for name in dict.fromkeys(names))


def _item(names: dict[int, str], bank_id: int, signal_id: int, signal_type: str, distance: int) -> dict[str, Any]:
    """One match as the MatchItem shape (both answer paths build it here, so they cannot differ)."""
    bank = names.get(bank_id, str(bank_id))
    return {"bank": bank, "signal_id": signal_id, "signal_type": signal_type, "distance": distance}


def _items(state: AppState, queries: list[Query], results: list[list[Match]]) -> list[list[dict[str, Any]]]:
    """Plain dicts (the MatchItem shape, nulls left out): built once, sent as they are (no second validation)."""
    bank_ids = {m.bank_id for matches in results for m in matches}
    names = state.bank_names(bank_ids) if bank_ids else {}
    out: list[list[dict[str, Any]]] = []
    for query, matches in zip(queries, results, strict=True):
        items = []
        for m in matches:
            item = _item(names, m.bank_id, m.signal_id, query.signal_type, m.distance)
            if m.query_match_pct is not None:
                item["query_match_pct"] = m.query_match_pct
            if m.compared_match_pct is not None:
                item["compared_match_pct"] = m.compared_match_pct
            items.append(item)
        out.append(items)
    return out


def _pdq_items(
    state: AppState, count: int, qrows: np.ndarray, ids: np.ndarray, banks: np.ndarray, dist: np.ndarray
) -> list[list[dict[str, Any]]]:
    """`_items` for the PDQ lane, straight from the index's arrays (already in answer order)."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    if len(qrows):
        names = state.bank_names({int(b) for b in np.unique(banks)})
        for q, sid, bank, d in zip(qrows.tolist(), ids.tolist(), banks.tolist(), dist.tolist(), strict=True):
            out[q].append(_item(names, bank, sid, "pdq", d))
    return out


def _notify(
    state: AppState, principal: Principal, queries: list[tuple[str, str]], items: list[list[dict[str, Any]]]
) -> None:
    """Hand each (signal type, canonical value) that matched to the webhook dispatcher."""
    if not principal.webhooks:
        return
    for (signal_type, value), matches in zip(queries, items, strict=True):
        if matches:
            event_id, body = match_event(principal.name, {"signal_type": signal_type, "value": value}, matches)
            state.dispatcher.submit(principal.webhooks, event_id, body)


def _run(
    state: AppState, principal: Principal, queries: list[Query], names: list[str] | None
) -> list[list[dict[str, Any]]]:
    banks = _bank_scope(state, principal, names)
    results = state.matcher.match(queries, banks, canonical=True)  # _query made every value canonical
    return _items(state, queries, results)


def _run_pdq(
    state: AppState, principal: Principal, values: list[str], names: list[str] | None
) -> list[list[dict[str, Any]]]:
    banks = _bank_scope(state, principal, names)
    return _pdq_items(state, len(values), *state.matcher.match_pdq(values, banks))


async def answer_one(state: AppState, principal: Principal, query: QueryTuple, banks: list[str] | None) -> bytes:
    """The JSON answer to one lookup (the route and `match_fast.MatchFastPath` both answer with this)."""
    queries = [_query(state, query)]
    if banks:
        items = await run_in_threadpool(_run, state, principal, queries, banks)
    else:
        items = _run(state, principal, queries, None)
    _notify(state, principal, [(q.signal_type, q.value) for q in queries], items)
    return _to_json({"matches": items[0]})


async def answer_batch(
    state: AppState, principal: Principal, queries: list[QueryTuple], banks: list[str] | None
) -> bytes:
    """The JSON answer to a batch, results in query order (shared like `answer_one`)."""
    if not queries:
        raise ApiError(400, "empty_batch", "queries must hold at least one query")
    limit = state.settings.max_match_batch
    if len(queries) > limit:
        raise ApiError(413, "batch_too_large", f"at most {limit} queries per batch")
    run: Callable[[AppState, Principal, Any, list[str] | None], list[list[dict[str, Any]]]]
    values = _pdq_lane(queries)
    if values is not None:
        run, work, notified = _run_pdq, values, [("pdq", v) for v in values]
    else:
        checked = [_query(state, q, i) for i, q in enumerate(queries)]
        run, work, notified = _run, checked, [(q.signal_type, q.value) for q in checked]
    if not banks and len(queries) <= INLINE_BATCH:
        items = run(state, principal, work, None)
    else:
        items = await run_in_threadpool(run, state, principal, work, banks)
    _notify(state, principal, notified, items)
    return _to_json({"results": [{"matches": m} for m in items]})


@router.post("", response_model=MatchResult, response_model_exclude_none=True, summary="Match one signal")
async def match_one(
    body: MatchRequest, request: Request, principal: Annotated[Principal, Depends(require("match"))]
) -> Response:
    data = await answer_one(app_state(request), principal, query_tuple(body), body.banks)
    return Response(data, media_type="application/json")


@router.post(
    "/batch",
    response_model=MatchBatchResult,
    response_model_exclude_none=True,
    summary="Match a batch of signals (results in query order)",
)
async def match_batch(
    body: MatchBatchRequest, request: Request, principal: Annotated[Principal, Depends(require("match"))]
) -> Response:
    data = await answer_batch(app_state(request), principal, [query_tuple(q) for q in body.queries], body.banks)
    return Response(data, media_type="application/json")
