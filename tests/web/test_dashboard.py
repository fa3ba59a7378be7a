"""The dashboard's sign-in, access control and form protections, through the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from takeback import store
from takeback.accounts import passwords, totp
from tests.web.conftest import Server

PASSWORD = "a long enough phrase"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(server: Server, email: str) -> int:
    with server.state.store.sessions() as session:
        user = store.create_user(session, email, passwords.hash_password(PASSWORD))
        session.commit()
        return user.id


def csrf(page: httpx.Response) -> str:
    match = _CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def sign_in(http: TestClient, email: str, password: str = PASSWORD, next_page: str = "/app/") -> httpx.Response:
    http.cookies.clear()
    form = http.get("/app/login", params={"next": next_page})
    return http.post(
        "/app/login",
        data={"email": email, "password": password, "csrf_token": csrf(form), "next": next_page},
        follow_redirects=False,
    )


def new_case(http: TestClient, name: str) -> int:
    form = http.get("/app/cases/new")
    created = http.post(
        "/app/cases/new", data={"name": name, "names": "Jane Example\njane_x", "csrf_token": csrf(form)},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    return int(created.headers["location"].rsplit("/", 1)[1])


@pytest.fixture
def http(server: Server) -> TestClient:
    return server.http


def test_sign_in_and_out(server: Server, http: TestClient) -> None:
    make_user(server, "Person@Example.org")
    first = http.get("/app/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/app/login?next=")
    assert http.get("/", follow_redirects=False).headers["location"] == "/app/"

    wrong = sign_in(http, "person@example.org", "not the password at all")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    unknown = sign_in(http, "nobody@example.org")
    assert unknown.status_code == 401 and "do not match" in unknown.text  # same answer: no account enumeration

    ok = sign_in(http, "  PERSON@example.org ")
    assert ok.status_code == 303 and ok.headers["location"] == "/app/"
    cookie = ok.headers["set-cookie"]
    assert "takeback_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    home = http.get("/app/")
    assert home.status_code == 200 and "Your cases" in home.text
    for header in ("content-security-policy", "x-frame-options", "referrer-policy"):
        assert header in home.headers
    assert home.headers["referrer-policy"] == "no-referrer"

    out = http.post("/app/logout", data={"csrf_token": csrf(home)}, follow_redirects=False)
    assert out.status_code == 303
    assert http.get("/app/", follow_redirects=False).status_code == 303  # the session is gone from the store too
    with server.state.store.sessions() as session:
        actions = [e.action for e in store.list_audit(session)]
    assert actions[:2] == ["logout", "login"] and actions.count("login_failed") == 2


def test_login_form_needs_its_token_and_next_stays_on_site(server: Server, http: TestClient) -> None:
    make_user(server, "p@example.org")
    http.cookies.clear()
    forged = http.post("/app/login", data={"email": "p@example.org", "password": PASSWORD, "csrf_token": "x"},
                       follow_redirects=False)
    assert forged.status_code == 400
    for evil in ("https://evil.example/", "//evil.example/", "/app/\\evil"):
        response = sign_in(http, "p@example.org", next_page=evil)
        assert response.headers["location"] == "/app/"


def test_a_case_is_seen_only_by_its_members(server: Server, http: TestClient) -> None:
    make_user(server, "owner@example.org")
    make_user(server, "advocate@example.org")
    make_user(server, "stranger@example.org")
    sign_in(http, "owner@example.org")
    case_id = new_case(http, "<script>alert(1)</script> case")
    page = http.get(f"/app/cases/{case_id}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "Jane Example" in page.text

    sign_in(http, "stranger@example.org")
    assert http.get(f"/app/cases/{case_id}").status_code == 404
    assert http.get(f"/app/cases/{case_id}/audit").status_code == 404
    assert http.get("/app/cases/999999").status_code == 404
    home = http.get("/app/")
    assert "alert(1)" not in home.text
    refused = http.post(f"/app/cases/{case_id}/members", data={"email": "stranger@example.org",
                                                               "csrf_token": csrf(home)})
    assert refused.status_code == 404

    sign_in(http, "owner@example.org")
    page = http.get(f"/app/cases/{case_id}")
    added = http.post(f"/app/cases/{case_id}/members", data={"email": "advocate@example.org",
                                                             "csrf_token": csrf(page)}, follow_redirects=False)
    assert added.status_code == 303

    sign_in(http, "advocate@example.org")
    page = http.get(f"/app/cases/{case_id}")
    assert page.status_code == 200 and "advocate" in page.text
    # an advocate acts for the person but cannot hand the case to others
    assert http.post(f"/app/cases/{case_id}/members", data={"email": "stranger@example.org",
                                                            "csrf_token": csrf(page)}).status_code == 403
    audit = http.get(f"/app/cases/{case_id}/audit")
    assert "member_added" in audit.text and "case_created" in audit.text


def test_forms_without_the_session_token_change_nothing(server: Server, http: TestClient) -> None:
    make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    refused = http.post("/app/cases/new", data={"name": "forged", "csrf_token": "not-the-token"})
    assert refused.status_code == 400
    missing = http.post("/app/cases/new", data={"name": "forged"})
    assert missing.status_code == 422 or missing.status_code == 400
    with server.state.store.sessions() as session:
        assert store.list_cases(session) == []


def test_repeated_failures_lock_the_account_for_a_while(server: Server, http: TestClient) -> None:
    make_user(server, "p@example.org")
    for _ in range(server.state.settings.ui_login_max_failures):
        assert sign_in(http, "p@example.org", "wrong password here").status_code == 401
    locked = sign_in(http, "p@example.org")  # even the right password waits now
    assert locked.status_code == 429


def test_second_factor(server: Server, http: TestClient) -> None:
    user_id = make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    account = http.get("/app/account")
    http.post("/app/account/totp/start", data={"csrf_token": csrf(account)})
    with server.state.store.sessions() as session:
        secret = store.get_user(session, user_id).totp_secret  # type: ignore[union-attr]
    assert secret
    account = http.get("/app/account")
    assert secret in account.text and "otpauth://" in account.text
    bad = http.post("/app/account/totp/confirm", data={"code": "000000", "csrf_token": csrf(account)})
    assert bad.status_code == 400 or totp.current_code(secret) == "000000"
    step_time = time.time() - 30  # use the previous step's code now, so the sign-in below gets a newer one
    on = http.post("/app/account/totp/confirm", data={"code": totp.current_code(secret, step_time),
                                                      "csrf_token": csrf(account)})
    assert on.status_code == 200 and "is on" in on.text

    started = sign_in(http, "p@example.org")
    assert started.headers["location"].startswith("/app/login/totp")
    assert http.get("/app/", follow_redirects=False).headers["location"] == "/app/login/totp"
    prompt = http.get("/app/login/totp")
    wrong = http.post("/app/login/totp", data={"code": "12345x", "csrf_token": csrf(prompt)})
    assert wrong.status_code == 401
    code = totp.current_code(secret)
    right = http.post("/app/login/totp", data={"code": code, "csrf_token": csrf(prompt)}, follow_redirects=False)
    assert right.status_code == 303
    assert http.get("/app/").status_code == 200

    sign_in(http, "p@example.org")  # the same code again, as an eavesdropper would: refused
    prompt = http.get("/app/login/totp")
    replay = http.post("/app/login/totp", data={"code": code, "csrf_token": csrf(prompt)})
    assert replay.status_code == 401


def test_accounts_from_the_command_line(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from takeback.cli import app

    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    weak = runner.invoke(app, ["user", "create", "p@example.org", "--password-stdin"], input="short\n")
    assert weak.exit_code == 2 and "at least" in weak.output
    made = runner.invoke(app, ["user", "create", "p@example.org", "--password-stdin"], input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    again = runner.invoke(app, ["user", "create", "P@example.org", "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 2 and "UserExists" in again.output
    assert runner.invoke(app, ["user", "add-to-case", "p@example.org", "1"]).exit_code == 2  # no case 1 yet
    listed = runner.invoke(app, ["user", "list"])
    assert "p@example.org" in listed.output


def test_hash_list_loads_into_the_case_bank_and_matches(server: Server, http: TestClient) -> None:
    from tests.web.conftest import random_pdq

    make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    case_id = new_case(http, "mine")
    value = random_pdq("protected photo")
    header = {"format": "takeback-hashlist", "version": 1, "generator": "test", "created": "2026-11-25T10:00:00Z",
              "names": True, "options": {"exact": False, "interval": 1.0}}
    photo = {"type": "image", "name": "IMG_0001.jpg", "md5": "a" * 32, "sha256": "b" * 64, "size": 10,
             "pdq": value, "quality": 90}
    summary = {"type": "summary", "hashed": 1, "failed": 0, "skipped": 0, "images": 1, "videos": 0}
    listing = "".join(json.dumps(record) + "\n" for record in (header, photo, summary))
    page = http.get(f"/app/cases/{case_id}")
    loaded = http.post(f"/app/cases/{case_id}/hashes", data={"csrf_token": csrf(page)},
                       files={"file": ("my-hashes.jsonl", listing.encode(), "application/x-ndjson")})
    assert loaded.status_code == 200, loaded.text
    assert "Loaded" in loaded.text and "IMG_0001" not in loaded.text
    with server.state.store.sessions() as session:
        bank = store.get_bank_by_name(session, f"case-{case_id}")
        assert bank is not None and bank.case_id == case_id
        stored = store.list_signals(session, bank.id)
    assert value in {s.value for s in stored} and all(s.note is None for s in stored)
    assert server.state.matcher.match([__import__("takeback.index", fromlist=["Query"]).Query("pdq", value)])[0]
    junk = http.post(f"/app/cases/{case_id}/hashes", data={"csrf_token": csrf(page)},
                     files={"file": ("x.jpg", b"\xff\xd8\xff\xe0 not a list", "image/jpeg")})
    assert junk.status_code == 400 and "not a hash list" in junk.text


def test_overview_chart_follows_findings(server: Server, http: TestClient) -> None:
    from datetime import UTC, datetime, timedelta

    make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    case_id = new_case(http, "chart")
    day1 = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with server.state.store.sessions() as session:
        first, _ = store.record_finding(session, case_id, "https://a.example/x", "media", evidence={}, seen_at=day1)
        store.record_finding(session, case_id, "https://b.example/<y>", "name", evidence={},
                             seen_at=day1 + timedelta(days=1))
        store.record_check(session, first.id, "removed", http_status=404, checked_at=day1 + timedelta(days=2))
        session.commit()
    page = http.get(f"/app/cases/{case_id}")
    assert page.status_code == 200
    assert "<svg" in page.text and "2026-11-01" in page.text and "2026-11-03" in page.text
    assert "https://b.example/&lt;y&gt;" in page.text  # the URL is text, escaped, never a link
    assert '<a href="https://a.example' not in page.text
    with server.state.store.sessions() as session:
        from takeback.store.reports import findings_timeline

        points = [(p.found, p.removed) for p in findings_timeline(session, case_id)]
    assert points == [(1, 0), (2, 0), (2, 1)]
    removed_only = http.get(f"/app/cases/{case_id}", params={"status": "removed"})
    assert "a.example/x" in removed_only.text and "b.example" not in removed_only.text.split("Findings</h2>")[1]


def test_operator_pages_manage_api_clients(server: Server, http: TestClient) -> None:
    make_user(server, "person@example.org")
    with server.state.store.sessions() as session:
        store.create_user(session, "ops@platform.example", passwords.hash_password(PASSWORD), is_operator=True)
        session.commit()
    sign_in(http, "person@example.org")
    assert http.get("/app/operator/").status_code == 404
    assert "Match service" not in http.get("/app/").text

    sign_in(http, "ops@platform.example")
    page = http.get("/app/operator/")
    assert page.status_code == 200 and "API clients" in page.text
    made = http.post("/app/operator/clients", data={"name": "<b>uploads</b>", "scopes": ["match"],
                                                    "csrf_token": csrf(page)})
    assert made.status_code == 200 and "&lt;b&gt;uploads" in made.text
    key = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)  # type: ignore[union-attr]
    probe = {"signal_type": "md5", "value": "0" * 32}
    assert http.post("/v1/match", json=probe, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    again = http.get("/app/operator/")
    assert key not in again.text  # shown once
    with server.state.store.sessions() as session:
        client_id = next(c.id for c in store.list_clients(session) if c.name == "<b>uploads</b>")
    revoked = http.post(f"/app/operator/clients/{client_id}/revoke", data={"csrf_token": csrf(again)},
                        follow_redirects=False)
    assert revoked.status_code == 303
    assert http.post("/v1/match", json=probe, headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_take_it_down_inbox(start: object, smtp_server: object) -> None:
    """A person files a request on the public form; the operator sees its 48-hour clock and decides it."""
    from tests.smtp import SmtpServer

    assert isinstance(smtp_server, SmtpServer)
    server = start(inbox_public_form=True, platform_name="Example Tube", **smtp_server.settings())  # type: ignore[operator]
    http = server.http
    with server.state.store.sessions() as session:
        store.create_user(session, "ops@platform.example", passwords.hash_password(PASSWORD), is_operator=True)
        session.commit()
    http.cookies.clear()
    form = http.get("/takedown-request")
    assert form.status_code == 200 and "Example Tube" in form.text
    incomplete = http.post("/takedown-request", data={"csrf_token": csrf(form), "name": "Jane",
                                                      "urls": "javascript:alert(1)\nhttps://tube.example/v/1"})
    assert incomplete.status_code == 400
    for missing in ("e-mail", "signature", "without consent", "not a web address"):
        assert missing in incomplete.text
    filed = http.post("/takedown-request", data={
        "csrf_token": csrf(form), "name": "Jane <Doe>", "email": "jane@example.org", "signature": "Jane Doe",
        "urls": "https://tube.example/v/1\nhttps://tube.example/v/2", "good_faith": "yes",
    })
    assert filed.status_code == 200 and "48 hours" in filed.text and "receipt" in filed.text
    [receipt] = smtp_server.wait_for(1)
    assert receipt.rcpt_tos == ["jane@example.org"] and "Example Tube" in receipt.message["Subject"]

    sign_in(http, "ops@platform.example")
    page = http.get("/app/operator/inbox/")
    assert "Jane &lt;Doe&gt;" in page.text and "hours left" in page.text and "https://tube.example/v/2" in page.text
    request_id = int(re.search(r"/app/operator/inbox/(\d+)/decide", page.text).group(1))  # type: ignore[union-attr]
    decided = http.post(f"/app/operator/inbox/{request_id}/decide", data={
        "csrf_token": csrf(page), "decision": "removed", "copies_removed": "3"}, follow_redirects=False)
    assert decided.status_code == 303
    again = http.post(f"/app/operator/inbox/{request_id}/decide", data={
        "csrf_token": csrf(page), "decision": "rejected"})
    assert again.status_code == 400  # decisions are final
    [_, outcome] = smtp_server.wait_for(2)
    assert "removed" in outcome.message["Subject"]
    with server.state.store.sessions() as session:
        [entry] = store.inbox.list_requests(session)
    assert entry.status == "removed" and entry.copies_removed == 3 and entry.hours_left() > 47


def test_inbox_form_is_off_unless_enabled(server: Server, http: TestClient) -> None:
    assert http.get("/takedown-request").status_code == 404
    assert http.post("/takedown-request", data={"csrf_token": "x"}).status_code == 404


def test_notice_drafted_sent_and_marked_from_the_dashboard(start: object, smtp_server: object) -> None:
    from tests.smtp import SmtpServer

    assert isinstance(smtp_server, SmtpServer)
    server = start(**smtp_server.settings(smtp_from="notices@takeback.test"))  # type: ignore[operator]
    http = server.http
    make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    case_id = new_case(http, "notices")
    with server.state.store.sessions() as session:
        finding, _ = store.record_finding(session, case_id, "https://tube.example/v/1", "media",
                                          evidence={"distance": 4})
        session.commit()
    page = http.get(f"/app/cases/{case_id}/notices/")
    assert page.status_code == 200 and "tube.example/v/1" in page.text
    form = {"csrf_token": csrf(page), "finding": str(finding.id), "basis": "takeitdown",
            "recipient": "abuse@tube.example", "sender_name": "Jane Doe", "sender_email": "jane@example.org"}
    incomplete = http.post(f"/app/cases/{case_id}/notices/", data=form)
    assert incomplete.status_code == 400
    assert "signature" in incomplete.text and "not consensual" in incomplete.text and "§3(a)(1)(B)" in incomplete.text
    drafted = http.post(f"/app/cases/{case_id}/notices/", data={**form, "signature": "Jane Doe",
                                                                "good_faith_not_consensual": "yes"},
                        follow_redirects=False)
    assert drafted.status_code == 303, drafted.text
    notice_page = http.get(drafted.headers["location"])
    assert "48" in notice_page.text and "https://tube.example/v/1" in notice_page.text
    sent = http.post(drafted.headers["location"] + "/send", data={"csrf_token": csrf(notice_page)})
    assert sent.status_code == 200 and "Sent." in sent.text
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["abuse@tube.example"] and "https://tube.example/v/1" in mail.message.as_string()
    marked = http.post(drafted.headers["location"] + "/mark", data={"csrf_token": csrf(sent), "state": "removed",
                                                                    "note": "gone"}, follow_redirects=False)
    assert marked.status_code == 303
    assert "removed" in http.get(drafted.headers["location"]).text

    stranger = make_user(server, "stranger@example.org")
    assert stranger
    sign_in(http, "stranger@example.org")
    assert http.get(drafted.headers["location"]).status_code == 404
