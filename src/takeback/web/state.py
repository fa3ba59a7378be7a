"""What the running app holds: settings, the store, the matcher, the webhook dispatcher, and small caches.

The caches keep the hot path (authenticate, look up grants and webhooks, name the banks of a match) off the database.
They are cleared by this process whenever it changes clients, grants, banks or webhooks, and expire after
`CACHE_TTL_S` so a change made by another process (another worker, the CLI on the database) is seen soon.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from takeback.config import Settings
from takeback.web.ratelimit import RateLimiter
from takeback.web.storage import Store
from takeback.web.webhooks import Target, WebhookDispatcher

CACHE_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated client of a request."""

    client_id: int
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int
    #: Banks this client may use; None means every bank (admin).
    bank_ids: frozenset[int] | None
    webhooks: tuple[Target, ...] = ()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    def may_use(self, bank_id: int) -> bool:
        return self.bank_ids is None or bank_id in self.bank_ids


class _TTLCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def get(self, key: Any) -> Any | None:
        item = self._items.get(key)
        if item is None or item[0] < self._clock():
            return None
        return item[1]

    def generation(self) -> int:
        return self._generation

    def put(self, key: Any, value: Any, generation: int) -> None:
        """Store unless the cache was cleared since `generation` was read (the value may be stale then)."""
        with self._lock:
            if generation == self._generation:
                if len(self._items) > 100_000:
                    self._items.clear()
                self._items[key] = (self._clock() + self._ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._items.clear()


@dataclass
class BankNames:
    """bank id <-> name, reloaded from the store when it changes or when an unknown id shows up."""

    by_id: dict[int, str] = field(default_factory=dict)
    loaded_at: float = 0.0


@dataclass
class AppState:
    settings: Settings
    store: Store
    matcher: Any
    dispatcher: WebhookDispatcher
    limiter: RateLimiter = field(default_factory=RateLimiter)
    principals: _TTLCache = field(default_factory=lambda: _TTLCache(CACHE_TTL_S))
    _banks: BankNames = field(default_factory=BankNames)

    def changed(self) -> None:
        """Clients, grants, banks or webhooks changed: forget cached principals and bank names."""
        self.principals.clear()
        self._banks = BankNames()

    def bank_names(self, ids: set[int]) -> dict[int, str]:
        names = self._banks
        if not ids.issubset(names.by_id) or names.loaded_at + CACHE_TTL_S < time.monotonic():
            names = BankNames(self.store.bank_names(), time.monotonic())
            self._banks = names
        return names.by_id


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
