"""Platform operators' pages: API clients and their keys, banks, webhook deliveries.  Only users marked as
operators see them; everyone else gets the same 404 as for a page that does not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from takeback import store
from takeback.store.accounts import UiSessionInfo
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.pages import Text, _signed_in, audit_action, not_found
from takeback.web.dashboard.render import render

router = APIRouter(prefix="/app/operator", include_in_schema=False)


def _operator(request: Request) -> UiSessionInfo | Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    if not current.user.is_operator:
        return not_found(request, current)
    return current


def _page(request: Request, current: UiSessionInfo, status: int = 200, **extra: object) -> Response:
    with app_state(request).store.sessions() as session:
        clients = store.list_clients(session)
        grants = {c.id: store.client_bank_ids(session, c.id) for c in clients}
        banks = [(b, store.count_signals(session, b.id)) for b in store.list_banks(session)]
        hooks = store.list_webhooks(session)
        deliveries = {h.id: store.list_deliveries(session, h.id, limit=10) for h in hooks}
    names = {b.id: b.name for b, _ in banks}
    context: dict[str, object] = {"new_key": None, "error": None, **extra}
    return render(request, "operator.html", status, user=current.user, csrf_token=current.csrf_token,
                  clients=clients, grants=grants, bank_names=names, banks=banks, hooks=hooks, deliveries=deliveries,
                  scopes=sorted(store.SCOPES), **context)


@router.get("/")
def operator_page(request: Request) -> Response:
    current = _operator(request)
    if isinstance(current, Response):
        return current
    return _page(request, current)


@router.post("/clients")
def create_client(
    request: Request,
    name: Text,
    csrf_token: Text,
    scopes: Annotated[list[str] | None, Form()] = None,
    banks: Annotated[list[int] | None, Form()] = None,
) -> Response:
    current = _operator(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return render(request, "error.html", 400, user=current.user, message="The form expired. Please try again.")
    state = app_state(request)
    try:
        with state.store.sessions() as session:
            client, key = store.create_client(session, name.strip() or "client", scopes or ["match"],
                                              rate_limit_per_minute=state.settings.default_rate_limit,
                                              bank_ids=banks or ())
            session.commit()
    except (store.InvalidInput, store.UnknownBank) as exc:
        return _page(request, current, 400, error=f"Could not create the client: {exc}")
    state.changed()
    audit_action(request, "api_client_created", user_id=current.user.id, subject=f"client:{client.id}",
                 detail={"scopes": sorted(client.scopes)})
    return _page(request, current, new_key=(client, key))


@router.post("/clients/{client_id}/revoke")
def revoke_client(request: Request, client_id: int, csrf_token: Text) -> Response:
    current = _operator(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return render(request, "error.html", 400, user=current.user, message="The form expired. Please try again.")
    state = app_state(request)
    with state.store.sessions() as session:
        revoked = store.revoke_client(session, client_id)
        session.commit()
    state.changed()
    if revoked:
        audit_action(request, "api_client_revoked", user_id=current.user.id, subject=f"client:{client_id}")
    return RedirectResponse("/app/operator/", status_code=303)
