"""robots.txt: rules for our token honoured, fetched once per host through the guard, RFC 9309 status semantics."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from takeback.discover.fetch import Fetcher, FetchError, FetchPolicy, FetchResult
from takeback.discover.robots import RobotsCache, robots_url, rules_from_answer, user_agent_token
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, Request, Route, WebServer, redirect

POLICY = FetchPolicy(timeout_s=1.0, connect_timeout_s=1.0, per_host_concurrency=4)
PAGE = Reply(body=b"<html><body>page</body></html>")

ROBOTS = b"""# a typical file
User-agent: *
Disallow: /private/
Allow: /private/open.html

User-agent: takeback-discover
Disallow: /no-takeback/

User-agent: other-bot
Disallow: /
"""


def site_with(robots: Route) -> WebServer:
    return WebServer({"/robots.txt": robots}, default=PAGE)


def fetch_many(site: WebServer, paths: list[str], policy: FetchPolicy = POLICY) -> dict[str, str]:
    """path -> "ok <status>" or the FetchError code, all fetched concurrently through one Fetcher."""

    async def go() -> dict[str, str]:
        async with Fetcher(policy, allow_networks=ALLOW_LOOPBACK) as fetcher:

            async def one(path: str) -> str:
                try:
                    result = await fetcher.fetch(site.url(path))
                except FetchError as exc:
                    return exc.code
                return f"ok {result.status}"

            return dict(zip(paths, await asyncio.gather(*(one(p) for p in paths)), strict=True))

    return asyncio.run(go())


def test_rules_for_our_token_and_for_everyone() -> None:
    with site_with(Reply(body=ROBOTS, content_type="text/plain")) as site:
        got = fetch_many(site, ["/", "/no-takeback/x", "/private/x", "/public/y"])
        assert got == {
            "/": "ok 200",
            "/no-takeback/x": "robots_disallowed",
            "/private/x": "ok 200",
            "/public/y": "ok 200",
        }
        # Our group replaces the * group (RFC 9309 §2.2.1), so /private/ is not closed to us; other-bot's / is not ours.
        assert site.hits["/no-takeback/x"] == 0


def test_star_group_applies_when_we_have_none() -> None:
    body = b"User-agent: *\nDisallow: /private/\nAllow: /private/open.html\n"
    with site_with(Reply(body=body, content_type="text/plain")) as site:
        got = fetch_many(site, ["/private/x", "/private/open.html", "/else"])
        assert got == {"/private/x": "robots_disallowed", "/private/open.html": "ok 200", "/else": "ok 200"}


def test_fetched_once_per_host_even_when_asked_concurrently() -> None:
    with site_with(Reply(body=ROBOTS, content_type="text/plain")) as site:
        fetch_many(site, [f"/page/{i}" for i in range(20)])
        assert site.hits["/robots.txt"] == 1
        assert sum(site.hits[f"/page/{i}"] for i in range(20)) == 20


@pytest.mark.parametrize(
    ("robots", "expect"),
    [
        (Reply(status=404, body=b"no"), "ok 200"),  # no robots.txt: allowed
        (Reply(status=403, body=b"no"), "ok 200"),  # 4xx all count as unavailable
        (Reply(status=500, body=b"oops"), "robots_disallowed"),  # server trouble: keep away
        (Reply(status=503, body=b"later"), "robots_disallowed"),
        (Reply(body=b"late", delay_s=30), "robots_disallowed"),  # unreachable (timeout)
        (Reply(status=200, body=b"\x00\xff garbage \xfe", content_type="text/plain"), "ok 200"),  # no rules in it
    ],
)
def test_status_semantics(robots: Reply, expect: str) -> None:
    with site_with(robots) as site:
        assert fetch_many(site, ["/page"]) == {"/page": expect}
        if expect != "ok 200":
            assert site.hits["/page"] == 0


def test_redirects_to_private_addresses_make_robots_unreachable() -> None:
    with site_with(redirect("http://169.254.169.254/robots.txt")) as site:
        assert fetch_many(site, ["/page"]) == {"/page": "robots_disallowed"}


def test_robots_redirect_followed() -> None:
    routes: dict[str, Route] = {
        "/robots.txt": redirect("/real-robots.txt"),
        "/real-robots.txt": Reply(body=b"User-agent: *\nDisallow: /x\n", content_type="text/plain"),
    }
    with WebServer(routes, default=PAGE) as site:
        assert fetch_many(site, ["/x", "/y"]) == {"/x": "robots_disallowed", "/y": "ok 200"}


def test_endless_redirects_mean_no_robots() -> None:
    with WebServer({"/robots.txt": redirect("/robots.txt?again")}, default=PAGE) as site:
        # /robots.txt?again redirects to itself (same path): a loop, so the file is unavailable and all is allowed.
        assert fetch_many(site, ["/page"]) == {"/page": "ok 200"}


def test_size_cap_ignores_rules_past_it() -> None:
    filler = b"# " + b"x" * 1000 + b"\n"
    body = b"User-agent: *\nDisallow: /early\n" + filler * 200 + b"Disallow: /late\n"
    policy = FetchPolicy(timeout_s=1.0, robots_max_bytes=100_000)
    with site_with(Reply(body=body, content_type="text/plain")) as site:
        assert fetch_many(site, ["/early", "/late"], policy) == {"/early": "robots_disallowed", "/late": "ok 200"}


def test_endless_robots_is_cut_not_fatal() -> None:
    def endless(request: Request) -> Reply:
        def chunks() -> Any:
            yield b"User-agent: *\nDisallow: /x\n"
            while not request.stopping.is_set():
                yield b"# " + b"y" * 8000 + b"\n"

        return Reply(body=chunks(), content_type="text/plain")

    with site_with(endless) as site:
        assert fetch_many(site, ["/x", "/y"]) == {"/x": "robots_disallowed", "/y": "ok 200"}


def test_respect_robots_off_fetches_anyway() -> None:
    with site_with(Reply(body=b"User-agent: *\nDisallow: /\n", content_type="text/plain")) as site:
        policy = FetchPolicy(timeout_s=1.0, respect_robots=False)
        assert fetch_many(site, ["/page"], policy) == {"/page": "ok 200"}
        assert site.hits["/robots.txt"] == 0


def test_crawl_delay_spaces_requests() -> None:
    starts: list[float] = []

    def stamp(request: Request) -> Reply:
        starts.append(time.monotonic())
        return PAGE

    body = b"User-agent: *\nCrawl-delay: 0.1\n"
    with WebServer({"/robots.txt": Reply(body=body, content_type="text/plain")}, default=stamp) as site:
        fetch_many(site, ["/a", "/b", "/c"])
    ordered = sorted(starts)
    assert len(ordered) == 3
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= 0.09


def test_crawl_delay_is_capped() -> None:
    body = b"User-agent: *\nCrawl-delay: 86400\n"
    policy = FetchPolicy(timeout_s=1.0, max_crawl_delay_s=0.05)
    with site_with(Reply(body=body, content_type="text/plain")) as site:
        start = time.monotonic()
        assert fetch_many(site, ["/a", "/b"], policy) == {"/a": "ok 200", "/b": "ok 200"}
        assert time.monotonic() - start < 2


def test_allowed_by_robots_helper() -> None:
    with site_with(Reply(body=ROBOTS, content_type="text/plain")) as site:

        async def go() -> tuple[bool, bool]:
            async with Fetcher(POLICY, allow_networks=ALLOW_LOOPBACK) as fetcher:
                return await fetcher.allowed_by_robots(site.url("/no-takeback/1")), await fetcher.allowed_by_robots(
                    site.url("/fine")
                )

        assert asyncio.run(go()) == (False, True)


# --- pure parts ----------------------------------------------------------------------------------------------------


def test_robots_url_and_token() -> None:
    assert robots_url("https://Example.COM:8443/a/b?c#d") == "https://example.com:8443/robots.txt"
    assert robots_url("http://example.com") == "http://example.com/robots.txt"
    assert user_agent_token("takeback-discover/0.1 (+https://github.com/takeback)") == "takeback-discover"


@pytest.mark.parametrize(("status", "allow_all"), [(200, True), (404, True), (410, True), (429, True), (500, False)])
def test_rules_from_status(status: int, allow_all: bool) -> None:
    assert rules_from_answer(status, b"").allows("http://example.com/x", "takeback-discover") is allow_all


def test_cache_propagates_programming_errors() -> None:
    async def broken(url: str) -> FetchResult:
        raise KeyError("bug")

    cache = RobotsCache(broken, "takeback-discover/0.1")
    with pytest.raises(KeyError):
        asyncio.run(cache.allowed("http://example.com/x"))


def test_cache_maps_fetch_errors() -> None:
    def failing(code: str) -> Callable[[str], Any]:
        async def load(url: str) -> FetchResult:
            raise FetchError(code, url, "simulated")

        return load

    for code, allowed in [
        ("timeout", False),
        ("connect_failed", False),
        ("unsafe_url", False),
        ("too_many_redirects", True),
    ]:
        cache = RobotsCache(failing(code), "takeback-discover/0.1")
        assert asyncio.run(cache.allowed("http://example.com/x")) is allowed, code
