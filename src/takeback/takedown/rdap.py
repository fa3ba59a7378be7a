"""RDAP lookups (RFC 9082 queries, RFC 9083 responses, RFC 9224 bootstrap): who registered a domain, who runs an IP
network, the network above it (the upstream provider that assigned the block), and their abuse contacts.

Plain httpx against the IANA bootstrap files rather than a WHOIS-scraping library: the bootstrap base URL is a
setting, so tests point it at a loopback server with recorded responses, and every response is treated as hostile
(size and time bounded, JSON shape checked; garbage is an ``RdapError``, never a crash).  URLs are checked with the
SSRF guard before each request; the RDAP servers come from IANA's bootstrap, not from the page being reported.
Results are cached in memory for ``cache_ttl_s``.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from takeback.discover.urlguard import Resolver, UnsafeURL, check_url, system_resolver

IANA_BOOTSTRAP = "https://data.iana.org/rdap/"
MAX_RESPONSE_BYTES = 1024 * 1024
#: At most this many names are tried when looking for the registered domain of a host (a.b.example.co.uk ...).
MAX_DOMAIN_TRIES = 4


class RdapError(Exception):
    """A lookup failed; ``code``: no_service, not_found, timeout, unreachable, bad_response, too_large, unsafe_url."""

    def __init__(self, code: str, message: str, url: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.url = url


@dataclass(frozen=True, slots=True)
class RdapContact:
    handle: str
    roles: tuple[str, ...]
    name: str
    email: str | None
    #: E.g. ("IANA Registrar ID", "292").
    public_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RdapResult:
    kind: str  # "domain" | "ip"
    query: str
    url: str
    handle: str
    name: str
    #: Registrar (domains) with its abuse contact, or the network's registrant (IPs).
    registrar: RdapContact | None
    abuse: RdapContact | None
    #: Every entity found, flattened (for the record).
    entities: tuple[RdapContact, ...] = ()
    #: Requests made, in order: (url, status or error code).
    path: tuple[tuple[str, str], ...] = field(default=())
    #: IP networks: first and last address, the parent network's handle and the RFC 9083 "up" link, when given.
    start_address: str | None = None
    end_address: str | None = None
    parent_handle: str | None = None
    up_link: str | None = None

    @property
    def registrar_iana_id(self) -> str | None:
        if self.registrar is None:
            return None
        return next((value for kind, value in self.registrar.public_ids if "iana" in kind.lower()), None)


def _vcard(entity: dict[str, Any]) -> tuple[str, str | None]:
    """(fn, first email) of an entity's jCard (RFC 7095); missing or malformed parts are empty."""
    name, email = "", None
    card = entity.get("vcardArray")
    if isinstance(card, list) and len(card) == 2 and isinstance(card[1], list):
        for prop in card[1]:
            if not isinstance(prop, list) or len(prop) < 4 or not isinstance(prop[0], str):
                continue
            value = prop[3]
            if prop[0] == "fn" and isinstance(value, str) and not name:
                name = value.strip()[:200]
            elif prop[0] == "email" and isinstance(value, str) and email is None and "@" in value:
                email = value.strip().removeprefix("mailto:")[:254]
    return name, email


def _contacts(entities: Any, depth: int = 0) -> list[RdapContact]:
    found: list[RdapContact] = []
    if not isinstance(entities, list) or depth > 4:
        return found
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        roles = tuple(str(r).lower() for r in entity.get("roles") or () if isinstance(r, str))
        name, email = _vcard(entity)
        ids = tuple(
            (str(p.get("type", "")), str(p.get("identifier", "")))
            for p in entity.get("publicIds") or ()
            if isinstance(p, dict)
        )
        found.append(RdapContact(str(entity.get("handle") or "")[:100], roles, name, email, ids))
        found.extend(_contacts(entity.get("entities"), depth + 1))
    return found


def _first(contacts: list[RdapContact], role: str) -> RdapContact | None:
    return next((c for c in contacts if role in c.roles), None)


def parse_domain(data: Any, query: str, url: str) -> RdapResult:
    if not isinstance(data, dict) or data.get("objectClassName") != "domain":
        raise RdapError("bad_response", "not an RDAP domain object", url)
    top = data.get("entities")
    contacts = _contacts(top)
    registrar = _first(contacts, "registrar")
    # The RDAP response profile nests the registrar's abuse contact inside the registrar entity.
    abuse = None
    if isinstance(top, list):
        for entity in top:
            if isinstance(entity, dict) and "registrar" in (entity.get("roles") or ()):
                abuse = _first(_contacts(entity.get("entities")), "abuse")
    abuse = abuse or _first(contacts, "abuse")
    name = str(data.get("ldhName") or data.get("unicodeName") or query).lower()[:255]
    return RdapResult("domain", query, url, str(data.get("handle") or "")[:100], name, registrar, abuse,
                      tuple(contacts))


def parse_ip(data: Any, query: str, url: str) -> RdapResult:
    if not isinstance(data, dict) or data.get("objectClassName") != "ip network":
        raise RdapError("bad_response", "not an RDAP ip network object", url)
    contacts = _contacts(data.get("entities"))
    owner = _first(contacts, "registrant") or _first(contacts, "administrative")
    name = str(data.get("name") or (owner.name if owner else "") or data.get("handle") or query)[:200]
    up = None
    for link in data.get("links") or ():
        if isinstance(link, dict) and link.get("rel") == "up" and isinstance(link.get("href"), str):
            up = link["href"][:2048]
            break
    return RdapResult("ip", query, url, str(data.get("handle") or "")[:100], name, owner,
                      _first(contacts, "abuse"), tuple(contacts),
                      start_address=_address(data.get("startAddress")), end_address=_address(data.get("endAddress")),
                      parent_handle=str(data["parentHandle"])[:100] if isinstance(data.get("parentHandle"), str)
                      else None, up_link=up)


def _address(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def covering_prefix(start: str, end: str) -> str | None:
    """The smallest prefix strictly larger than the network ``start``-``end``: an RFC 9082 ``ip/<prefix>/<len>``
    query for it answers with the network one level up (the block the network was carved from)."""
    try:
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
    except ValueError:
        return None
    if first.version != last.version or int(first) > int(last):
        return None
    bits = first.max_prefixlen
    span = int(first) ^ int(last)
    prefix = bits - span.bit_length()
    network = ipaddress.ip_network(f"{first}/{prefix}", strict=False)
    if network.network_address == first and int(network.broadcast_address) == int(last):
        prefix -= 1  # exactly one CIDR: ask for the block above it
    if prefix < 1:
        return None
    return str(ipaddress.ip_network(f"{first}/{prefix}", strict=False))


class RdapClient:
    """Async RDAP client with bootstrap and result caches.  One per process or per batch of resolutions."""

    def __init__(
        self,
        bootstrap_url: str = IANA_BOOTSTRAP,
        *,
        timeout_s: float = 10.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
        cache_ttl_s: float = 86_400.0,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap_url = bootstrap_url.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.cache_ttl_s = cache_ttl_s
        self.allow_private = allow_private
        self.resolver = resolver
        self._transport = transport
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self.requests = 0

    # --- plumbing ---------------------------------------------------------------------------------------------------
    def _cached(self, key: tuple[str, str]) -> Any | None:
        item = self._cache.get(key)
        if item is None or item[0] < self._clock():
            return None
        return item[1]

    def _remember(self, key: tuple[str, str], value: Any) -> Any:
        self._cache[key] = (self._clock() + self.cache_ttl_s, value)
        return value

    async def _get_json(self, url: str, path: list[tuple[str, str]]) -> Any:
        try:
            check_url(url, allow_private=self.allow_private, resolver=self.resolver)
        except UnsafeURL as exc:
            path.append((url, "unsafe_url"))
            raise RdapError("unsafe_url", exc.message, url) from None
        self.requests += 1
        headers = {"Accept": "application/rdap+json, application/json"}
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport, follow_redirects=True,
                                  max_redirects=3) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        path.append((url, "too_large"))
                        raise RdapError("too_large", f"response over {self.max_bytes} bytes", url)
                status = response.status_code
        except httpx.TimeoutException:
            path.append((url, "timeout"))
            raise RdapError("timeout", f"no answer within {self.timeout_s} s", url) from None
        except httpx.HTTPError as exc:
            path.append((url, "unreachable"))
            raise RdapError("unreachable", str(exc) or type(exc).__name__, url) from None
        path.append((url, str(status)))
        if status == 404:
            raise RdapError("not_found", "the registry has no such object", url)
        if status != 200:
            raise RdapError("bad_response", f"HTTP {status}", url)
        try:
            return json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError):
            raise RdapError("bad_response", "the response is not JSON", url) from None

    async def _services(self, registry: str, path: list[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
        cached = self._cached(("bootstrap", registry))
        if cached is not None:
            return cached
        data = await self._get_json(f"{self.bootstrap_url}{registry}.json", path)
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, list):
            raise RdapError("bad_response", f"bootstrap {registry}.json has no services list")
        parsed = []
        for service in services:
            if (isinstance(service, list) and len(service) >= 2 and isinstance(service[0], list)
                    and isinstance(service[1], list)):
                keys = [str(k).lower() for k in service[0] if isinstance(k, str)]
                urls = [u for u in service[1] if isinstance(u, str) and u.lower().startswith(("https://", "http://"))]
                if keys and urls:
                    # RFC 9224: prefer an https base URL.
                    urls.sort(key=lambda u: not u.lower().startswith("https://"))
                    parsed.append((keys, urls))
        return self._remember(("bootstrap", registry), parsed)

    # --- lookups ------------------------------------------------------------------------------------------------
    async def domain(self, host: str) -> RdapResult:
        """The registration of ``host``'s registered domain (tries the host, then shorter parents)."""
        host = host.strip().rstrip(".").lower()
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise RdapError("bad_response", f"{host!r} is not a valid domain name") from None
        cached = self._cached(("domain", host))
        if cached is not None:
            return cached
        labels = host.split(".")
        path: list[tuple[str, str]] = []
        services = await self._services("dns", path)
        base = None
        for keys, urls in services:
            if labels[-1] in keys:
                base = urls[0]
                break
        if base is None or len(labels) < 2:
            raise RdapError("no_service", f"no RDAP service for .{labels[-1]}")
        candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)][-MAX_DOMAIN_TRIES:]
        last: RdapError | None = None
        for name in candidates:
            url = f"{base.rstrip('/')}/domain/{quote(name)}"
            try:
                data = await self._get_json(url, path)
            except RdapError as exc:
                if exc.code != "not_found":
                    raise
                last = exc
                continue
            result = parse_domain(data, name, url)
            result = RdapResult(**{**_asdict(result), "path": tuple(path)})
            return self._remember(("domain", host), result)
        raise last or RdapError("not_found", f"no registration found for {host}")

    async def ip(self, address: str) -> RdapResult:
        """The network ``address`` belongs to, with its abuse contact."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise RdapError("bad_response", f"{address!r} is not an IP address") from None
        cached = self._cached(("ip", str(ip)))
        if cached is not None:
            return cached
        path: list[tuple[str, str]] = []
        services = await self._services("ipv4" if ip.version == 4 else "ipv6", path)
        best: tuple[int, str] | None = None
        for keys, urls in services:
            for key in keys:
                try:
                    net = ipaddress.ip_network(key, strict=False)
                except ValueError:
                    continue
                if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
                    best = (net.prefixlen, urls[0])
        if best is None:
            raise RdapError("no_service", f"no RDAP service for {ip}")
        url = f"{best[1].rstrip('/')}/ip/{ip}"
        data = await self._get_json(url, path)
        result = parse_ip(data, str(ip), url)
        result = RdapResult(**{**_asdict(result), "path": tuple(path)})
        return self._remember(("ip", str(ip)), result)

    async def parent(self, network: RdapResult) -> RdapResult:
        """The network above ``network`` (the upstream provider that assigned the block), from the same RDAP
        server: its RFC 9083 "up" link when it points there, otherwise an RFC 9082 query for the covering prefix.
        Raises ``RdapError`` (``not_found`` when there is nothing above, or only the same network again)."""
        if network.kind != "ip" or "/ip/" not in network.url:
            raise RdapError("not_found", "only IP networks have a parent network")
        base = network.url.rsplit("/ip/", 1)[0]
        cache_key = ("parent", network.handle or network.url)
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        url = None
        if network.up_link and _origin(network.up_link) == _origin(base) and "/ip/" in network.up_link:
            url = network.up_link  # a link to another server would let a response steer our requests elsewhere
        elif network.start_address and network.end_address:
            prefix = covering_prefix(network.start_address, network.end_address)
            if prefix is not None:
                url = f"{base}/ip/{prefix}"
        if url is None:
            raise RdapError("not_found", "the network names no range or parent to look up", network.url)
        path: list[tuple[str, str]] = []
        data = await self._get_json(url, path)
        result = parse_ip(data, network.query, url)
        if (result.handle and result.handle == network.handle) or (
                (result.start_address, result.end_address) == (network.start_address, network.end_address)):
            raise RdapError("not_found", "the registry knows no network above this one", url)
        result = RdapResult(**{**_asdict(result), "path": tuple(path)})
        return self._remember(cache_key, result)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _asdict(result: RdapResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in RdapResult.__slots__}  # type: ignore[attr-defined]
