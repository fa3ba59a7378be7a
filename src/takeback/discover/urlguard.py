"""Is this URL safe for the server to connect to?  The SSRF guard shared by webhooks and the crawler.

A URL given by a client (a webhook) or found on the web (a crawl) must never make the server talk to itself, to the
machine's private network or to a cloud metadata service.  The check is pure: name resolution is passed in, so the
same function decides at registration time and again just before each connection (DNS can change in between), and
tests can resolve names however they like.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> addresses the name resolves to (raises OSError when it does not resolve).
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2048
_SCHEMES = {"http": 80, "https": 443}
#: Spaces, C0 controls and DEL: never part of a URL we accept.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")

#: Networks no outside URL may point into, beyond what the `ipaddress` flags already cover.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "64:ff9b::/96",  # NAT64: embeds an IPv4 address that is checked separately
        "64:ff9b:1::/48",
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo etc.)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: embeds an IPv4 address
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
#: Cloud metadata endpoints that are not all inside the networks above (e.g. AWS's IPv6 one).
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))


class UnsafeURL(ValueError):
    """The URL may not be used; `code` is machine-readable (always "unsafe_url"), the message says why."""

    code = "unsafe_url"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class CheckedURL:
    """A URL that passed the check, with the addresses it resolved to (connect to one of these, not the name)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for host (IPv4 and IPv6), in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]).split("%", 1)[0], None)
    return list(seen)


def is_public_address(address: str | IPAddress) -> bool:
    """True when the address is globally routable unicast and not a metadata service.

    IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible, 6to4 and NAT64 forms are judged by the IPv4 address inside them, so
    `::ffff:127.0.0.1` is loopback like `127.0.0.1`.
    """
    if isinstance(address, str):
        return _is_public_text(address)
    return _is_public(address)


@functools.lru_cache(maxsize=4096)
def _is_public_text(address: str) -> bool:
    """`is_public_address` for text, remembered: a crawl asks about the same few addresses for every request."""
    return _is_public(address)


def _is_public(address: str | IPAddress) -> bool:
    try:
        ip = address if isinstance(address, IPAddress) else ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return _is_public(embedded)
    if ip in _METADATA:
        return False
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        return False
    return not any(ip.version == net.version and ip in net for net in _BLOCKED_NETWORKS)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    packed = ip.packed
    if packed[:12] == bytes(12) and packed[12:] not in (bytes(4), b"\x00\x00\x00\x01"):
        return ipaddress.IPv4Address(packed[12:])  # IPv4-compatible ::a.b.c.d (deprecated but still routed by some)
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(packed[12:])
    return None


def parse_url(url: str) -> tuple[SplitResult, str, int]:
    """Split and check the URL's shape: http(s), a host, no credentials, a sane port. Returns (parts, host, port)."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _BAD_CHARS.search(url):
        raise UnsafeURL("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise UnsafeURL(f"the URL cannot be parsed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise UnsafeURL("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("credentials in the URL are not allowed")
    if not host:
        raise UnsafeURL("the URL has no host")
    if port == 0:
        raise UnsafeURL("port 0 is not allowed")
    try:
        host = host.encode("idna").decode("ascii") if not _is_ip_literal(host) else host
    except UnicodeError:
        raise UnsafeURL("the host name is not a valid internationalised domain name") from None
    return parts, host.rstrip(".").lower() or host, port or _SCHEMES[scheme]


@functools.lru_cache(maxsize=4096)
def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = system_resolver) -> CheckedURL:
    """Check a URL before connecting to it; raises `UnsafeURL`.

    Every address the host resolves to must be public (one private answer is enough to refuse: an attacker controls
    which answer a later connection uses).  `allow_private` skips the address rule (for tests and closed networks)
    but keeps the shape rules.  `resolver=None` checks only IP literals and the shape (no DNS), for places that
    will check again with resolution before connecting.
    """
    parts, host, port = parse_url(url)
    scheme = parts.scheme.lower()
    if _is_ip_literal(host):
        addresses: tuple[str, ...] = (host.split("%", 1)[0],)
    elif resolver is None:
        addresses = ()
    else:
        if not allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise UnsafeURL(f"host {host!r} is a local name")
        try:
            addresses = tuple(resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise UnsafeURL(f"host {host!r} does not resolve: {exc}") from None
        if not addresses:
            raise UnsafeURL(f"host {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeURL(f"host {host!r} points to a non-public address ({address})")
    return CheckedURL(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
