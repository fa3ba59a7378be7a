"""The API's view of the store: one method per thing a route needs, each its own transaction.

Routes never hold sessions; this module opens one per call (committing on success), calls the store's repository
functions, and hands back plain records.  It is the single place that knows the repository's exact signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from takeback.index import IndexedSignal
from takeback.store import banks, clients, errors, signals, webhooks
from takeback.web.webhooks import DeliveryRecorder, Target


class BankExists(Exception):
    """A bank with that name already exists."""


@dataclass(frozen=True, slots=True)
class BankInfo:
    id: int
    name: str
    description: str | None
    created_at: datetime | None
    signals: int | None = None


@dataclass(frozen=True, slots=True)
class NewSignal:
    signal_type: str
    value: str
    quality: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: int
    name: str
    scopes: tuple[str, ...]
    key_prefix: str
    rate_limit_per_minute: int
    banks: tuple[str, ...]
    created_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: int
    url: str
    active: bool
    created_at: datetime | None


def _bank(info: Any, signals: int | None = None) -> BankInfo:
    return BankInfo(info.id, info.name, info.description or None, info.created_at, signals)


#: matcher.apply(session, added=..., removed=..., removed_banks=...): commits and updates the index as one step.
Apply = Callable[..., None]


class Store:
    def __init__(self, session_factory: Callable[[], Any], apply: Apply, default_rate_limit: int = 6000) -> None:
        self.sessions = session_factory
        self.apply = apply
        self.default_rate_limit = default_rate_limit

    # --- banks -------------------------------------------------------------------------------------------------
    def create_bank(self, name: str, description: str | None, *, grant_to: int | None) -> BankInfo:
        with self.sessions() as session:
            try:
                bank = banks.create_bank(session, name, description or "", grant_to=grant_to)
                session.commit()
            except (errors.BankExists, IntegrityError):
                session.rollback()
                raise BankExists(name) from None
            return _bank(bank, 0)

    def bank_by_name(self, name: str, *, count: bool = False) -> BankInfo | None:
        """The bank, with its signal count only when asked (a COUNT over a big bank is not free)."""
        with self.sessions() as session:
            bank = banks.get_bank_by_name(session, name)
            if bank is None:
                return None
            return _bank(bank, signals.count_signals(session, bank.id) if count else None)

    def list_banks(self, client_id: int | None) -> list[BankInfo]:
        with self.sessions() as session:
            return [_bank(b) for b in banks.list_banks(session, client_id=client_id)]

    def bank_names(self) -> dict[int, str]:
        with self.sessions() as session:
            return {b.id: b.name for b in banks.list_banks(session)}

    def delete_bank(self, bank_id: int) -> None:
        with self.sessions() as session:
            if banks.delete_bank(session, bank_id):
                self.apply(session, removed_banks=[bank_id])

    # --- signals -----------------------------------------------------------------------------------------------
    def add_signals(self, bank_id: int, rows: Sequence[NewSignal]) -> Any:
        """Commit, then index (one step in the matcher); returns the store's AddResult."""
        with self.sessions() as session:
            result = signals.add_signals(session, bank_id, [(r.signal_type, r.value, r.quality, r.note) for r in rows])
            self.apply(session, added=[IndexedSignal(s.id, s.bank_id, s.signal_type, s.value) for s in result.added])
            return result

    def remove_signals(self, bank_id: int, ids: Sequence[int]) -> list[int]:
        with self.sessions() as session:
            removed = signals.remove_signals(session, bank_id, list(ids))
            self.apply(session, removed=removed)
            return list(removed)

    def list_signals(self, bank_id: int, after_id: int, limit: int) -> list[Any]:
        with self.sessions() as session:
            return list(signals.list_signals(session, bank_id, after_id, limit))

    def signal_notes(self, ids: Sequence[int]) -> dict[int, str | None]:
        """The notes of the signals that still exist among ``ids`` (an uploads bank keeps upload references there)."""
        with self.sessions() as session:
            return {i: s.note for i, s in signals.get_signals(session, ids).items()}

    def bank_webhooks(self, bank_id: int) -> list[tuple[str, Target]]:
        """(client name, active webhook) of every unrevoked client granted ``bank_id``: whoever registered what is
        in the bank, and so whoever must hear about matches against it."""
        with self.sessions() as session:
            out = []
            for client in clients.list_clients(session, include_revoked=False):
                if bank_id in clients.client_bank_ids(session, client.id):
                    out.extend((client.name, Target(h.id, h.url, h.secret))
                               for h in webhooks.list_webhooks(session, client.id, active_only=True))
            return out

    # --- clients -----------------------------------------------------------------------------------------------
    def principal(self, key: str) -> Any:
        """The Principal for a key (grants and active webhooks included), or None when unknown or revoked."""
        from takeback.web.state import Principal

        with self.sessions() as session:
            client = clients.authenticate(session, key)
            if client is None:
                return None
            scopes = frozenset(client.scopes)
            bank_ids = None if "admin" in scopes else clients.client_bank_ids(session, client.id)
            hooks = tuple(
                Target(h.id, h.url, h.secret) for h in webhooks.list_webhooks(session, client.id, active_only=True)
            )
            rate = client.rate_limit_per_minute or self.default_rate_limit
            return Principal(client.id, client.name, scopes, rate, bank_ids, hooks)

    def _client(self, session: Any, client: Any) -> ClientRecord:
        names = [b.name for b in banks.list_banks(session, client_id=client.id)]
        return ClientRecord(
            client.id,
            client.name,
            tuple(sorted(client.scopes)),
            client.key_prefix,
            client.rate_limit_per_minute or self.default_rate_limit,
            tuple(names),
            client.created_at,
            client.revoked_at,
        )

    def create_client(
        self, name: str, scopes: Sequence[str], rate_limit: int | None, bank_ids: Sequence[int]
    ) -> tuple[ClientRecord, str]:
        with self.sessions() as session:
            client, key = clients.create_client(
                session, name, list(scopes), rate_limit_per_minute=rate_limit, bank_ids=bank_ids
            )
            session.commit()
            return self._client(session, client), key

    def list_clients(self) -> list[ClientRecord]:
        with self.sessions() as session:
            return [self._client(session, c) for c in clients.list_clients(session)]

    def client_exists(self, client_id: int) -> bool:
        with self.sessions() as session:
            return clients.get_client(session, client_id) is not None

    def revoke_client(self, client_id: int) -> bool:
        """False when there is no such client; revoking a revoked client is a no-op."""
        with self.sessions() as session:
            if clients.get_client(session, client_id) is None:
                return False
            clients.revoke_client(session, client_id)
            session.commit()
            return True

    def grant_banks(self, client_id: int, bank_ids: Sequence[int]) -> ClientRecord | None:
        with self.sessions() as session:
            client = clients.get_client(session, client_id)
            if client is None:
                return None
            for bank_id in bank_ids:
                clients.grant_bank(session, client_id, bank_id)
            session.commit()
            return self._client(session, client)

    # --- webhooks ----------------------------------------------------------------------------------------------
    def create_webhook(self, client_id: int, url: str, secret: str) -> WebhookRecord:
        with self.sessions() as session:
            hook = webhooks.create_webhook(session, client_id, url, secret)
            session.commit()
            return WebhookRecord(hook.id, hook.url, hook.active, hook.created_at)

    def list_webhooks(self, client_id: int) -> list[WebhookRecord]:
        with self.sessions() as session:
            return [
                WebhookRecord(h.id, h.url, h.active, h.created_at) for h in webhooks.list_webhooks(session, client_id)
            ]

    def delete_webhook(self, client_id: int, webhook_id: int) -> bool:
        with self.sessions() as session:
            done = webhooks.delete_webhook(session, webhook_id, client_id=client_id)
            session.commit()
            return bool(done)

    def list_deliveries(self, client_id: int, webhook_id: int, limit: int) -> list[Any] | None:
        with self.sessions() as session:
            hook = webhooks.get_webhook(session, webhook_id)
            if hook is None or hook.client_id != client_id:
                return None
            return webhooks.list_deliveries(session, webhook_id, limit=limit)

    def recorder(self) -> DeliveryRecorder:
        return _Recorder(self.sessions)


class _Recorder:
    """Delivery records for the webhook dispatcher (called from worker threads)."""

    def __init__(self, sessions: Callable[[], Any]) -> None:
        self.sessions = sessions

    def create(self, webhook_id: int, event_id: str, payload: str) -> int:
        with self.sessions() as session:
            delivery = webhooks.create_delivery(session, webhook_id, event_id, payload)
            session.commit()
            return int(delivery.id)

    def update(
        self, delivery_id: int, *, status: str, attempts: int, response_status: int | None, last_error: str | None
    ) -> None:
        with self.sessions() as session:
            webhooks.update_delivery(
                session,
                delivery_id,
                status=status,
                attempts=attempts,
                response_status=response_status,
                last_error=last_error,
            )
            session.commit()

    def pending(self) -> list[tuple[int, Target, str, str, int]]:
        with self.sessions() as session:
            out = []
            for d in webhooks.pending_deliveries(session, limit=10_000):
                hook = webhooks.get_webhook(session, d.webhook_id)
                if hook is not None and hook.active:
                    out.append((d.id, Target(hook.id, hook.url, hook.secret), d.event_id, d.payload, d.attempts))
            return out
