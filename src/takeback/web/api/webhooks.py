"""A client's own webhooks: register (URL checked against SSRF), list, delete, and see deliveries."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from takeback.discover.urlguard import UnsafeURL, check_url
from takeback.web.auth import app_state, authenticate
from takeback.web.errors import ApiError
from takeback.web.schemas import (
    MAX_ID,
    Delivery,
    DeliveryList,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)
from takeback.web.state import Principal
from takeback.web.storage import WebhookRecord
from takeback.web.webhooks import new_secret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Caller = Annotated[Principal, Depends(authenticate)]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
#: A registration waits at most this long for DNS.
RESOLVE_TIMEOUT_S = 5.0
MAX_WEBHOOKS = 20


def _out(hook: WebhookRecord) -> Webhook:
    return Webhook(id=hook.id, url=hook.url, active=hook.active, created_at=hook.created_at)


@router.post("", status_code=201, response_model=WebhookCreated, summary="Register a URL to receive match events")
async def create_webhook(body: WebhookCreate, request: Request, principal: Caller) -> WebhookCreated:
    state = app_state(request)
    allow = state.settings.allow_private_webhooks
    resolver = state.dispatcher.resolver
    try:
        await asyncio.wait_for(
            run_in_threadpool(check_url, body.url, allow_private=allow, resolver=resolver), RESOLVE_TIMEOUT_S
        )
    except UnsafeURL as exc:
        raise ApiError(400, "unsafe_url", exc.message) from None
    except TimeoutError:
        raise ApiError(400, "unsafe_url", "the host name did not resolve in time") from None
    secret = body.secret or new_secret()

    def create() -> WebhookRecord:
        if len(state.store.list_webhooks(principal.client_id)) >= MAX_WEBHOOKS:
            raise ApiError(409, "too_many_webhooks", f"a client may register at most {MAX_WEBHOOKS} webhooks")
        return state.store.create_webhook(principal.client_id, body.url, secret)

    hook = await run_in_threadpool(create)
    state.changed()
    return WebhookCreated(**_out(hook).model_dump(), secret=secret)


@router.get("", response_model=WebhookList, summary="This key's webhooks")
def list_webhooks(request: Request, principal: Caller) -> WebhookList:
    return WebhookList(webhooks=[_out(h) for h in app_state(request).store.list_webhooks(principal.client_id)])


@router.delete("/{webhook_id}", status_code=204, response_class=Response, summary="Delete a webhook")
def delete_webhook(webhook_id: WebhookId, request: Request, principal: Caller) -> Response:
    state = app_state(request)
    if not state.store.delete_webhook(principal.client_id, webhook_id):
        raise ApiError(404, "not_found", f"no webhook {webhook_id}")
    state.changed()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, summary="Recent deliveries, newest first")
def list_deliveries(
    webhook_id: WebhookId,
    request: Request,
    principal: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    deliveries = app_state(request).store.list_deliveries(principal.client_id, webhook_id, limit)
    if deliveries is None:
        raise ApiError(404, "not_found", f"no webhook {webhook_id}")
    return DeliveryList(
        deliveries=[
            Delivery(
                id=d.id,
                event_id=d.event_id,
                status=d.status,  # type: ignore[arg-type]
                attempts=d.attempts,
                response_status=d.response_status,
                last_error=d.last_error,
                created_at=d.created_at,
                updated_at=d.updated_at,
                delivered_at=d.delivered_at,
            )
            for d in deliveries
        ]
    )
