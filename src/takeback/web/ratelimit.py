"""Per-client token buckets: each client may make `rate` requests per minute, with bursts up to a minute's worth.

In memory and per process: a limit protects this server's CPU, and a restart forgetting the buckets only gives
clients a fresh minute.  Thread-safe, since sync routes run in a thread pool.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    rate: int


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, client_id: int, per_minute: int) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available (for Retry-After)."""
        per_minute = max(1, per_minute)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None or bucket.rate != per_minute:
                bucket = self._buckets[client_id] = _Bucket(float(per_minute), now, per_minute)
            refill = per_minute / 60.0
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * refill)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / refill

    def forget(self, client_id: int) -> None:
        with self._lock:
            self._buckets.pop(client_id, None)


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
