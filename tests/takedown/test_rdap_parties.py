"""RDAP lookups and party resolution against a loopback RDAP server with recorded responses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from takeback.takedown.directory import DirectoryError, load_directory
from takeback.takedown.parties import next_party, parse_security_txt, resolve_parties
from takeback.takedown.rdap import RdapClient, RdapError
from tests.discover.webserver import WebServer
from tests.takedown.rdap_server import rdap_server

ADDRESSES = {"www.bad-site.com": ["198.18.7.7"], "cdn-site.com": ["198.19.1.1"], "old.reddit.com": ["198.18.7.7"]}


def fake_resolver(host: str, port: int) -> list[str]:
    if host not in ADDRESSES:
        raise OSError(f"{host} does not resolve")
    return ADDRESSES[host]


@pytest.fixture
def rdap_site() -> Iterator[WebServer]:
    with rdap_server() as server:
        yield server


def client(site: WebServer, **kw: Any) -> RdapClient:
    return RdapClient(site.url("/bootstrap/"), allow_private=True, timeout_s=kw.pop("timeout_s", 2.0), **kw)


@dataclass
class FakeResult:
    status: int
    body: bytes
    final_url: str = ""
    server_ip: str | None = None


class FakeFetcher:
    """Stands in for discover.fetch.Fetcher where a test needs https:// URLs on made-up hosts."""

    def __init__(self, pages: dict[str, tuple[int, bytes] | Exception]) -> None:
        self.pages = pages
        self.calls: list[str] = []

    async def fetch(self, url: str, *, max_bytes: int | None = None, accept: str | None = None) -> FakeResult:
        self.calls.append(url)
        page = self.pages.get(url, (404, b""))
        if isinstance(page, Exception):
            raise page
        return FakeResult(page[0], page[1][: max_bytes or None], url)


def test_domain_and_ip_lookups_follow_the_bootstrap(rdap_site: WebServer) -> None:
    rdap = client(rdap_site)
    domain = asyncio.run(rdap.domain("www.BAD-site.com."))
    assert domain.name == "bad-site.com" and domain.registrar is not None
    assert domain.registrar.name == "Example Registrar, LLC" and domain.registrar_iana_id == "4242"
    assert domain.abuse is not None and domain.abuse.email == "abuse@registrar.example"
    # www.bad-site.com is not registered (404), its parent is: both requests are on the path.
    statuses = [status for _, status in domain.path]
    assert statuses == ["200", "404", "200"]
    ip = asyncio.run(rdap.ip("198.18.7.7"))
    assert ip.name == "SHADY-HOSTING-NET" and ip.abuse is not None
    assert ip.abuse.email == "abuse@shady-hosting.example" and ip.registrar and ip.registrar.name == "Shady Hosting Ltd"


def test_results_are_cached_until_the_ttl(rdap_site: WebServer) -> None:
    now = [0.0]
    rdap = client(rdap_site, cache_ttl_s=60, clock=lambda: now[0])

    async def twice() -> None:
        await rdap.ip("198.18.7.7")
        await rdap.ip("198.18.7.7")

    asyncio.run(twice())
    assert rdap.requests == 2  # bootstrap + one lookup
    now[0] = 61
    asyncio.run(rdap.ip("198.18.7.7"))
    assert rdap.requests == 4


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda r: r.domain("garbage.org"), "bad_response"),
        (lambda r: r.domain("wrong-shape.com"), "bad_response"),
        (lambda r: r.domain("huge.com"), "too_large"),
        (lambda r: r.domain("slow.com"), "timeout"),
        (lambda r: r.domain("nothing.com"), "not_found"),
        (lambda r: r.domain("example.invalidtld"), "no_service"),
        (lambda r: r.ip("8.8.8.8"), "no_service"),
        (lambda r: r.ip("not-an-ip"), "bad_response"),
    ],
)
def test_bad_rdap_answers_are_named_errors(rdap_site: WebServer, call: Any, code: str) -> None:
    rdap = client(rdap_site, timeout_s=0.5, max_bytes=1024 * 1024)
    with pytest.raises(RdapError) as info:
        asyncio.run(call(rdap))
    assert info.value.code == code


def test_the_ssrf_guard_applies_to_rdap(rdap_site: WebServer) -> None:
    rdap = RdapClient(rdap_site.url("/bootstrap/"), timeout_s=1.0)  # private addresses not allowed
    with pytest.raises(RdapError) as info:
        asyncio.run(rdap.ip("198.18.7.7"))
    assert info.value.code == "unsafe_url"


def test_resolve_parties_records_every_step(rdap_site: WebServer) -> None:
    fetcher = FakeFetcher({
        "https://www.bad-site.com/.well-known/security.txt": (
            200, b"# hi\nContact: mailto:security@bad-site.example\nContact: https://bad-site.example/c\nExpires: x\n"),
    })
    result = asyncio.run(resolve_parties("https://www.bad-site.com/gallery/1", rdap=client(rdap_site),
                                         directory=load_directory(), fetcher=fetcher, resolver=fake_resolver))
    kinds = [p.kind for p in result.parties]
    assert kinds[:3] == ["site", "host", "registrar"] and set(kinds[3:]) == {"search_engine"}
    site, host, registrar = result.parties[:3]
    assert (site.email, site.source) == ("security@bad-site.example", "security.txt")
    assert (host.email, host.source, host.key) == ("abuse@shady-hosting.example", "rdap", "host:rdap:NET-198-18-0-0-1")
    assert (registrar.email, registrar.key) == ("abuse@registrar.example", "registrar:iana:4242")
    assert [s["step"] for s in result.steps][:2] == ["dns", "security.txt"]
    assert {s["step"] for s in result.steps} >= {"rdap-ip", "rdap-domain", "directory"}
    assert next_party(result, "site") == host and next_party(result, "host") == registrar
    assert next_party(result, "registrar").kind == "search_engine"  # type: ignore[union-attr]
    # search engines in the directory carry web forms, flagged as unverified
    engines = result.of_kind("search_engine")
    assert all(e.web_form and e.email is None and "not verified" in e.note for e in engines)


def test_known_platforms_and_cdns_come_from_the_directory(rdap_site: WebServer) -> None:
    ADDRESSES["cdn-site.com"] = ["198.19.1.1"]
    result = asyncio.run(resolve_parties("https://old.reddit.com/r/x/comments/1", rdap=client(rdap_site),
                                         directory=load_directory(), fetcher=FakeFetcher({}),
                                         resolver=fake_resolver, basis="takeitdown"))
    platform = result.parties[0]
    assert (platform.kind, platform.source, platform.key) == ("platform", "directory", "platform:directory:reddit")
    assert platform.web_form and platform.web_form.startswith("https://")
    cdn = asyncio.run(resolve_parties("https://cdn-site.com/a.jpg", rdap=client(rdap_site), directory=load_directory(),
                                      resolver=fake_resolver, search_engines=False))
    host = cdn.of_kind("host")[0]
    assert host.key == "host:directory:cloudflare" and host.web_form == "https://abuse.cloudflare.com/"


def test_failures_leave_parties_unresolved_but_recorded(rdap_site: WebServer) -> None:
    from takeback.discover.fetch import FetchError

    fetcher = FakeFetcher({"https://nowhere.org/.well-known/security.txt": FetchError("timeout", "u", "slow")})
    result = asyncio.run(resolve_parties("https://nowhere.org/x", rdap=client(rdap_site), directory=load_directory(),
                                         fetcher=fetcher, resolver=fake_resolver, search_engines=False))
    assert [(p.kind, p.source) for p in result.parties] == [("host", "unresolved"), ("registrar", "unresolved")]
    assert all(p.note and not p.reachable for p in result.parties)
    errors = {s["step"]: s.get("error", "") for s in result.steps if s.get("outcome") == "error"}
    assert "does not resolve" in errors["dns"] and "timeout" in errors["security.txt"]
    assert "not found" in errors["rdap-domain"] or "not_found" in errors["rdap-domain"]
    assert next_party(result, None) is None


def test_security_txt_parsing_is_strict() -> None:
    emails, urls = parse_security_txt(
        "Contact: mailto:a@example.org\ncontact: mailto:not-an-address\nContact: http://plain.example/\n"
        "Contact: https://form.example/report\nPolicy: https://x\nContact: mailto:a@example.org\n"
    )
    assert emails == ["a@example.org"] and urls == ["https://form.example/report"]


def test_directory_is_editable_and_checked(tmp_path: Path) -> None:
    own = tmp_path / "mine.json"
    own.write_text('{"entries": [{"id": "reddit", "name": "Reddit (mine)", "kind": "platform", "domains": '
                   '["reddit.com"], "channels": [{"type": "email", "url": "mailto:legal@reddit.example"}], '
                   '"source_url": "https://reddit.example/legal", "verified_on": "2026-11-20"}]}')
    directory = load_directory(own)
    entry = directory.for_host("reddit.com")[0]
    assert entry.name == "Reddit (mine)" and entry.verified and len(directory.entries) == len(load_directory().entries)
    own.write_text('{"entries": [{"id": "x"}]}')
    with pytest.raises(DirectoryError):
        load_directory(own)
    with pytest.raises(DirectoryError):
        load_directory(tmp_path / "missing.json")


def test_shipped_directory_presents_nothing_unverified_as_fact() -> None:
    directory = load_directory()
    for entry in directory.entries:
        assert entry.source_url.startswith("https://")
        for channel in entry.channels:
            # An e-mail address may only be listed once someone verified it.
            assert channel.type == "web_form" or entry.verified, entry.id
            assert channel.url.startswith("https://")
