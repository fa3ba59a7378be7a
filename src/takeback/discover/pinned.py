"""The connection layer under the Fetcher: aiohttp may open sockets only to addresses the SSRF guard vetted.

The guard (``urlguard``) decides on the addresses a name resolves to; DNS rebinding wins whenever the HTTP client
looks the name up again when it connects.  So the client never resolves anything itself:

* ``PinnedResolver`` is aiohttp's resolver, and all it knows is the table of vetted answers (``VettedAddresses``)
  that the Fetcher fills after each check: a name that was not vetted does not resolve at all.
* ``AddressGate`` is aiohttp's socket factory, the last step before ``connect()``: every socket's destination
  address must pass the same public-or-allowed rule as the guard, whatever name (or IP literal, which aiohttp
  connects without asking the resolver) led to it.  A parser disagreement between the guard and the client about
  which host a URL names can therefore refuse a fetch but never reach a private address.
* ``PeerResponse`` records the address the response actually came from (evidence for a notice), read once from
  the connection's transport before aiohttp may release it to the pool.

Pooled keep-alive connections stay on the address they were opened to, which was vetted when they were opened.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

if TYPE_CHECKING:
    from aiohappyeyeballs import AddrInfoType

#: address -> may we connect to it (the Fetcher's public-or-allowed rule).
AddressRule = Callable[[str], bool]


def table_key(host: str) -> str:
    """The form a host name is filed and looked up under (aiohttp keeps one trailing dot on FQDNs)."""
    return host.lower().rstrip(".")


class VettedAddresses:
    """host name -> the addresses the guard last accepted for it."""

    def __init__(self) -> None:
        self._table: dict[str, tuple[str, ...]] = {}

    def set(self, host: str, addresses: tuple[str, ...]) -> None:
        self._table[table_key(host)] = addresses

    def get(self, host: str) -> tuple[str, ...]:
        return self._table.get(table_key(host), ())


class PinnedResolver(AbstractResolver):
    """Answers only from the vetted table; a name nobody vetted raises (aiohttp reports a connect failure)."""

    def __init__(self, vetted: VettedAddresses) -> None:
        self._vetted = vetted

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._vetted.get(host)
        if not addresses:
            raise OSError(f"refusing to connect to {host!r}: no vetted address")
        out: list[ResolveResult] = []
        for address in addresses:
            fam = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (socket.AF_UNSPEC, fam):
                continue
            out.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": fam,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                }
            )
        if not out:
            raise OSError(f"refusing to connect to {host!r}: no vetted address of the wanted family")
        return out

    async def close(self) -> None:
        return None


class AddressGate:
    """aiohttp's socket factory: refuses to create a socket for a destination the rule does not allow."""

    def __init__(self, allowed: AddressRule) -> None:
        self._allowed = allowed

    def __call__(self, addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if not self._allowed(address):
            raise OSError(f"refusing to open a socket to a non-public address ({address})")
        return socket.socket(family=family, type=kind, proto=proto)


class PeerResponse(aiohttp.ClientResponse):
    """A response that knows the IP address of the server it was read from (None when the transport hides it)."""

    peer: str | None = None

    async def start(self, connection: Any) -> aiohttp.ClientResponse:
        transport = getattr(connection, "transport", None)
        if transport is not None:
            peer = transport.get_extra_info("peername")
            if peer:
                self.peer = str(peer[0])
        return await super().start(connection)
