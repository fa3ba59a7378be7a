"""Webhooks and delivery records on both backends."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store


@pytest.fixture
def client_ids(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions.begin() as session:
        a, _ = store.create_client(session, "a", "match")
        b, _ = store.create_client(session, "b", "match")
    return a.id, b.id


def test_webhook_crud(sessions: sessionmaker[Session], client_ids: tuple[int, int]) -> None:
    a, b = client_ids
    with sessions.begin() as session:
        hook = store.create_webhook(session, a, "https://example.org/hook", "s3cret")
        generated = store.create_webhook(session, a, "https://example.org/other")
        theirs = store.create_webhook(session, b, "https://example.net/hook")
    assert (hook.client_id, hook.url, hook.secret, hook.active) == (a, "https://example.org/hook", "s3cret", True)
    assert len(generated.secret) == 64 and generated.secret != theirs.secret
    with sessions.begin() as session:
        assert store.get_webhook(session, hook.id) == hook
        assert store.list_webhooks(session, a) == [hook, generated]
        assert store.list_webhooks(session) == [hook, generated, theirs]
        assert store.set_webhook_active(session, generated.id, False) is True
        assert store.list_webhooks(session, a, active_only=True) == [hook]
        # Another client cannot delete it; its owner can.
        assert store.delete_webhook(session, hook.id, client_id=b) is False
        assert store.delete_webhook(session, hook.id, client_id=a) is True
        assert store.delete_webhook(session, hook.id) is False
        assert store.get_webhook(session, hook.id) is None
        with pytest.raises(store.UnknownClient):
            store.create_webhook(session, 99_999, "https://example.org/")


def test_deliveries(sessions: sessionmaker[Session], client_ids: tuple[int, int]) -> None:
    with sessions.begin() as session:
        hook = store.create_webhook(session, client_ids[0], "https://example.org/hook")
        payload = json.dumps({"type": "match", "matches": [{"signal_id": 1}]})
        first = store.create_delivery(session, hook.id, str(uuid.uuid4()), payload)
        second = store.create_delivery(session, hook.id, str(uuid.uuid4()), payload)
    assert (first.status, first.attempts, first.payload, first.delivered_at) == ("pending", 0, payload, None)
    with sessions.begin() as session:
        failed_once = store.update_delivery(
            session, first.id, attempts=1, response_status=503, last_error="HTTP 503 \x00 from upstream"
        )
        assert failed_once is not None
        assert (failed_once.status, failed_once.attempts, failed_once.response_status) == ("pending", 1, 503)
        assert failed_once.last_error == "HTTP 503  from upstream"
        assert failed_once.updated_at >= first.updated_at
        done = store.update_delivery(
            session, first.id, status="delivered", attempts=2, response_status=200, last_error=None
        )
        assert done is not None and done.status == "delivered" and done.delivered_at is not None
        assert (done.last_error, done.response_status) == (None, 200)
        # Fields not passed stay as they are.
        again = store.update_delivery(session, first.id, attempts=2)
        assert again is not None and again.response_status == 200
        failed = store.update_delivery(session, second.id, status="failed", attempts=6, last_error="x" * 10_000)
        assert failed is not None and failed.delivered_at is None and len(failed.last_error or "") == 2000
        assert store.update_delivery(session, 10**9, status="failed") is None
        with pytest.raises(ValueError):
            store.update_delivery(session, first.id, status="lost")
    with sessions.begin() as session:
        assert [d.id for d in store.list_deliveries(session, hook.id)] == [second.id, first.id]
        assert [d.id for d in store.list_deliveries(session, hook.id, status="failed")] == [second.id]
        assert [d.id for d in store.list_deliveries(session, hook.id, limit=1)] == [second.id]
        assert store.get_delivery(session, first.id) == again
        third = store.create_delivery(session, hook.id, str(uuid.uuid4()), "{}")
        assert [d.id for d in store.pending_deliveries(session)] == [third.id]
        with pytest.raises(store.UnknownWebhook):
            store.create_delivery(session, 99_999, str(uuid.uuid4()), "{}")
    # Deleting the webhook removes its records; a worker's late update then finds nothing.
    with sessions.begin() as session:
        assert store.delete_webhook(session, hook.id)
    with sessions.begin() as session:
        assert store.list_deliveries(session, hook.id) == []
        assert store.update_delivery(session, third.id, status="delivered") is None


def test_revoking_is_not_deleting(sessions: sessionmaker[Session], client_ids: tuple[int, int]) -> None:
    """Revoked clients keep their rows (audit); their webhooks stay listed for the admin to see."""
    with sessions.begin() as session:
        hook = store.create_webhook(session, client_ids[0], "https://example.org/hook")
        store.revoke_client(session, client_ids[0])
    with sessions.begin() as session:
        assert store.list_webhooks(session, client_ids[0]) == [hook]
