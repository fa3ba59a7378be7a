"""The guarded fetcher, with an exception for exactly one host:port at a time: the demo's own loopback site.

Why not ``Fetcher(allow_networks=…)`` alone: a network allowance lets every port of 127.0.0.1 through (the
database, the match service itself, anything else listening on the machine).  Here the exception is an *origin*,
an IP literal and a port, and a request gets it only when its URL names exactly that origin:

* requests for an allowed origin go to a fetcher that may reach that one address and follows no redirects (a
  redirect could otherwise lead to another port of the same address);
* every other request goes to the ordinary guarded fetcher, which refuses private addresses.

Origins come from ``Settings.fetch_allow_origins``, which only code can set (``Settings.allowing_origins``): the
demo sets its site's origin, nothing reads one from the environment.  ``open_fetcher`` is what scans and re-checks
use, so the API, the dashboard and background re-checks all see the same exception and nothing wider.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import httpx

from takeback.discover.fetch import Fetcher, FetchPolicy, FetchResult

if TYPE_CHECKING:
    from takeback.config import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


class BadOrigin(ValueError):
    """An allow-list entry that is not ``IP:port`` (host names are refused: DNS could move them)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """An IP literal and a port, e.g. ``127.0.0.1:8701`` or ``[::1]:8701``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Origin:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise BadOrigin(f"{text!r} is not IP:port")
        host = host.removeprefix("[").removesuffix("]")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise BadOrigin(f"{text!r}: the host must be an IP address, not a name") from None
        return cls(str(address), int(port))

    @property
    def network(self) -> str:
        return f"{self.host}/{ipaddress.ip_address(self.host).max_prefixlen}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def origin_of(url: str) -> Origin | None:
    """The origin a URL names, when its host is an IP literal (the only kind an allowance can match)."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host
        address = ipaddress.ip_address(host)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme)
    return Origin(str(address), port) if port else None


class OriginFetcher:
    """A ``FetcherLike`` (``fetch`` only) that routes each URL to the pinned fetcher of its origin, or to the
    ordinary guarded one.  Use through ``open_fetcher``."""

    def __init__(self, general: Fetcher, pinned: dict[Origin, Fetcher]) -> None:
        self._general = general
        self._pinned = pinned

    def _for(self, url: str) -> Fetcher:
        origin = origin_of(url) if self._pinned else None
        return self._pinned.get(origin, self._general) if origin is not None else self._general

    async def fetch(self, url: str, *, max_bytes: int | None = None, accept: str | None = None) -> FetchResult:
        return await self._for(url).fetch(url, max_bytes=max_bytes, accept=accept)

    async def allowed_by_robots(self, url: str) -> bool:
        return await self._for(url).allowed_by_robots(url)


def parse_origins(entries: Iterable[str]) -> tuple[Origin, ...]:
    return tuple(dict.fromkeys(Origin.parse(e) for e in entries))


@asynccontextmanager
async def open_fetcher(
    settings: Settings, *, allow_networks: Sequence[str] = (), policy: FetchPolicy | None = None
) -> AsyncIterator[Fetcher | OriginFetcher]:
    """The fetcher a scan or re-check should use: the plain guarded ``Fetcher`` when no origin is allowed (the
    normal case), else an ``OriginFetcher`` with one pinned fetcher per allowed origin.  ``allow_networks`` is the
    tests' older, wider allowance and applies to the general fetcher only."""
    policy = policy or FetchPolicy.from_settings(settings)
    origins = parse_origins(settings.fetch_allow_origins)
    async with AsyncExitStack() as stack:
        general = await stack.enter_async_context(Fetcher(policy, allow_networks=allow_networks))
        if not origins:
            yield general
            return
        no_redirects = replace(policy, max_redirects=0)
        pinned = {
            o: await stack.enter_async_context(Fetcher(no_redirects, allow_networks=(o.network,))) for o in origins
        }
        yield OriginFetcher(general, pinned)
