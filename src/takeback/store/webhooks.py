"""Webhooks (per client) and their delivery records.

The secret signs each delivery (HMAC-SHA256), so unlike API keys it is stored readable.  A delivery row is created
``pending`` when a match is queued and updated by the worker after each attempt; ``pending_deliveries`` lets a
restarted worker pick up where the last one stopped.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from takeback.store._sql import check_int32, check_text, is_id
from takeback.store.errors import InvalidInput, UnknownClient, UnknownWebhook
from takeback.store.models import ApiClient, Webhook, WebhookDelivery, utcnow
from takeback.store.records import DeliveryInfo, WebhookInfo

STATUSES = frozenset({"pending", "delivered", "failed"})
LAST_ERROR_MAX = 2000

_HOOK = (Webhook.id, Webhook.client_id, Webhook.url, Webhook.secret, Webhook.active, Webhook.created_at)
_DELIVERY = (
    WebhookDelivery.id,
    WebhookDelivery.webhook_id,
    WebhookDelivery.event_id,
    WebhookDelivery.payload,
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    WebhookDelivery.response_status,
    WebhookDelivery.last_error,
    WebhookDelivery.created_at,
    WebhookDelivery.updated_at,
    WebhookDelivery.delivered_at,
)


class _Unset:
    """Marks "leave this column as it is" (None means "set NULL")."""


UNSET = _Unset()


def _hook(row: object) -> WebhookInfo:
    return WebhookInfo(*row)  # type: ignore[misc]


def _delivery(row: object) -> DeliveryInfo:
    return DeliveryInfo(*row)  # type: ignore[misc]


def new_secret() -> str:
    return secrets.token_hex(32)


def create_webhook(session: Session, client_id: int, url: str, secret: str | None = None) -> WebhookInfo:
    """Register a URL for a client (URL safety is checked by the caller); a secret is generated when not given."""
    check_text("url", url, 2048)
    check_text("secret", secret, 200, optional=True)
    if not is_id(client_id) or session.execute(select(ApiClient.id).where(ApiClient.id == client_id)).first() is None:
        raise UnknownClient(client_id)
    row = session.execute(
        insert(Webhook)
        .values(client_id=client_id, url=url, secret=secret or new_secret(), active=True, created_at=utcnow())
        .returning(*_HOOK)
    ).one()
    return _hook(row)


def get_webhook(session: Session, webhook_id: int) -> WebhookInfo | None:
    if not is_id(webhook_id):
        return None
    row = session.execute(select(*_HOOK).where(Webhook.id == webhook_id)).first()
    return _hook(row) if row else None


def list_webhooks(session: Session, client_id: int | None = None, *, active_only: bool = False) -> list[WebhookInfo]:
    stmt = select(*_HOOK).order_by(Webhook.id)
    if client_id is not None:
        if not is_id(client_id):
            return []
        stmt = stmt.where(Webhook.client_id == client_id)
    if active_only:
        stmt = stmt.where(Webhook.active.is_(True))
    return [_hook(row) for row in session.execute(stmt)]


def set_webhook_active(session: Session, webhook_id: int, active: bool) -> bool:
    if not is_id(webhook_id):
        return False
    row = session.execute(
        update(Webhook).where(Webhook.id == webhook_id).values(active=active).returning(Webhook.id)
    ).first()
    return row is not None


def delete_webhook(session: Session, webhook_id: int, *, client_id: int | None = None) -> bool:
    """Delete a webhook and its delivery records; with ``client_id``, only if it belongs to that client."""
    if not is_id(webhook_id) or (client_id is not None and not is_id(client_id)):
        return False
    stmt = delete(Webhook).where(Webhook.id == webhook_id)
    if client_id is not None:
        stmt = stmt.where(Webhook.client_id == client_id)
    return session.execute(stmt.returning(Webhook.id)).first() is not None


def create_delivery(session: Session, webhook_id: int, event_id: str, payload: str) -> DeliveryInfo:
    """Record a queued delivery (status pending, 0 attempts).  ``payload`` is the exact JSON body to send."""
    check_text("event_id", event_id, 36)
    check_text("payload", payload)
    if not is_id(webhook_id) or session.execute(select(Webhook.id).where(Webhook.id == webhook_id)).first() is None:
        raise UnknownWebhook(webhook_id)
    now = utcnow()
    row = session.execute(
        insert(WebhookDelivery)
        .values(
            webhook_id=webhook_id,
            event_id=event_id,
            payload=payload,
            status="pending",
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .returning(*_DELIVERY)
    ).one()
    return _delivery(row)


def update_delivery(
    session: Session,
    delivery_id: int,
    *,
    status: str | None = None,
    attempts: int | None = None,
    response_status: int | _Unset | None = UNSET,
    last_error: str | _Unset | None = UNSET,
) -> DeliveryInfo | None:
    """Record an attempt's outcome; ``delivered`` also stamps delivered_at.  None if the delivery is gone (its
    webhook was deleted meanwhile)."""
    if not is_id(delivery_id, 64):
        return None
    now = utcnow()
    values: dict[str, object] = {"updated_at": now}
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput("status", f"unknown delivery status {status!r}")
        values["status"] = status
        if status == "delivered":
            values["delivered_at"] = now
    if attempts is not None:
        values["attempts"] = attempts
    if not isinstance(response_status, _Unset):
        values["response_status"] = check_int32("response_status", response_status)
    if not isinstance(last_error, _Unset):
        # Error text comes from anywhere (exceptions, remote servers): keep it storable rather than refuse it.
        values["last_error"] = None if last_error is None else last_error.replace("\x00", "")[:LAST_ERROR_MAX]
    row = session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values).returning(*_DELIVERY)
    ).first()
    return _delivery(row) if row else None


def get_delivery(session: Session, delivery_id: int) -> DeliveryInfo | None:
    if not is_id(delivery_id, 64):
        return None
    row = session.execute(select(*_DELIVERY).where(WebhookDelivery.id == delivery_id)).first()
    return _delivery(row) if row else None


def list_deliveries(
    session: Session, webhook_id: int, *, status: str | None = None, limit: int = 100
) -> list[DeliveryInfo]:
    """A webhook's deliveries, newest first."""
    if not is_id(webhook_id):
        return []
    stmt = select(*_DELIVERY).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    stmt = stmt.order_by(WebhookDelivery.id.desc()).limit(max(0, int(limit)))
    return [_delivery(row) for row in session.execute(stmt)]


def pending_deliveries(session: Session, *, limit: int = 100) -> list[DeliveryInfo]:
    """Deliveries still to attempt, oldest first (for a worker starting up)."""
    stmt = select(*_DELIVERY).where(WebhookDelivery.status == "pending").order_by(WebhookDelivery.id).limit(int(limit))
    return [_delivery(row) for row in session.execute(stmt)]
