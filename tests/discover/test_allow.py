"""The origin allowance (discover.allow): exactly one loopback host:port gets past the SSRF guard, nothing wider
(not another port of the same address, not a redirect from the allowed site, not a host name), and only when code
set it: the environment cannot."""

from __future__ import annotations

import asyncio

import pytest

from takeback.config import Settings
from takeback.discover.allow import BadOrigin, Origin, open_fetcher, origin_of
from takeback.discover.fetch import FetchError
from tests.discover.webserver import Reply, WebServer, redirect


def _get(settings: Settings, url: str) -> int | str:
    async def go() -> int | str:
        async with open_fetcher(settings) as fetcher:
            try:
                return (await fetcher.fetch(url)).status
            except FetchError as exc:
                return exc.code

    return asyncio.run(go())


def test_only_the_allowed_origin_is_reachable() -> None:
    with WebServer() as other, WebServer({"/": Reply(body=b"hi"), "/hop": redirect(other.url("/"))}) as site:
        guarded = Settings()
        allowed = guarded.allowing_origins(site.origin.removeprefix("http://"))
        assert _get(guarded, site.url("/")) == "unsafe_url"  # the guard is on by default
        assert _get(allowed, site.url("/")) == 200
        assert _get(allowed, other.url("/")) == "unsafe_url"  # same address, other port
        assert _get(allowed, site.url("/hop")) == "too_many_redirects"  # no way out through a redirect
        assert _get(allowed, f"http://localhost:{site.port}/") == "unsafe_url"  # names never match an allowance
        assert other.hits["/"] == 0


def test_allowances_come_from_code_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEBACK_FETCH_ALLOW_ORIGINS", '["127.0.0.1:1234"]')
    monkeypatch.setenv("TAKEBACK__FETCH_ALLOW_ORIGINS", '["127.0.0.1:1234"]')
    assert Settings().fetch_allow_origins == ()
    copy = Settings().allowing_origins("127.0.0.1:1").model_copy(update={"port": 9})
    assert copy.fetch_allow_origins == ("127.0.0.1:1",)  # kept through copies (the server's settings are copies)


def test_origin_parsing() -> None:
    assert Origin.parse("127.0.0.1:8701") == Origin("127.0.0.1", 8701)
    assert str(Origin.parse("[::1]:80")) == "[::1]:80"
    for bad in ("localhost:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(BadOrigin):
            Origin.parse(bad)
    assert origin_of("http://127.0.0.1/a") == Origin("127.0.0.1", 80)
    assert origin_of("https://example.org/") is None
