"""Banks and their signals: create, list, delete; add, list, remove signals; import and export hash lists.

Every write commits to the database first, then updates the index, then answers (the matcher's `apply` does both
under one lock, so concurrent writers reach the index in commit order): an acknowledged signal survives a crash, and
a match never sees a signal the database does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from takeback import __version__
from takeback.signals import interop
from takeback.signals.validate import InvalidSignal, canonical_value
from takeback.web.auth import app_state, authenticate, require, usable_bank
from takeback.web.errors import ApiError
from takeback.web.schemas import (
    MAX_ID,
    Bank,
    BankCreate,
    BankList,
    ImportRejected,
    ImportResult,
    Removed,
    Signal,
    SignalPage,
    SignalsAdd,
    SignalsAdded,
    SignalsDelete,
)
from takeback.web.state import AppState, Principal
from takeback.web.storage import BankExists, BankInfo, NewSignal

router = APIRouter(prefix="/v1/banks", tags=["banks"])
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
MAX_PAGE = 10_000
#: At most this many per-item problems are listed in an error's detail.
MAX_DETAIL = 100


def _bank_out(bank: BankInfo) -> Bank:
    return Bank(
        id=bank.id, name=bank.name, description=bank.description, created_at=bank.created_at, signals=bank.signals
    )


def _bank(state: AppState, principal: Principal, name: str) -> BankInfo:
    if not _NAME.match(name):
        raise ApiError(404, "unknown_bank", "no bank by that name")
    return usable_bank(state, principal, name)


@router.post("", status_code=201, response_model=Bank, summary="Create a bank (granted to its creator)")
def create_bank(
    body: BankCreate, request: Request, principal: Annotated[Principal, Depends(require("manage"))]
) -> Bank:
    state = app_state(request)
    try:
        bank = state.store.create_bank(body.name, body.description, grant_to=principal.client_id)
    except BankExists:
        raise ApiError(409, "bank_exists", f"a bank named {body.name!r} already exists") from None
    state.changed()
    return _bank_out(bank)


@router.get("", response_model=BankList, summary="The banks this key may use")
def list_banks(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> BankList:
    state = app_state(request)
    banks = state.store.list_banks(None if principal.bank_ids is None else principal.client_id)
    return BankList(banks=[_bank_out(b) for b in banks])


@router.get("/{bank}", response_model=Bank, summary="One bank")
def get_bank(bank: str, request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Bank:
    state = app_state(request)
    info = _bank(state, principal, bank)
    return _bank_out(state.store.bank_by_name(info.name, count=True) or info)


@router.delete("/{bank}", status_code=204, response_class=Response, summary="Delete a bank and all its signals")
def delete_bank(bank: str, request: Request, principal: Annotated[Principal, Depends(require("manage"))]) -> Response:
    state = app_state(request)
    info = _bank(state, principal, bank)
    state.store.delete_bank(info.id)
    state.changed()
    return Response(status_code=204)


def _add(state: AppState, bank: BankInfo, rows: list[NewSignal]) -> tuple[list[int], int]:
    """Commit rows, then index them: (ids of new signals, duplicates)."""
    result = state.store.add_signals(bank.id, rows)
    return [s.id for s in result.added], result.duplicates


@router.post(
    "/{bank}/signals",
    status_code=201,
    response_model=SignalsAdded,
    summary="Add signals (all or nothing: one invalid value refuses the request)",
)
def add_signals(
    bank: str, body: SignalsAdd, request: Request, principal: Annotated[Principal, Depends(require("manage"))]
) -> SignalsAdded:
    state = app_state(request)
    info = _bank(state, principal, bank)
    if not body.signals:
        raise ApiError(400, "empty_batch", "signals must hold at least one signal")
    limit = state.settings.max_upload_signals
    if len(body.signals) > limit:
        raise ApiError(413, "batch_too_large", f"at most {limit} signals per request")
    rows: list[NewSignal] = []
    problems: list[dict[str, object]] = []
    for i, signal in enumerate(body.signals):
        try:
            stype, value = canonical_value(signal.signal_type, signal.value)
        except InvalidSignal as exc:
            problems.append({"index": i, "code": exc.code, "message": exc.message})
            continue
        rows.append(NewSignal(stype.value, value, signal.quality, signal.note))
    if problems:
        first = problems[0]
        raise ApiError(
            400, str(first["code"]), f"signals[{first['index']}]: {first['message']}", detail=problems[:MAX_DETAIL]
        )
    ids, duplicates = _add(state, info, rows)
    return SignalsAdded(added=len(ids), duplicates=duplicates, ids=ids)


@router.get("/{bank}/signals", response_model=SignalPage, summary="Page through a bank's signals by id")
def list_signals(
    bank: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("manage"))],
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> SignalPage:
    state = app_state(request)
    info = _bank(state, principal, bank)
    signals = state.store.list_signals(info.id, after_id, limit)
    return SignalPage(
        signals=[
            Signal(
                id=s.id,
                signal_type=s.signal_type,
                value=s.value,
                quality=s.quality,
                note=s.note,
                created_at=s.created_at,
            )
            for s in signals
        ],
        next_after_id=signals[-1].id if len(signals) == limit else None,
    )


def _remove(state: AppState, bank: BankInfo, ids: list[int]) -> int:
    return len(state.store.remove_signals(bank.id, ids))


@router.post("/{bank}/signals/delete", response_model=Removed, summary="Remove signals by id")
def remove_signals(
    bank: str, body: SignalsDelete, request: Request, principal: Annotated[Principal, Depends(require("manage"))]
) -> Removed:
    state = app_state(request)
    info = _bank(state, principal, bank)
    if not body.ids:
        raise ApiError(400, "empty_batch", "ids must hold at least one id")
    if len(body.ids) > state.settings.max_upload_signals:
        raise ApiError(413, "batch_too_large", f"at most {state.settings.max_upload_signals} ids per request")
    return Removed(removed=_remove(state, info, sorted(set(body.ids))))


@router.delete("/{bank}/signals/{signal_id}", status_code=204, response_class=Response, summary="Remove one signal")
def remove_one_signal(
    bank: str,
    signal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    principal: Annotated[Principal, Depends(require("manage"))],
) -> Response:
    state = app_state(request)
    info = _bank(state, principal, bank)
    if not _remove(state, info, [signal_id]):
        raise ApiError(404, "not_found", f"bank {bank!r} has no signal {signal_id}")
    return Response(status_code=204)


@router.post("/{bank}/import", response_model=ImportResult, summary="Import a hash list file (bad lines reported)")
async def import_list(
    bank: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("manage"))],
    file: Annotated[UploadFile, File(description="takeback hash list, takeback signal list, HMA/TE CSV or text")],
    format: Annotated[Literal["auto", "takeback", "hma"], Form()] = "auto",
) -> ImportResult:
    state = app_state(request)
    info = await run_in_threadpool(_bank, state, principal, bank)
    limit = state.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "upload_too_large", f"the file is larger than {limit} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"the file is not UTF-8 text (byte {exc.start})") from None
    parsed = await run_in_threadpool(interop.read_signals, text, format)
    if len(parsed.signals) > state.settings.max_upload_signals:
        raise ApiError(413, "batch_too_large", f"at most {state.settings.max_upload_signals} signals per import")
    rows = [NewSignal(s.signal_type, s.value, s.quality, s.note) for s in parsed.signals]
    ids, duplicates = await run_in_threadpool(_add, state, info, rows) if rows else ([], 0)
    return ImportResult(
        format=parsed.format,
        added=len(ids),
        duplicates=duplicates,
        rejected=[ImportRejected(line=r.line, code=r.code, message=r.message) for r in parsed.rejected],
    )


@router.get(
    "/{bank}/export",
    summary="Download a bank as a takeback signal list (JSON Lines) or HMA/ThreatExchange CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def export_bank(
    bank: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("manage"))],
    format: Annotated[Literal["takeback", "hma"], Query()] = "takeback",
) -> StreamingResponse:
    state = app_state(request)
    info = _bank(state, principal, bank)

    def signals() -> Iterator:
        after = 0
        while True:
            page = state.store.list_signals(info.id, after, MAX_PAGE)
            yield from page
            if len(page) < MAX_PAGE:
                return
            after = page[-1].id

    if format == "hma":
        lines = interop.write_hma_csv(signals(), collab=info.name)
        media, suffix = "text/csv", "hma.csv"
    else:
        lines = interop.write_takeback(signals(), bank=info.name, generator=f"takeback {__version__}")
        media, suffix = "application/x-ndjson", "takeback.jsonl"
    body = (line.encode("utf-8") + b"\n" for line in lines)
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{info.name}.{suffix}"'}
    )
