"""The one way discover code talks to the web: guarded, bounded, polite.

Everything a crawl fetches is chosen by strangers, so every request is treated as hostile:

* **SSRF guard, DNS rebinding included.**  Each hop's host is resolved once, every answer must pass
  `urlguard` (public unicast, no metadata service), and the connection goes to one of *those* addresses: the
  HTTP client's resolver is the table of vetted answers, never DNS, and its socket factory refuses any destination
  the rule does not allow (`discover.pinned`), so a name that answers "public" to the check and "127.0.0.1" to the
  connect cannot win.  The URL keeps the host name, so the Host header, TLS SNI and certificate check, and
  connection pooling all use the name.
* **Redirects by hand.**  Each hop is checked like a new URL (scheme, credentials, guard, robots); loops and chains
  longer than `max_redirects` end the fetch.
* **Bounded.**  One deadline covers the whole fetch (DNS, connects, redirects and a body trickling in byte by
  byte); the body is counted after decompression while it streams, and the decompressor is never asked for more
  than the remaining budget, so a gzip bomb stops at `max_bytes`.  Only gzip and deflate are offered; a server that
  answers with another coding anyway gets a `decode_error`.
* **Polite.**  robots.txt per host (`discover.robots`), a per-host concurrency limit and a per-host delay.

`allow_networks` exists for tests: it lets a loopback test server through while the guard stays on for every
other address.

The HTTP client is aiohttp (keep-alive pool, C HTTP parser), not httpx as DESIGN.md first chose: on the crawl
benchmark httpx/httpcore spent about 1.8 ms of CPU per request on this 2-core machine and aiohttp about 0.12 ms,
and a crawl is tens of thousands of small requests.  Redirects and decompression stay ours (the client follows
none and decodes nothing), so every hop and every decoded byte still passes through the checks here.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import yarl

from takeback.discover import sniff
from takeback.discover.pinned import AddressGate, PeerResponse, PinnedResolver, VettedAddresses
from takeback.discover.robots import RobotsCache, robots_url
from takeback.discover.urlguard import Resolver, UnsafeURL, check_url, is_public_address, system_resolver

if TYPE_CHECKING:
    from takeback.config import Settings

ERROR_CODES = frozenset(
    {
        "unsafe_url",
        "robots_disallowed",
        "too_large",
        "timeout",
        "too_many_redirects",
        "bad_scheme",
        "connect_failed",
        "decode_error",
        "http_error",
    }
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT_ENCODING = "gzip, deflate"
DEFAULT_ACCEPT = "*/*"
_READ_CHUNK_HINT = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one Fetcher; `from_settings` builds the configured defaults."""

    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 20.0  # whole request, including a slow-loris body
    connect_timeout_s: float = 5.0
    max_redirects: int = 5
    per_host_concurrency: int = 2
    per_host_delay_s: float = 0.0  # politeness delay between requests to one host
    user_agent: str = "takeback-discover/0.1 (+https://github.com/takeback)"
    respect_robots: bool = True
    #: Largest robots.txt read (RFC 9309 asks crawlers to parse at least 500 KiB); the rest is ignored.
    robots_max_bytes: int = 512 * 1024
    #: A robots.txt Crawl-delay raises per_host_delay_s up to this much, never more (a hostile site could ask hours).
    max_crawl_delay_s: float = 10.0
    #: Open connections across all hosts.
    max_connections: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            max_bytes=settings.fetch_max_bytes,
            timeout_s=settings.fetch_timeout_s,
            connect_timeout_s=settings.fetch_connect_timeout_s,
            max_redirects=settings.fetch_max_redirects,
            per_host_concurrency=settings.fetch_per_host_concurrency,
            per_host_delay_s=settings.fetch_per_host_delay_s,
            user_agent=settings.fetch_user_agent,
            respect_robots=settings.fetch_respect_robots,
        )


@dataclass(frozen=True)
class FetchResult:
    url: str  # as requested
    final_url: str  # after redirects
    status: int
    headers: dict[str, str]  # lower-case names
    content_type: str  # sniffed from the bytes when the declared type lies; "" unknown
    body: bytes  # decompressed, at most max_bytes
    redirects: tuple[str, ...]
    server_ip: str | None
    elapsed_s: float


class FetchError(Exception):
    """A fetch that produced no response to act on; `code` is one of ERROR_CODES (a 4xx/5xx is a result, not this)."""

    def __init__(self, code: str, url: str, message: str) -> None:
        super().__init__(f"{code}: {message} ({url[:200]})")
        self.code = code
        self.url = url
        self.message = message


@dataclass(frozen=True, slots=True)
class _Hop:
    url: yarl.URL
    host: str  # the ASCII host the client will connect to (key of the vetted-address table)


@dataclass
class _HostGate:
    """Per-host concurrency and spacing: a semaphore, and the earliest time the next request may start."""

    semaphore: asyncio.Semaphore
    delay_s: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_start: float = 0.0

    async def __aenter__(self) -> None:
        await self.semaphore.acquire()
        if self.delay_s > 0:
            try:
                async with self.lock:
                    wait = self.next_start - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    self.next_start = time.monotonic() + self.delay_s
            except BaseException:
                self.semaphore.release()
                raise

    async def __aexit__(self, *exc: object) -> None:
        self.semaphore.release()


class _Budget:
    """A time allowance spent across several awaits (the hops of one fetch); overruns raise TimeoutError.
    ``async with budget.spend():`` charges the time inside to the allowance (a plain class, not a generator-based
    context manager: it runs twice for every request)."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def spend(self) -> _Spending:
        return _Spending(self)


class _Spending:
    __slots__ = ("_budget", "_started", "_timeout")

    def __init__(self, budget: _Budget) -> None:
        self._budget = budget
        self._started = 0.0
        self._timeout: asyncio.Timeout | None = None

    async def __aenter__(self) -> None:
        self._started = time.monotonic()
        self._timeout = asyncio.timeout(max(self._budget.left, 0.0))
        await self._timeout.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            assert self._timeout is not None
            return await self._timeout.__aexit__(*exc)
        finally:
            self._budget.left -= time.monotonic() - self._started


class _BoundedDecoder:
    """Content-Encoding decoder that never produces more than it is allowed to (bombs stop at the cap)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib: Any = None
        self._raw_deflate_tried = False
        if coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)

    def decode(self, data: bytes, limit: int) -> bytes:
        """Up to `limit` decoded bytes for this input; more exist only when the result has exactly `limit` bytes."""
        if self._zlib is None:
            return data[:limit] if len(data) > limit else data
        try:
            return self._zlib.decompress(data, max(limit, 1))
        except zlib.error:
            if self.coding == "deflate" and not self._raw_deflate_tried:
                # Some servers send raw deflate (no zlib header) under "deflate".
                self._raw_deflate_tried = True
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data, limit)
            raise


class Fetcher:
    """Async context manager; one per crawl; safe to share across tasks of one event loop."""

    def __init__(
        self,
        policy: FetchPolicy = FetchPolicy(),
        *,
        resolver: Resolver | None = None,
        allow_networks: Sequence[str] = (),
    ) -> None:
        self.policy = policy
        self._resolver: Resolver = resolver or system_resolver
        self._allow = tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks)
        self._allowed_cache: dict[str, bool] = {}
        self._vetted = VettedAddresses()
        self._session: aiohttp.ClientSession | None = None
        self._gates: dict[str, _HostGate] = {}
        self._robots = RobotsCache(self._load_robots, policy.user_agent)
        self._headers: dict[str, dict[str, str]] = {}
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=min(policy.connect_timeout_s, policy.timeout_s),
            sock_read=policy.timeout_s,
        )

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(
            limit=max(1, self.policy.max_connections),
            limit_per_host=0,  # the per-host gate below is the limit (it also spaces requests)
            use_dns_cache=False,
            resolver=PinnedResolver(self._vetted),
            socket_factory=AddressGate(self._may_connect),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # a crawl keeps no cookies and sends none
            auto_decompress=False,  # decoded here, within the size cap
            trust_env=False,  # no proxies or .netrc credentials from the environment
            response_class=PeerResponse,
            timeout=self._timeout,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str, *, max_bytes: int | None = None, accept: str | None = None) -> FetchResult:
        """GET `url` within the policy; raises FetchError.  A 404 or 500 is a FetchResult with that status."""
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        return await self._fetch(url, limit, accept or DEFAULT_ACCEPT, robots=self.policy.respect_robots)

    async def allowed_by_robots(self, url: str) -> bool:
        """Whether robots.txt lets our user agent fetch `url` (fetches and caches the host's robots.txt)."""
        return await self._robots.allowed(url)

    # --- internals ----------------------------------------------------------------------------------------------

    async def _load_robots(self, url: str) -> FetchResult:
        return await self._fetch(url, self.policy.robots_max_bytes, "text/plain, */*", robots=False, truncate=True)

    async def _fetch(self, url: str, limit: int, accept: str, *, robots: bool, truncate: bool = False) -> FetchResult:
        """The redirect loop.  The deadline counts time spent resolving and talking to servers, not time queued
        behind the per-host limit or the politeness delay (a crawl may queue many URLs for one host)."""
        if self._session is None:
            raise RuntimeError("use the Fetcher as an async context manager")
        start = time.perf_counter()
        budget = _Budget(self.policy.timeout_s)
        current = url
        redirects: list[str] = []
        seen = {url}
        try:
            while True:
                hop = await self._vet(current, budget)
                if robots and not await self._robots.allowed(str(hop.url)):
                    raise FetchError("robots_disallowed", current, "robots.txt disallows this URL for us")
                gate = self._gate(hop.host)
                if robots:
                    gate.delay_s = max(gate.delay_s, self._robots_delay(hop))
                async with gate, budget.spend():
                    outcome = await self._exchange(hop, current, limit, accept, truncate)
                if isinstance(outcome, str):  # a redirect
                    if outcome in seen:
                        raise FetchError("too_many_redirects", url, f"redirect loop back to {outcome[:200]}")
                    if len(redirects) >= self.policy.max_redirects:
                        raise FetchError("too_many_redirects", url, f"more than {self.policy.max_redirects} redirects")
                    seen.add(outcome)
                    redirects.append(outcome)
                    current = outcome
                    continue
                status, headers, body, server_ip = outcome
                return FetchResult(
                    url=url,
                    final_url=current,
                    status=status,
                    headers=headers,
                    content_type=sniff.content_type(body[: sniff.HEAD_BYTES], headers.get("content-type")),
                    body=body,
                    redirects=tuple(redirects),
                    server_ip=server_ip,
                    elapsed_s=time.perf_counter() - start,
                )
        except TimeoutError:
            raise FetchError("timeout", current, f"no complete answer within {self.policy.timeout_s:g} s") from None

    def _gate(self, host: str) -> _HostGate:
        gate = self._gates.get(host)
        if gate is None:
            gate = _HostGate(asyncio.Semaphore(max(1, self.policy.per_host_concurrency)), self.policy.per_host_delay_s)
            self._gates[host] = gate
        return gate

    def _robots_delay(self, hop: _Hop) -> float:
        delay = self._robots.crawl_delay(str(hop.url))
        return min(delay, self.policy.max_crawl_delay_s) if delay else 0.0

    async def _vet(self, url: str, budget: _Budget) -> _Hop:
        """Shape, scheme and SSRF checks for one hop; records the vetted addresses for the client's resolver.
        Only the name lookup can take time, so only it is charged to the fetch's deadline."""
        scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
        if scheme not in ("http", "https"):
            raise FetchError("bad_scheme", str(url), f"only http and https are fetched, not {scheme or 'no scheme'!r}")
        try:
            as_given = check_url(url, allow_private=True, resolver=None)  # the shape before any normalising
            parsed = yarl.URL(url)  # what the client will request
            raw_host = parsed.raw_host
            if not raw_host:
                raise UnsafeURL("the URL has no host")
            host = raw_host.lower()
            normalised = str(parsed)
            if _is_ip(host):
                # check_url is pure: the same text needs no second look.
                checked = as_given if normalised == url else check_url(normalised, allow_private=True, resolver=None)
            else:
                async with budget.spend():
                    checked = await asyncio.to_thread(
                        check_url, normalised, allow_private=True, resolver=self._resolver
                    )
            if checked.host != host.rstrip(".").split("%", 1)[0]:
                raise UnsafeURL(f"host {host!r} is read differently by the guard ({checked.host!r})")
        except UnsafeURL as exc:
            raise FetchError("unsafe_url", url, exc.message) from None
        except (UnicodeError, ValueError, TypeError) as exc:
            raise FetchError("unsafe_url", url, f"the URL cannot be parsed: {exc}") from None
        for address in checked.addresses:
            if not self._may_connect(address):
                raise FetchError("unsafe_url", url, f"host {host!r} points to a non-public address ({address})")
        self._vetted.set(host, checked.addresses)
        return _Hop(url=parsed, host=host)

    def _may_connect(self, address: str) -> bool:
        """The guard's address rule, also enforced by the socket factory on every connection."""
        return is_public_address(address) or self._allowed(address)

    def _allowed(self, address: str) -> bool:
        if not self._allow:
            return False
        known = self._allowed_cache.get(address)
        if known is None:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            known = any(ip.version == net.version and ip in net for net in self._allow)
            if len(self._allowed_cache) >= 4096:
                self._allowed_cache.clear()
            self._allowed_cache[address] = known
        return known

    def _request_headers(self, accept: str) -> dict[str, str]:
        headers = self._headers.get(accept)
        if headers is None:
            headers = {"User-Agent": self.policy.user_agent, "Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
            self._headers[accept] = headers
        return headers

    async def _exchange(
        self, hop: _Hop, current: str, limit: int, accept: str, truncate: bool
    ) -> str | tuple[int, dict[str, str], bytes, str | None]:
        """One request: the absolute Location of a redirect, or (status, headers, body, server ip)."""
        assert self._session is not None
        try:
            async with self._session.get(
                hop.url, headers=self._request_headers(accept), allow_redirects=False, timeout=self._timeout
            ) as response:
                headers = _lower_headers(response.headers.items())
                if response.status in REDIRECT_STATUSES and "location" in headers:
                    return _join_location(hop.url, headers["location"], current)
                body = await _read_body(response, headers, limit, truncate, current)
                peer = response.peer if isinstance(response, PeerResponse) else None
                return response.status, headers, body, peer
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise FetchError("timeout", current, f"timed out: {type(exc).__name__}") from None
        except aiohttp.ClientConnectorError as exc:
            raise FetchError("connect_failed", current, f"cannot connect: {exc}") from None
        except aiohttp.NonHttpUrlClientError as exc:
            raise FetchError("bad_scheme", current, str(exc)) from None
        except aiohttp.InvalidURL as exc:
            raise FetchError("unsafe_url", current, f"the client refused the URL: {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchError("http_error", current, f"broken HTTP exchange: {type(exc).__name__}: {exc}") from None


async def _read_body(
    response: aiohttp.ClientResponse, headers: dict[str, str], limit: int, truncate: bool, url: str
) -> bytes:
    coding = _content_coding(headers.get("content-encoding", ""), url)
    if not coding and not truncate:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError("too_large", url, f"Content-Length {declared} is above the {limit}-byte cap")
    decoder = _BoundedDecoder(coding)
    parts: list[bytes] = []
    size = 0
    try:
        async for raw in response.content.iter_chunked(_READ_CHUNK_HINT):
            data = decoder.decode(raw, limit - size + 1)
            size += len(data)
            parts.append(data)
            if size > limit:  # the decoder stops at limit + 1: one byte over is enough to know
                break
    except zlib.error as exc:
        raise FetchError("decode_error", url, f"the {coding} body does not decompress: {exc}") from None
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    if size > limit:
        if not truncate:
            raise FetchError("too_large", url, f"the body is larger than the {limit}-byte cap")
        body = body[:limit]
    return body


def _content_coding(header: str, url: str) -> str:
    codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return ""
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(
            "decode_error", url, f"unsupported Content-Encoding {header[:100]!r} (we offer {ACCEPT_ENCODING})"
        )
    return codings[0]


def _join_location(base: yarl.URL, location: str, current: str) -> str:
    location = location.strip()
    scheme = urlsplit(location).scheme.lower() if ":" in location.split("/", 1)[0] else ""
    if scheme and scheme not in ("http", "https"):
        raise FetchError("bad_scheme", current, f"redirect to a {scheme!r} URL")
    try:
        return str(base.join(yarl.URL(location)))
    except (UnicodeError, ValueError, TypeError) as exc:
        raise FetchError("unsafe_url", current, f"redirect to an unparseable URL: {exc}") from None


def _lower_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


__all__ = ["ERROR_CODES", "FetchError", "FetchPolicy", "FetchResult", "Fetcher", "robots_url"]
