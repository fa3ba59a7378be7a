"""The dashboard's access rules, route by route: every route × every role × another case's ids → the designed
outcome (allowed, sign-in redirect, 403, or 404).

The routes come from the app's router, and the test fails when a dashboard route has no rule here (or a rule names
a route that is gone), so a new page cannot ship without its access rule being stated and tested.  POSTs carry the
session's valid CSRF token and harmless form data, so what is tested is the access rule, not the token check; an
"allowed" request must reach the handler (any answer but a sign-in redirect, 403 or 404, and never "form expired").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi.testclient import TestClient

from takeback import store
from takeback.accounts import passwords
from takeback.store import inbox, petitions
from takeback.store.models import utcnow
from tests.smtp import SmtpServer
from tests.web.conftest import Server
from tests.web.dashboard_data import add_signature, make_flag, make_notice, make_petition
from tests.web.test_dashboard import PASSWORD, csrf

ROLES = ("anonymous", "stranger", "operator", "advocate", "owner")

# Outcomes per role, by rule.  "stranger" is the owner of another case only; "operator" runs the match service
# and is a member of no case.
PUBLIC = {role: "ok" for role in ROLES}
SIGNED_IN = {**PUBLIC, "anonymous": "login"}
CASE = {"anonymous": "login", "stranger": "404", "operator": "404", "advocate": "ok", "owner": "ok"}
CASE_OWNER = {**CASE, "advocate": "403"}
OPERATOR = {"anonymous": "login", "stranger": "404", "operator": "ok", "advocate": "404", "owner": "404"}
#: A case page asked for with the other case's finding/notice/flag id: nobody sees it.
CROSS = {"anonymous": "login", "stranger": "404", "operator": "404", "advocate": "404", "owner": "404"}

C = "/app/cases/{case_id}"
RULES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/app/static/app.css"): PUBLIC,
    ("GET", "/app/login"): PUBLIC,
    ("POST", "/app/login"): PUBLIC,
    ("GET", "/app/login/totp"): SIGNED_IN,
    ("POST", "/app/login/totp"): SIGNED_IN,
    ("POST", "/app/logout"): PUBLIC,  # anyone ends up on the sign-in page
    ("GET", "/app/"): SIGNED_IN,
    ("GET", "/app/cases/new"): SIGNED_IN,
    ("POST", "/app/cases/new"): SIGNED_IN,
    ("GET", "/app/account"): SIGNED_IN,
    ("POST", "/app/account/password"): SIGNED_IN,
    ("POST", "/app/account/totp/start"): SIGNED_IN,
    ("POST", "/app/account/totp/confirm"): SIGNED_IN,
    ("GET", C): CASE,
    ("POST", C + "/hashes"): CASE,
    ("POST", C + "/members"): CASE_OWNER,
    ("POST", C + "/names"): CASE,
    ("POST", C + "/names/{name_id}/remove"): CASE,
    ("POST", C + "/scan"): CASE,
    ("GET", C + "/audit"): CASE,
    ("GET", C + "/findings/{finding_id}"): CASE,
    ("GET", C + "/notices/"): CASE,
    ("POST", C + "/notices/"): CASE,
    ("GET", C + "/notices/{notice_id}"): CASE,
    ("POST", C + "/notices/{notice_id}/send"): CASE,
    ("POST", C + "/notices/{notice_id}/mark"): CASE,
    ("GET", C + "/petition"): CASE,
    ("POST", C + "/petition"): CASE,
    ("POST", C + "/petition/flags/{flag_id}"): CASE,
    ("GET", C + "/petition/export.csv"): CASE,
    ("GET", C + "/petition/export-summary.json"): CASE,
    ("GET", "/app/operator/"): OPERATOR,
    ("POST", "/app/operator/clients"): OPERATOR,
    ("POST", "/app/operator/clients/{client_id}/revoke"): OPERATOR,
    ("GET", "/app/operator/inbox/"): OPERATOR,
    ("POST", "/app/operator/inbox/{request_id}/decide"): OPERATOR,
    ("GET", "/takedown-request"): PUBLIC,  # the public TAKE IT DOWN form (on in this test)
    ("POST", "/takedown-request"): PUBLIC,
}
#: Harmless form fields per POST route (the CSRF token is added to each).
FORMS: dict[str, dict[str, Any]] = {
    "/app/login/totp": {"code": "000000"},
    "/app/cases/new": {"name": "made by the matrix"},
    "/app/account/password": {"current_password": "not the password", "new_password": "another long phrase"},
    "/app/account/totp/confirm": {"code": "000000"},
    C + "/members": {"email": "advocate@example.org", "role": "advocate"},
    C + "/names": {"value": "matrix name", "kind": "alias"},
    C + "/scan": {"seeds": "ftp://not-started.test/"},  # refused by the seed check: no scan runs
    C + "/notices/": {"basis": "nonsense"},
    C + "/notices/{notice_id}/mark": {"state": "acknowledged", "note": "seen"},
    C + "/petition": {"title": ""},
    C + "/petition/flags/{flag_id}": {"action": "dismiss"},
    "/app/operator/clients": {"name": "matrix client", "scopes": ["match"]},
    "/app/operator/inbox/{request_id}/decide": {"decision": "rejected"},
}
SUB_IDS = ("finding_id", "notice_id", "flag_id", "name_id")
#: Ids that an allowed request uses up (a name removed is gone): each request gets a fresh one of the own case.
FRESH: dict[str, Callable[[World, int], int]] = {
    "name_id": lambda world, case_id: _fresh_name(world.server, case_id),
}


def dashboard_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route whose handler lives in ``takeback.web.dashboard``."""
    flatten: Callable[[Any], Any] | None = getattr(fastapi.routing, "iter_route_contexts", None)
    found: set[tuple[str, str]] = set()
    for route in flatten(app.routes) if flatten else app.routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None or not endpoint.__module__.startswith("takeback.web.dashboard"):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


@dataclass
class World:
    server: Server
    ids: dict[str, dict[str, int]]
    clients: dict[str, TestClient]
    emails: dict[str, str]


def _fresh_name(server: Server, case_id: int) -> int:
    """A name that a removal in the matrix may use up (removing one twice is "not found")."""
    with server.state.store.sessions() as session:
        count = len(store.list_case_names(session, case_id))
        name = store.add_case_name(session, case_id, f"removable {count}", "alias")
        session.commit()
        return name.id


def _case(server: Server, owner: int, name: str, slug: str, advocate: int | None = None) -> dict[str, int]:
    with server.state.store.sessions() as session:
        case = store.create_case(session, name)
        store.add_member(session, case.id, owner, "owner")
        if advocate is not None:
            store.add_member(session, case.id, advocate, "advocate")
        finding, _ = store.record_finding(session, case.id, f"https://{slug}.example/x", "media", evidence={})
        watched = store.add_case_name(session, case.id, f"{name} person", "name")
        session.commit()
    notice = make_notice(server, case.id, finding.id, finding.url)
    petition = make_petition(server, case.id, slug)
    # Inside one clock hour: a burst flag counts the signatures since its hour began (this failed at hh:55-hh:59).
    at = (utcnow() - timedelta(days=2)).replace(minute=10, second=0, microsecond=0)
    for i in range(3):
        add_signature(server, petition, f"s{i}@{slug}.example", at=at + timedelta(minutes=i))
    flag = make_flag(server, petition, at + timedelta(minutes=5))
    return {"case_id": case.id, "finding_id": finding.id, "notice_id": notice, "flag_id": flag,
            "name_id": watched.id}


def sign_in(http: TestClient, email: str) -> None:
    form = http.get("/app/login")
    done = http.post("/app/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf(form)},
                     follow_redirects=False)
    assert done.status_code == 303, done.text


@pytest.fixture
def world(start: Callable[..., Server], smtp_server: SmtpServer) -> World:
    server = start(inbox_public_form=True, platform_name="Example Tube", **smtp_server.settings())
    emails = {role: f"{role}@example.org" for role in ROLES if role != "anonymous"}
    users: dict[str, int] = {}
    with server.state.store.sessions() as session:
        for role, email in emails.items():
            users[role] = store.create_user(session, email, passwords.hash_password(PASSWORD),
                                            is_operator=role == "operator").id
        client, _key = store.create_client(session, "revocable", ["match"])
        request = inbox.file_request(session, name="Jane", email="jane@example.org", signature="Jane",
                                     urls=["https://tube.example/v/1"], description="", good_faith=True)
        session.commit()
    mine = _case(server, users["owner"], "Case A", "case-a", advocate=users["advocate"])
    other = _case(server, users["stranger"], "Case B", "case-b")
    common = {"client_id": client.id, "request_id": request.id}
    clients: dict[str, TestClient] = {}
    for role in ROLES:
        clients[role] = TestClient(server.app, raise_server_exceptions=False)  # the app is already started
        if role != "anonymous":
            sign_in(clients[role], emails[role])
    return World(server, {"mine": {**mine, **common}, "other": {**other, **common}}, clients, emails)


def outcome(response: httpx.Response) -> str:
    if response.status_code in (403, 404):
        return str(response.status_code)
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/app/login?next="):
        return "login"
    assert response.status_code < 500, response.text[:500]
    assert "form expired" not in response.text, response.text[:500]
    return "ok"


def _request(world: World, role: str, method: str, template: str, ids: dict[str, int]) -> httpx.Response:
    http = world.clients[role]
    for name, make in FRESH.items():
        if f"{{{name}}}" in template and ids[name] == world.ids["mine"][name]:
            ids = {**ids, name: make(world, ids["case_id"])}
    path = template.format(**ids)
    if method == "GET":
        return http.get(path, follow_redirects=False)
    if template in ("/app/login", "/takedown-request"):  # double-submit forms: the token comes with the form
        token = csrf(http.get(template))
        data = {"email": f"nobody-{role}@example.org", "password": "wrong password here"}
        return http.post(template, data={**data, "csrf_token": token}, follow_redirects=False)
    token = csrf(http.get("/app/account")) if role != "anonymous" else "no session, no token"
    data = {**FORMS.get(template, {}), "csrf_token": token}
    files = {"file": ("h.jsonl", b"not a hash list", "text/plain")} if template.endswith("/hashes") else None
    response = http.post(path, data=data, files=files, follow_redirects=False)
    if template == "/app/logout" and role != "anonymous":
        sign_in(http, world.emails[role])  # the next routes need the session back
    return response


def test_every_dashboard_route_has_an_access_rule(world: World) -> None:
    routes = dashboard_routes(world.server.app)
    assert routes, "no dashboard routes found: has the router's layout changed?"
    assert sorted(routes - set(RULES)) == [], "new dashboard routes need an access rule in RULES"
    assert sorted(set(RULES) - routes) == [], "RULES names routes that no longer exist"
    assert set(FORMS) <= {path for _, path in RULES}


def test_access_matrix(world: World) -> None:
    wrong: list[str] = []
    for role in ROLES:
        for (method, template), rule in sorted(RULES.items()):
            variants = [("own ids", world.ids["mine"], rule[role])]
            if any(f"{{{name}}}" in template for name in SUB_IDS):
                cross = {**world.ids["other"], "case_id": world.ids["mine"]["case_id"]}
                variants.append(("the other case's ids", cross, CROSS[role]))
            for label, ids, expected in variants:
                got = outcome(_request(world, role, method, template, ids))
                if got != expected:
                    wrong.append(f"{role:9} {method:4} {template} ({label}): expected {expected}, got {got}")
    assert wrong == [], "\n".join(wrong)
    _nothing_leaked(world)


def _nothing_leaked(world: World) -> None:
    """After the whole matrix: the other case is untouched, and the advocate could not add anyone to case A."""
    mine, other = world.ids["mine"], world.ids["other"]
    with world.server.state.store.sessions() as session:
        notice = store.get_notice(session, other["notice_id"])
        flag = petitions.get_flag(session, petitions.list_petitions(session, other["case_id"])[0].id, other["flag_id"])
        names = [n.value for n in store.list_case_names(session, other["case_id"])]
        members = {u.email for u, _ in store.case_members(session, mine["case_id"])}
        audit = store.list_audit(session, case_id=other["case_id"])
    assert notice is not None and notice.state == "drafted"
    assert flag is not None and flag.status == "open"
    assert names == ["Case B person"]
    assert members == {"owner@example.org", "advocate@example.org"}
    assert not any(re.match(r"(case_name_|scan_started|notice_|petition_)", e.action) for e in audit)
