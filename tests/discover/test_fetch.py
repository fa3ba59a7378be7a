"""The Fetcher against a loopback server: results, redirects, decoding, the SSRF guard with fake and rebinding DNS,
the test-only allow-list, per-host limits, and the size cap for any body length and chunking."""

from __future__ import annotations

import ast
import asyncio
import gzip
import itertools
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from takeback.config import Settings
from takeback.discover.fetch import Fetcher, FetchError, FetchPolicy, FetchResult, _BoundedDecoder
from takeback.discover.pinned import AddressGate, PinnedResolver, VettedAddresses
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, Request, WebServer, redirect

POLICY = FetchPolicy(max_bytes=100_000, timeout_s=2.0, connect_timeout_s=1.0, respect_robots=False)
PAGE = b"<!doctype html><html><head><title>t</title></head><body>hello</body></html>"


def run(coro_fn: Callable[[Fetcher], Any], policy: FetchPolicy = POLICY, **kwargs: Any) -> Any:
    async def go() -> Any:
        async with Fetcher(policy, **kwargs) as fetcher:
            return await coro_fn(fetcher)

    return asyncio.run(go())


def outcome(url: str, policy: FetchPolicy = POLICY, **kwargs: Any) -> FetchResult | FetchError:
    async def one(fetcher: Fetcher) -> FetchResult | FetchError:
        try:
            return await fetcher.fetch(url)
        except FetchError as exc:
            return exc

    return run(one, policy, **kwargs)


def fixed(*addresses: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(addresses)


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    png = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 32
    routes = {
        "/": Reply(body=PAGE, headers={"X-Custom": "Yes"}),
        "/png-as-text": Reply(body=png, content_type="text/plain"),
        "/missing": Reply(status=404, body=b"<html>gone</html>"),
        "/broken": Reply(status=503, body=b"busy", content_type="text/plain"),
        "/to-root": redirect("/", 301),
        "/to-absolute": lambda request: redirect(f"http://{request.headers['host']}/to-root", 307),
        "/see-other": redirect("/", 303),
        "/no-location": Reply(status=302, body=b"nowhere"),
        "/gzip": Reply(body=gzip.compress(PAGE), headers={"Content-Encoding": "gzip"}),
        "/deflate": Reply(body=zlib.compress(PAGE), headers={"Content-Encoding": "deflate"}),
        "/raw-deflate": Reply(body=zlib.compress(PAGE)[2:-4], headers={"Content-Encoding": "deflate"}),
        "/echo-headers": lambda request: Reply(body=repr(sorted(request.headers.items())).encode()),
    }
    for i in range(10):
        routes[f"/chain/{i}"] = redirect(f"/chain/{i + 1}")
    routes["/chain/10"] = Reply(body=PAGE)
    with WebServer(routes) as site:
        yield site


# --- results -------------------------------------------------------------------------------------------------------


def test_plain_page(server: WebServer) -> None:
    result = outcome(server.url("/"), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert (result.status, result.body, result.content_type) == (200, PAGE, "text/html")
    assert result.url == result.final_url == server.url("/")
    assert result.headers["x-custom"] == "Yes"
    assert all(name == name.lower() for name in result.headers)
    assert result.server_ip == "127.0.0.1"
    assert result.redirects == ()
    assert 0 < result.elapsed_s < 2


def test_request_headers_are_ours_only(server: WebServer) -> None:
    result = outcome(server.url("/echo-headers"), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    sent = dict(ast.literal_eval(result.body.decode()))  # the server's repr of what it received
    assert sent["user-agent"] == POLICY.user_agent
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "cookie" not in sent and "authorization" not in sent


def test_declared_type_is_overridden_by_the_bytes(server: WebServer) -> None:
    result = outcome(server.url("/png-as-text"), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert result.content_type == "image/png"


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 503), ("/no-location", 302)])
def test_http_errors_are_results(server: WebServer, path: str, status: int) -> None:
    result = outcome(server.url(path), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert result.status == status


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/raw-deflate"])
def test_compressed_bodies_are_decoded(server: WebServer, path: str) -> None:
    result = outcome(server.url(path), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert result.body == PAGE


def test_per_call_max_bytes(server: WebServer) -> None:
    async def go(fetcher: Fetcher) -> tuple[FetchResult, FetchError]:
        small = await fetcher.fetch(server.url("/"), max_bytes=len(PAGE))
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(server.url("/gzip"), max_bytes=len(PAGE) - 1)
        return small, info.value

    small, error = run(go, allow_networks=ALLOW_LOOPBACK)
    assert small.body == PAGE
    assert error.code == "too_large"


# --- redirects -----------------------------------------------------------------------------------------------------


def test_redirects_followed_and_recorded(server: WebServer) -> None:
    result = outcome(server.url("/to-absolute"), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert result.redirects == (server.url("/to-root"), server.url("/"))
    assert result.final_url == server.url("/")
    assert result.url == server.url("/to-absolute")
    assert result.body == PAGE


def test_redirect_limit_is_exact(server: WebServer) -> None:
    policy = FetchPolicy(max_redirects=10, timeout_s=2.0, respect_robots=False)
    result = outcome(server.url("/chain/0"), policy, allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert len(result.redirects) == 10
    short = FetchPolicy(max_redirects=9, timeout_s=2.0, respect_robots=False)
    error = outcome(server.url("/chain/0"), short, allow_networks=ALLOW_LOOPBACK)
    assert isinstance(error, FetchError)
    assert error.code == "too_many_redirects"


# --- the SSRF guard --------------------------------------------------------------------------------------------------


def test_loopback_refused_without_the_allow_list(server: WebServer) -> None:
    before = sum(server.hits.values())
    error = outcome(server.url("/"))
    assert isinstance(error, FetchError)
    assert error.code == "unsafe_url"
    assert sum(server.hits.values()) == before


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.0.0.7",),
        ("192.168.1.20",),
        ("172.16.0.1",),
        ("169.254.169.254",),
        ("100.100.100.200",),
        ("127.0.0.1",),
        ("::1",),
        ("fe80::1",),
        ("fd00:ec2::254",),
        ("::ffff:192.168.0.1",),
        ("93.184.216.34", "10.0.0.1"),  # one private answer among public ones is enough
        ("0.0.0.0",),
        ("224.0.0.251",),
    ],
)
def test_public_looking_names_resolving_privately_refused(addresses: tuple[str, ...]) -> None:
    error = outcome("http://cdn.example.com/photo.jpg", resolver=fixed(*addresses))
    assert isinstance(error, FetchError)
    assert error.code == "unsafe_url"
    assert "non-public" in error.message


def test_unresolvable_name_refused() -> None:
    def nothing(host: str, port: int) -> list[str]:
        raise OSError("NXDOMAIN")

    error = outcome("http://nowhere.example/", resolver=nothing)
    assert isinstance(error, FetchError)
    assert error.code == "unsafe_url"


def test_name_is_connected_through_the_vetted_address(server: WebServer) -> None:
    """site.test exists only in the fake resolver: the page arrives only if the connection used its answer."""
    result = outcome(f"http://site.test:{server.port}/", resolver=fixed("127.0.0.1"), allow_networks=ALLOW_LOOPBACK)
    assert isinstance(result, FetchResult)
    assert result.body == PAGE
    assert result.server_ip == "127.0.0.1"


class Rebinder:
    """Answers the allowed loopback address first, then a forbidden one: classic DNS rebinding."""

    def __init__(self, first: Sequence[str], then: Sequence[str]) -> None:
        self.first, self.then = list(first), list(then)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.calls += 1
            return self.first if self.calls == 1 else self.then


def test_rebinding_cannot_redirect_the_connection(server: WebServer) -> None:
    """After the check, DNS would say 127.0.0.2 (forbidden, and nothing listens there): the fetch still reaches
    127.0.0.1 because the transport never asks DNS again; the next fetch sees the new answer and is refused."""
    rebinder = Rebinder(["127.0.0.1"], ["127.0.0.2"])

    async def go(fetcher: Fetcher) -> tuple[FetchResult, FetchError]:
        first = await fetcher.fetch(f"http://rebind.test:{server.port}/")
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(f"http://rebind.test:{server.port}/")
        return first, info.value

    first, second = run(go, resolver=rebinder, allow_networks=ALLOW_LOOPBACK)
    assert first.server_ip == "127.0.0.1"
    assert first.body == PAGE
    assert second.code == "unsafe_url"
    assert rebinder.calls == 2  # exactly one lookup per fetch: the connection did not resolve again


def test_rebinding_caught_on_a_redirect_hop(server: WebServer) -> None:
    """Each redirect hop is re-resolved and re-checked; a hop that now resolves privately is refused."""
    rebinder = Rebinder(["127.0.0.1"], ["169.254.169.254"])
    error = outcome(f"http://rebind.test:{server.port}/to-root", resolver=rebinder, allow_networks=ALLOW_LOOPBACK)
    assert isinstance(error, FetchError)
    assert error.code == "unsafe_url"
    assert rebinder.calls == 2


def test_allow_list_opens_only_what_it_lists(server: WebServer) -> None:
    narrow = ("127.0.0.1/32",)
    for addresses in (["127.0.0.2"], ["10.0.0.1"], ["169.254.169.254"], ["::1"], ["127.0.0.1", "10.0.0.1"]):
        error = outcome(f"http://x.test:{server.port}/", resolver=fixed(*addresses), allow_networks=narrow)
        assert isinstance(error, FetchError), addresses
        assert error.code == "unsafe_url"
    ok = outcome(f"http://x.test:{server.port}/", resolver=fixed("127.0.0.1"), allow_networks=narrow)
    assert isinstance(ok, FetchResult)


class Answers:
    """A resolver that gives one prepared answer per lookup, in order (the last one repeats)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = [list(a) for a in answers]
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.calls += 1
            return self.answers[min(self.calls, len(self.answers)) - 1]


def test_pooled_connection_is_reused_but_every_hop_is_vetted_again() -> None:
    """A keep-alive connection to a vetted host does not exempt later requests from the guard: the second fetch
    rides the pooled connection, and its redirect hop, now resolving to the metadata address, is refused even
    though a connection to that very host and port is open and idle."""
    routes = {"/": Reply(body=PAGE), "/to-root": redirect("/", 301)}
    with WebServer(routes) as site:
        answers = Answers(["127.0.0.1"], ["127.0.0.1"], ["169.254.169.254"])

        async def go(fetcher: Fetcher) -> tuple[FetchResult, FetchError]:
            first = await fetcher.fetch(f"http://pool.test:{site.port}/")
            with pytest.raises(FetchError) as info:
                await fetcher.fetch(f"http://pool.test:{site.port}/to-root")
            return first, info.value

        first, error = run(go, resolver=answers, allow_networks=ALLOW_LOOPBACK)
        assert first.body == PAGE
        assert error.code == "unsafe_url"
        assert answers.calls == 3  # one lookup per hop, pooled or not
        assert (site.hits["/"], site.hits["/to-root"]) == (1, 1)
        assert site.connections == 1  # the second request did go over the pooled connection


def test_keep_alive_connections_are_reused() -> None:
    with WebServer(default=Reply(body=PAGE)) as site:
        policy = FetchPolicy(per_host_concurrency=2, timeout_s=5.0, respect_robots=False)

        async def go(fetcher: Fetcher) -> list[FetchResult]:
            return list(await asyncio.gather(*(fetcher.fetch(site.url(f"/p{i}")) for i in range(40))))

        results = run(go, policy, allow_networks=ALLOW_LOOPBACK)
        assert all(r.status == 200 for r in results)
        assert site.connections <= 2


def test_socket_factory_refuses_unvetted_destinations_whatever_the_table_says(server: WebServer) -> None:
    """Defence in depth: even a poisoned vetted-address table (a guard bug) cannot open a socket to a private
    address, because the socket factory applies the address rule to every connection itself."""
    before = sum(server.hits.values())

    async def go() -> Exception:
        async with Fetcher(POLICY) as fetcher:  # no allow-list: loopback is forbidden
            fetcher._vetted.set("poisoned.test", ("127.0.0.1",))
            assert fetcher._session is not None
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                async with fetcher._session.get(f"http://poisoned.test:{server.port}/"):
                    pass
            with pytest.raises(aiohttp.ClientConnectorError):  # an IP literal skips the resolver, not the gate
                async with fetcher._session.get(server.url("/")):
                    pass
            return info.value

    error = asyncio.run(go())
    assert "non-public address (127.0.0.1)" in str(error.os_error)
    assert sum(server.hits.values()) == before


def test_address_gate_applies_the_rule() -> None:
    gate = AddressGate(lambda address: address == "93.184.216.34")
    with pytest.raises(OSError, match="non-public"):
        gate((socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", 80)))
    sock = gate((socket.AF_INET, socket.SOCK_STREAM, 0, "", ("93.184.216.34", 80)))
    sock.close()


def test_pinned_resolver_answers_only_vetted_addresses() -> None:
    vetted = VettedAddresses()
    vetted.set("Site.Test.", ("93.184.216.34", "2606:2800:220:1::1"))

    async def go() -> list[str]:
        resolver = PinnedResolver(vetted)
        answers = await resolver.resolve("site.test", 443, family=socket.AF_UNSPEC)
        only_v4 = await resolver.resolve("SITE.TEST.", 443, family=socket.AF_INET)
        assert [a["host"] for a in only_v4] == ["93.184.216.34"]
        return [a["host"] for a in answers]

    assert asyncio.run(go()) == ["93.184.216.34", "2606:2800:220:1::1"]


def test_pinned_resolver_refuses_names_it_has_not_vetted() -> None:
    resolver = PinnedResolver(VettedAddresses())

    async def go() -> None:
        await resolver.resolve("unvetted.example", 80)

    with pytest.raises(OSError, match="no vetted address"):
        asyncio.run(go())


def test_connect_failure_is_reported() -> None:
    with WebServer() as gone:
        port = gone.port
    error = outcome(f"http://127.0.0.1:{port}/", allow_networks=ALLOW_LOOPBACK)
    assert isinstance(error, FetchError)
    assert error.code == "connect_failed"


# --- per-host limits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_per_host_concurrency_holds(limit: int) -> None:
    with WebServer(default=Reply(body=PAGE, delay_s=0.05)) as site:
        policy = FetchPolicy(per_host_concurrency=limit, timeout_s=5.0, respect_robots=False)

        async def go(fetcher: Fetcher) -> list[FetchResult]:
            return list(await asyncio.gather(*(fetcher.fetch(site.url(f"/p{i}")) for i in range(4 * limit + 2))))

        results = run(go, policy, allow_networks=ALLOW_LOOPBACK)
        assert all(r.status == 200 for r in results)
        assert site.max_in_flight == limit


def test_per_host_delay_spaces_requests() -> None:
    starts: list[float] = []

    def stamp(request: Request) -> Reply:
        starts.append(time.monotonic())
        return Reply(body=PAGE)

    with WebServer(default=stamp) as site:
        policy = FetchPolicy(per_host_concurrency=4, per_host_delay_s=0.1, timeout_s=5.0, respect_robots=False)

        async def go(fetcher: Fetcher) -> None:
            await asyncio.gather(*(fetcher.fetch(site.url(f"/p{i}")) for i in range(4)))

        run(go, policy, allow_networks=ALLOW_LOOPBACK)
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert len(starts) == 4
    assert min(gaps) >= 0.09


def test_queueing_behind_the_host_limit_does_not_count_against_the_deadline() -> None:
    with WebServer(default=Reply(body=PAGE, delay_s=0.2)) as site:
        policy = FetchPolicy(per_host_concurrency=1, timeout_s=0.5, respect_robots=False)

        async def go(fetcher: Fetcher) -> list[FetchResult]:
            return list(await asyncio.gather(*(fetcher.fetch(site.url(f"/p{i}")) for i in range(5))))

        results = run(go, policy, allow_networks=ALLOW_LOOPBACK)  # ~1 s in all, each under 0.5 s of work
        assert len(results) == 5


# --- the size cap, for any body and chunking -------------------------------------------------------------------

CAP = 3000


class Holder:
    body: bytes = b""
    chunks: list[int] = [1]  # noqa: RUF012 - mutable per example on purpose
    coding: str = ""


def _chunked(request: Request) -> Reply:
    data = Holder.body
    if Holder.coding == "gzip":
        data = gzip.compress(data, 1)
    elif Holder.coding == "deflate":
        data = zlib.compress(data, 1)

    def pieces() -> Iterator[bytes]:
        i = 0
        sizes = Holder.chunks
        k = 0
        while i < len(data):
            size = sizes[k % len(sizes)]
            yield data[i : i + size]
            i += size
            k += 1

    headers = {"Content-Encoding": Holder.coding} if Holder.coding else {}
    return Reply(body=pieces(), content_type="application/octet-stream", headers=headers)


@pytest.fixture(scope="module")
def chunk_server() -> Iterator[WebServer]:
    with WebServer(default=_chunked) as site:
        yield site


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    length=st.integers(0, 3 * CAP),
    chunks=st.lists(st.integers(1, 4096), min_size=1, max_size=5),
    coding=st.sampled_from(["", "gzip", "deflate"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_size_cap_never_exceeded(
    chunk_server: WebServer, length: int, chunks: list[int], coding: str, seed: int
) -> None:
    import random

    Holder.body = random.Random(seed).randbytes(length // 2) + bytes(length - length // 2)
    Holder.chunks, Holder.coding = chunks, coding
    policy = FetchPolicy(max_bytes=CAP, timeout_s=2.0, respect_robots=False)
    result = outcome(chunk_server.url("/x"), policy, allow_networks=ALLOW_LOOPBACK)
    if length <= CAP:
        assert isinstance(result, FetchResult)
        assert result.body == Holder.body
    else:
        assert isinstance(result, FetchError)
        assert result.code == "too_large"


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 200_000),
    limit=st.integers(1, 50_000),
    split=st.integers(1, 10_000),
    coding=st.sampled_from(["gzip", "deflate"]),
)
def test_decoder_never_returns_more_than_asked(size: int, limit: int, split: int, coding: str) -> None:
    wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    data = packer.compress(bytes(size)) + packer.flush()
    decoder = _BoundedDecoder(coding)
    total = 0
    for i in range(0, len(data), split):
        out = decoder.decode(data[i : i + split], limit - total + 1)
        assert len(out) <= limit - total + 1
        total += len(out)
        if total > limit:
            break
    assert total == min(size, limit + 1)


def test_policy_from_settings() -> None:
    settings_ = Settings(fetch_max_bytes=1234, fetch_per_host_concurrency=3, fetch_respect_robots=False)
    policy = FetchPolicy.from_settings(settings_)
    assert (policy.max_bytes, policy.per_host_concurrency, policy.respect_robots) == (1234, 3, False)
    assert policy.timeout_s == Settings().fetch_timeout_s


def test_fetch_outside_the_context_manager_is_a_programming_error() -> None:
    async def go() -> None:
        await Fetcher(POLICY).fetch("http://example.com/")

    with pytest.raises(RuntimeError):
        asyncio.run(go())
