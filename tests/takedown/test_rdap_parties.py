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
from takeback.takedown.rdap import RdapClient, RdapError, covering_prefix
from takeback.takedown.site_contact import parse_contacts
from tests.discover.webserver import Reply, WebServer
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
    headers: dict[str, str] | None = None


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
    assert kinds[:4] == ["site", "host", "upstream", "registrar"] and set(kinds[4:]) == {"search_engine"}
    site, host, upstream, registrar = result.parties[:4]
    assert (site.email, site.source) == ("security@bad-site.example", "security.txt")
    assert (host.email, host.source, host.key) == ("abuse@shady-hosting.example", "rdap", "host:rdap:NET-198-18-0-0-1")
    assert (upstream.email, upstream.key) == ("abuse@upstream-transit.example", "upstream:rdap:NET-198-18-0-0-0")
    assert (registrar.email, registrar.key) == ("abuse@registrar.example", "registrar:iana:4242")
    assert [s["step"] for s in result.steps][:2] == ["dns", "security.txt"]
    assert {s["step"] for s in result.steps} >= {"rdap-ip", "rdap-ip-parent", "rdap-domain", "directory",
                                                  "page-contact"}
    assert next_party(result, "site") == host and next_party(result, "host") == upstream
    assert next_party(result, "upstream") == registrar
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


# --- the upstream provider: the network above the host's ------------------------------------------------------------


def test_the_network_above_the_hosts_is_found_by_its_covering_prefix(rdap_site: WebServer) -> None:
    rdap = client(rdap_site)
    network = asyncio.run(rdap.ip("198.18.7.7"))
    assert (network.start_address, network.end_address) == ("198.18.0.0", "198.18.255.255")
    assert network.parent_handle == "NET-198-18-0-0-0"
    parent = asyncio.run(rdap.parent(network))
    assert parent.handle == "NET-198-18-0-0-0" and parent.name == "UPSTREAM-TRANSIT-BLK"
    assert parent.abuse is not None and parent.abuse.email == "abuse@upstream-transit.example"
    assert [url.rsplit("/ip/", 1)[1] for url, _ in parent.path] == ["198.18.0.0/15"]
    before = rdap.requests
    asyncio.run(rdap.parent(network))
    assert rdap.requests == before  # cached


@pytest.mark.parametrize(("start", "end", "expected"), [
    ("198.18.0.0", "198.18.255.255", "198.18.0.0/15"),
    ("198.18.0.0", "198.18.3.255", "198.18.0.0/21"),
    ("198.18.0.10", "198.18.0.20", "198.18.0.0/27"),  # not one CIDR: the smallest prefix covering it
    ("2001:db8::", "2001:db8::ffff", "2001:db8::/111"),
    ("0.0.0.0", "255.255.255.255", None),
    ("198.18.0.9", "198.18.0.1", None),
    ("198.18.0.0", "2001:db8::", None),
    ("nonsense", "198.18.0.1", None),
])
def test_covering_prefix(start: str, end: str, expected: str | None) -> None:
    assert covering_prefix(start, end) == expected


def _network(handle: str, start: str, end: str, email: str | None, **extra: Any) -> Reply:
    import json

    entity: dict[str, Any] = {"objectClassName": "entity", "handle": f"{handle}-ABUSE", "roles": ["abuse"],
                              "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Abuse"]]
                                             + ([["email", {}, "text", email]] if email else [])]}
    body = {"objectClassName": "ip network", "handle": handle, "name": handle, "startAddress": start,
            "endAddress": end, "entities": [entity], **extra}
    return Reply(body=json.dumps(body).encode(), content_type="application/rdap+json")


def test_an_up_link_is_followed_only_to_the_same_rdap_server() -> None:
    with rdap_server() as server:
        server.routes["/rir/ip/198.18.9.9"] = _network(
            "NET-CHILD", "198.18.9.0", "198.18.9.255", "abuse@child.example",
            links=[{"rel": "up", "href": server.url("/rir/ip/198.18.0.0/16")}])
        server.routes["/rir/ip/198.18.0.0/16"] = _network("NET-UP", "198.18.0.0", "198.18.255.255",
                                                          "abuse@up.example")
        server.routes["/rir/ip/198.18.8.8"] = _network(
            "NET-ELSEWHERE", "198.18.8.0", "198.18.8.255", "abuse@else.example",
            links=[{"rel": "up", "href": "https://attacker.example/ip/1.2.3.0/24"}])
        server.routes["/rir/ip/198.18.8.0/23"] = _network("NET-COVER", "198.18.8.0", "198.18.9.255", None)
        rdap = client(server)
        child = asyncio.run(rdap.ip("198.18.9.9"))
        assert asyncio.run(rdap.parent(child)).handle == "NET-UP"
        elsewhere = asyncio.run(rdap.ip("198.18.8.8"))
        parent = asyncio.run(rdap.parent(elsewhere))  # the foreign link is ignored: the covering prefix is asked
        assert parent.handle == "NET-COVER" and parent.path[0][0].endswith("/ip/198.18.8.0/23")
        # a registry answering with the same network again has nothing above it
        server.routes["/rir/ip/198.18.6.0/23"] = _network("NET-SELF", "198.18.6.0", "198.18.6.255", None)
        server.routes["/rir/ip/198.18.6.6"] = _network("NET-SELF", "198.18.6.0", "198.18.6.255", None)
        with pytest.raises(RdapError) as info:
            asyncio.run(rdap.parent(asyncio.run(rdap.ip("198.18.6.6"))))
        assert info.value.code == "not_found"


def test_upstream_failures_are_recorded_and_leave_no_party(rdap_site: WebServer) -> None:
    rdap_site.routes["/rir/ip/198.18.0.0/15"] = Reply(body=b"<html>", content_type="text/html")
    result = asyncio.run(resolve_parties("https://www.bad-site.com/x", rdap=client(rdap_site),
                                         directory=load_directory(), resolver=fake_resolver, search_engines=False))
    assert [p.kind for p in result.parties] == ["host", "registrar"]
    [step] = [s for s in result.steps if s["step"] == "rdap-ip-parent"]
    assert step["outcome"] == "error" and "bad_response" in step["error"]
    # a known CDN's own channel is the way: no upstream lookup
    cdn = asyncio.run(resolve_parties("https://cdn-site.com/a.jpg", rdap=client(rdap_site),
                                      directory=load_directory(), resolver=fake_resolver, search_engines=False))
    assert [s["outcome"] for s in cdn.steps if s["step"] == "rdap-ip-parent"] == ["skipped"]


# --- the site's own contact, from its pages ---------------------------------------------------------------------------

FOOTER = b"""<html><body><p>gallery</p><footer>
<a href="/about">About</a> <a href="mailto:hello@bad-site.example">Say hi</a>
<a href="/contact-us">Contact</a> <a href="/legal/dmca">DMCA / Copyright</a>
<a href="mailto:Copyright%40bad-site.example?subject=x">Report</a> <a href="mailto:not-an-address">x</a>
<a href="javascript:alert(1)">abuse</a>
</footer></body></html>"""


def test_contacts_are_read_from_page_links() -> None:
    emails, pages = parse_contacts(FOOTER, "https://www.bad-site.com/gallery/1", "text/html")
    assert [(c.value, c.score) for c in emails] == [("Copyright@bad-site.example", 2), ("hello@bad-site.example", 1)]
    assert [(c.value, c.score) for c in pages] == [("https://www.bad-site.com/legal/dmca", 2),
                                                  ("https://www.bad-site.com/contact-us", 1)]


@pytest.mark.parametrize("body", [
    b"<div>" * 100_000 + b'<a href="mailto:deep@x.example">abuse</a>',
    b"\xff\xfe\x00<<<a href=",
    b"",
    b"<a href='" + b"x" * 5000 + b"'>contact</a>",
])
def test_hostile_pages_never_break_the_reader(body: bytes) -> None:
    emails, pages = parse_contacts(body, "https://site.example/", "text/html")
    assert all(c.value != "deep@x.example" for c in emails) and not pages


def test_the_sites_own_removal_channel_beats_its_security_contact(rdap_site: WebServer) -> None:
    fetcher = FakeFetcher({
        "https://www.bad-site.com/.well-known/security.txt": (200, b"Contact: mailto:security@bad-site.example\n"),
        "https://www.bad-site.com/gallery/1": (200, FOOTER),
    })
    result = asyncio.run(resolve_parties("https://www.bad-site.com/img/1.jpg", rdap=client(rdap_site),
                                         directory=load_directory(), fetcher=fetcher, resolver=fake_resolver,
                                         search_engines=False, page_url="https://www.bad-site.com/gallery/1"))
    site = result.of_kind("site")[0]
    assert (site.email, site.source) == ("Copyright@bad-site.example", "page")
    assert [s["step"] for s in site.resolution] == ["security.txt", "page-contact"]
    # the page named a removal channel: the home page was not needed
    assert "https://www.bad-site.com/" not in fetcher.calls
    assert fetcher.calls.count("https://www.bad-site.com/gallery/1") == 1


def test_a_contact_page_is_used_when_nothing_else_is_published(rdap_site: WebServer) -> None:
    fetcher = FakeFetcher({
        "https://www.bad-site.com/": (200, b'<a href="/contact">Contact us</a>'),
        "https://www.bad-site.com/img/2.jpg": (200, b"\xff\xd8 not html"),
    })
    result = asyncio.run(resolve_parties("https://www.bad-site.com/img/2.jpg", rdap=client(rdap_site),
                                         directory=load_directory(), fetcher=fetcher, resolver=fake_resolver,
                                         search_engines=False))
    site = result.of_kind("site")[0]
    assert (site.email, site.web_form, site.source) == (None, "https://www.bad-site.com/contact", "page")
    outcomes = [(s["url"], s["outcome"]) for s in result.steps if s["step"] == "page-contact"]
    assert outcomes[1] == ("https://www.bad-site.com/", "found") and outcomes[0][1] in ("no_contact", "not_html")
