"""A loopback RDAP service with recorded responses (tests/takedown/data/rdap_*.json): IANA-style bootstrap files
(RFC 9224) whose service URLs point back at this server, and domain / ip objects (RFC 9083)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.discover.webserver import Reply, WebServer

DATA = Path(__file__).parent / "data"
RDAP_JSON = "application/rdap+json"


def _recorded(name: str) -> Reply:
    return Reply(body=(DATA / name).read_bytes(), content_type=RDAP_JSON)


def rdap_server(extra: dict[str, Reply] | None = None) -> WebServer:
    """Started by the caller (``with rdap_server() as rdap:``); its bootstrap base is ``rdap.url('/bootstrap/')``."""
    server = WebServer()

    def bootstrap(services: list[list[list[str]]]):  # type: ignore[no-untyped-def]
        def reply(_request: object) -> Reply:
            body = {"version": "1.0", "publication": "2026-11-25T00:00:00Z", "description": "test bootstrap",
                    "services": [[keys, [server.url(base)]] for keys, (base,) in services]}
            return Reply(body=json.dumps(body).encode(), content_type="application/json")

        return reply

    server.routes.update({
        "/bootstrap/dns.json": bootstrap([[["com", "net"], ["/registry/"]], [["org"], ["/org-registry/"]]]),
        "/bootstrap/ipv4.json": bootstrap([[["198.18.0.0/15"], ["/rir/"]]]),
        "/bootstrap/ipv6.json": bootstrap([[["2001:db8::/32"], ["/rir/"]]]),
        "/registry/domain/bad-site.com": _recorded("rdap_domain_bad-site.com.json"),
        "/rir/ip/198.18.7.7": _recorded("rdap_ip_198.18.7.7.json"),
        "/rir/ip/198.19.1.1": _recorded("rdap_ip_198.19.1.1.json"),
        # the block SHADY-HOSTING-NET was assigned from (RFC 9082 covering-prefix query): the upstream provider
        "/rir/ip/198.18.0.0/15": _recorded("rdap_ip_198.18.0.0_15.json"),
        # garbage and hostile answers
        "/org-registry/domain/garbage.org": Reply(body=b"<html>not json</html>", content_type="text/html"),
        "/registry/domain/wrong-shape.com": Reply(body=b'{"objectClassName": "entity"}', content_type=RDAP_JSON),
        "/registry/domain/huge.com": Reply(body=(b"[" + b"1," * 700_000 + b"1]"), content_type=RDAP_JSON),
        "/registry/domain/slow.com": Reply(body=b"{}", content_type=RDAP_JSON, delay_s=3.0),
        **(extra or {}),
    })
    return server
