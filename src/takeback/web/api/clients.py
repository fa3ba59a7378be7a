"""API clients (admin only): create with a key shown once, list, revoke, grant banks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from takeback.web.auth import app_state, require
from takeback.web.errors import ApiError
from takeback.web.schemas import MAX_ID, BankGrant, Client, ClientCreate, ClientCreated, ClientList
from takeback.web.state import AppState, Principal
from takeback.web.storage import ClientRecord

router = APIRouter(prefix="/v1/clients", tags=["clients"])
Admin = Annotated[Principal, Depends(require("admin"))]
ClientId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _out(client: ClientRecord) -> Client:
    return Client(
        id=client.id,
        name=client.name,
        scopes=list(client.scopes),
        key_prefix=client.key_prefix,
        rate_limit_per_minute=client.rate_limit_per_minute,
        banks=list(client.banks),
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


def _bank_ids(state: AppState, names: list[str]) -> list[int]:
    ids = []
    for name in dict.fromkeys(names):
        bank = state.store.bank_by_name(name)
        if bank is None:
            raise ApiError(404, "unknown_bank", f"no bank named {name!r}")
        ids.append(bank.id)
    return ids


@router.post("", status_code=201, response_model=ClientCreated, summary="Create a client; its key is shown once")
def create_client(body: ClientCreate, request: Request, _: Admin) -> ClientCreated:
    state = app_state(request)
    bank_ids = _bank_ids(state, body.banks or [])
    rate = body.rate_limit_per_minute or state.settings.default_rate_limit
    client, key = state.store.create_client(body.name, sorted(set(body.scopes)), rate, bank_ids)
    state.changed()
    return ClientCreated(**_out(client).model_dump(), key=key)


@router.get("", response_model=ClientList, summary="All clients, revoked ones included")
def list_clients(request: Request, _: Admin) -> ClientList:
    return ClientList(clients=[_out(c) for c in app_state(request).store.list_clients()])


@router.delete("/{client_id}", status_code=204, response_class=Response, summary="Revoke a client's key")
def revoke_client(client_id: ClientId, request: Request, _: Admin) -> Response:
    state = app_state(request)
    if not state.store.revoke_client(client_id):
        raise ApiError(404, "not_found", f"no client {client_id}")
    state.changed()
    state.limiter.forget(client_id)
    return Response(status_code=204)


@router.post("/{client_id}/banks", response_model=Client, summary="Grant banks to a client")
def grant_banks(client_id: ClientId, body: BankGrant, request: Request, _: Admin) -> Client:
    state = app_state(request)
    bank_ids = _bank_ids(state, body.banks)
    client = state.store.grant_banks(client_id, bank_ids)
    if client is None:
        raise ApiError(404, "not_found", f"no client {client_id}")
    state.changed()
    return _out(client)
