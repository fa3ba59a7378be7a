"""Request and response bodies of the /v1 API (they are also the OpenAPI schema clients are generated from).

Limits that depend on settings (batch sizes) are checked in the routes, so an empty or oversized batch gets its own
error code (empty_batch, batch_too_large) rather than a generic validation error.  Free text refuses NUL and lone
surrogates, which databases cannot store; ids are bounded to 63 bits, which databases can.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1
EXAMPLE_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Scope = Literal["match", "manage", "admin"]


def _storable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("text may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return text


Text = Annotated[str, AfterValidator(_storable)]
BankName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="letters, digits, '_', '.', '-'; starts with a letter or digit",
        examples=["case-42"],
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- health -------------------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"
    signals: int
    version: str


# --- banks --------------------------------------------------------------------------------------------------------
class BankCreate(_In):
    name: BankName
    description: Annotated[Text, Field(max_length=2000)] | None = None


class Bank(BaseModel):
    id: int
    name: str
    description: str | None = None
    created_at: datetime | None = None
    signals: int | None = Field(default=None, description="signal count (when cheap to know)")


class BankList(BaseModel):
    banks: list[Bank]


# --- signals ------------------------------------------------------------------------------------------------------
class SignalIn(_In):
    signal_type: Annotated[str, Field(max_length=32, examples=["pdq"])]
    value: Annotated[str, Field(max_length=4_000_000, examples=[EXAMPLE_PDQ])]
    quality: Annotated[int, Field(ge=0, le=100)] | None = None
    note: Annotated[Text, Field(max_length=1000)] | None = None


class SignalsAdd(_In):
    signals: list[SignalIn]


class SignalsAdded(BaseModel):
    added: int
    duplicates: int
    ids: list[int]


class Signal(BaseModel):
    id: int
    signal_type: str
    value: str
    quality: int | None = None
    note: str | None = None
    created_at: datetime | None = None


class SignalPage(BaseModel):
    signals: list[Signal]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null at the end")


class SignalsDelete(_In):
    ids: list[Id]


class Removed(BaseModel):
    removed: int


class ImportRejected(BaseModel):
    line: int
    code: str
    message: str


class ImportResult(BaseModel):
    format: str
    added: int
    duplicates: int
    rejected: list[ImportRejected]


# --- match --------------------------------------------------------------------------------------------------------
class QueryIn(_In):
    signal_type: Annotated[str, Field(max_length=32, examples=["pdq"])]
    value: Annotated[str, Field(max_length=4_000_000)]
    threshold: Annotated[int, Field(ge=0, le=256)] | None = None


class MatchRequest(QueryIn):
    banks: list[BankName] | None = Field(default=None, description="bank names; default: every bank you may use")


class MatchBatchRequest(_In):
    queries: list[QueryIn]
    banks: list[BankName] | None = None


class MatchItem(BaseModel):
    bank: str
    signal_id: int
    signal_type: str
    distance: int
    query_match_pct: float | None = None
    compared_match_pct: float | None = None


class MatchResult(BaseModel):
    matches: list[MatchItem]


class MatchBatchResult(BaseModel):
    results: list[MatchResult]


# --- clients ------------------------------------------------------------------------------------------------------
class ClientCreate(_In):
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    scopes: Annotated[list[Scope], Field(min_length=1)]
    banks: list[BankName] | None = None
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=10_000_000)] | None = None


class Client(BaseModel):
    id: int
    name: str
    scopes: list[str]
    key_prefix: str
    rate_limit_per_minute: int
    banks: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    revoked_at: datetime | None = None


class ClientCreated(Client):
    key: str = Field(description="the API key; shown only this once")


class ClientList(BaseModel):
    clients: list[Client]


class BankGrant(_In):
    banks: Annotated[list[BankName], Field(min_length=1)]


# --- webhooks -----------------------------------------------------------------------------------------------------
class WebhookCreate(_In):
    url: Annotated[Text, Field(min_length=1, max_length=2048, examples=["https://hooks.example.com/takeback"])]
    secret: Annotated[Text, Field(min_length=16, max_length=200)] | None = None


class Webhook(BaseModel):
    id: int
    url: str
    active: bool = True
    created_at: datetime | None = None


class WebhookCreated(Webhook):
    secret: str = Field(description="HMAC-SHA256 key for X-Takeback-Signature; shown only this once")


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class Delivery(BaseModel):
    id: int
    event_id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    response_status: int | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    delivered_at: datetime | None = None


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: object | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody
