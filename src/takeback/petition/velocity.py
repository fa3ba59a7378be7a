"""Velocity limits: signatures per minute from one IP address and from one network (/24 IPv4, /48 IPv6).

A sliding window approximated from two fixed one-minute windows (the previous one weighted by how much of it still
overlaps): O(1) per check, memory bounded by the addresses seen in two minutes.  Per process: a flood is stopped
where it lands; the review flags (stored, per network and postcode) catch what is spread more thinly.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

WINDOW_S = 60.0


class TooFast(Exception):
    """Over a velocity limit; ``retry_after`` seconds until the window has room again."""

    def __init__(self, scope: str, limit: int, retry_after: float) -> None:
        super().__init__(f"more than {limit} signatures per minute from this {scope}; try again later")
        self.scope = scope
        self.limit = limit
        self.retry_after = retry_after


@lru_cache(maxsize=65_536)
def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address, as text; an IPv4-mapped IPv6 address counts as IPv4.
    Unparsable input (a test client, a Unix socket) becomes ``"unknown"``."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass
class _Windows:
    start: float
    current: dict[str, int]
    previous: dict[str, int]


class VelocityLimiter:
    def __init__(self, per_ip: int, per_network: int, *, clock: type[time.monotonic] | None = None) -> None:  # type: ignore[valid-type]
        self.per_ip = per_ip
        self.per_network = per_network
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._w = _Windows(self._clock(), {}, {})

    def _estimate(self, key: str, now: float) -> float:
        w = self._w
        overlap = max(0.0, 1.0 - (now - w.start) / WINDOW_S)
        return w.current.get(key, 0) + w.previous.get(key, 0) * overlap

    def check(self, ip: str) -> str:
        """Count one signature from ``ip``; returns its network, or raises TooFast (then nothing is counted)."""
        network = network_of(ip)
        now = self._clock()
        with self._lock:
            w = self._w
            if now - w.start >= WINDOW_S:
                elapsed_windows = int((now - w.start) // WINDOW_S)
                previous = w.current if elapsed_windows == 1 else {}
                self._w = w = _Windows(w.start + elapsed_windows * WINDOW_S, {}, previous)
            for scope, key, limit in (
                ("address", "ip:" + ip, self.per_ip),
                ("network", "net:" + network, self.per_network),
            ):
                if limit and self._estimate(key, now) + 1 > limit:
                    raise TooFast(scope, limit, max(1.0, w.start + WINDOW_S - now))
            for key in ("ip:" + ip, "net:" + network):
                w.current[key] = w.current.get(key, 0) + 1
        return network
