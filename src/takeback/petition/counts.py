"""A per-process cache of petition counts that never goes back in time.

Why: a viral page is read far more often than it is signed, so the public count is cached for a second; but a
cache filled by a slow read can overwrite a newer value (a read that started before a commit finishes after it),
and a supporter who has just signed would then be shown the count without their own signature.  Every change bumps a
petition's generation; a value is only stored if no change happened since the reader (or the intake's commit)
took its token.  So after a signature is committed, nobody in this process is served a count from before it.
Other processes' commits show up within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from takeback.store.petitions import Counts


class CountsCache:
    def __init__(self, ttl_s: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[int, tuple[float, Counts]] = {}
        self._generation: dict[int, int] = {}

    def get(self, petition_id: int) -> Counts | None:
        """The cached counts if still fresh, else None (the caller reads and ``offer``s)."""
        entry = self._values.get(petition_id)
        return entry[1] if entry is not None and entry[0] >= self._clock() else None

    def token(self, petition_id: int) -> int:
        """Take before reading the counts; pass to ``offer``."""
        with self._lock:
            return self._generation.get(petition_id, 0)

    def offer(self, petition_id: int, token: int, counts: Counts) -> bool:
        """Store ``counts`` unless the petition changed since ``token`` was taken (then it may be stale)."""
        with self._lock:
            if self._generation.get(petition_id, 0) != token:
                return False
            self._generation[petition_id] = token + 1  # readers that started earlier must not overwrite this
            self._values[petition_id] = (self._clock() + self._ttl_s, counts)
            return True

    def invalidate(self, petition_id: int) -> None:
        """A change whose new counts are not known here (verification, erasure, removal): drop the value."""
        with self._lock:
            self._generation[petition_id] = self._generation.get(petition_id, 0) + 1
            self._values.pop(petition_id, None)
