"""What the store hands out: small frozen dataclasses, never ORM objects, so callers cannot lazy-load or
accidentally write, and nothing above the store depends on SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CaseInfo:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BankInfo:
    id: int
    name: str
    description: str
    case_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSignal:
    id: int
    bank_id: int
    signal_type: str
    value: str
    quality: int | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AddResult:
    #: The newly stored signals, by id (input order).
    added: list[StoredSignal]
    #: Inputs that were already in the bank (or repeated within the batch).
    duplicates: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    id: int
    name: str
    key_prefix: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    id: int
    client_id: int
    url: str
    secret: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    id: int
    webhook_id: int
    event_id: str
    payload: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
