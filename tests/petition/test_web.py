"""The petition over HTTP (in-process server, SQLite and PostgreSQL): sign with a solved proof-of-work, receive the
verification mail at a real SMTP server, verify, count; and every bad input the issue lists."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from fastapi.testclient import TestClient

from takeback.config import Settings
from takeback.petition import pow as pow_mod
from takeback.petition.export import verify_summary
from takeback.store import banks
from takeback.web.app import create_app
from tests.smtp import SmtpServer

LINK = re.compile(r"(https?://\S+/p/[a-z0-9-]+/(verify|unsubscribe|erase)\?token=\S+)")


class Site:
    def __init__(self, http: TestClient, key: str, smtp: SmtpServer) -> None:
        self.http = http
        self.key = key
        self.smtp = smtp
        self.slug = "give-it-back"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def pow(self, slug: str | None = None) -> str:
        challenge = self.http.get(f"/v1/petitions/{slug or self.slug}/challenge").json()
        return pow_mod.encode_solution(challenge, pow_mod.solve(challenge))

    def sign(self, email: str, *, ip: str | None = None, **fields: Any) -> httpx.Response:
        body = {"name": "Ann Example", "email": email, "country": "FR", "pow": self.pow(), **fields}
        return self.http.post(f"/v1/petitions/{self.slug}/signatures", json=body)

    def counts(self) -> dict[str, Any]:
        return self.http.get(f"/v1/petitions/{self.slug}/counts").json()

    def links(self, count: int) -> list[dict[str, str]]:
        """The links of the first ``count`` mails, by action."""
        found = []
        for received in self.smtp.wait_for(count)[:count]:
            text = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found.append({m.group(2): m.group(1) for m in LINK.finditer(text)})
        return found


@pytest.fixture
def make_site(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Callable[..., Site]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Site:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "petition_pow_max_number": 300,
            "petition_ip_limit_per_minute": 1000,
            "petition_network_limit_per_minute": 1000,
            **smtp_server.settings(),
        }
        values.update(overrides)
        app = create_app(Settings(**values))
        http = TestClient(app, raise_server_exceptions=False)
        http.__enter__()
        clients.append(http)
        state = app.state.takeback
        _, key = state.store.create_client("organiser", ["manage"], 100_000, [])
        with state.store.sessions.begin() as session:
            case = banks.create_case(session, "case")
        site = Site(http, key, smtp_server)
        response = http.post(
            "/v1/petitions",
            headers=site.admin,
            json={
                "case_id": case.id,
                "slug": site.slug,
                "title": "Give her domains back",
                "text": "Put her domains under her control.\n\nReturn her video rights.",
                "target": "The registrar",
                "goal": 10,
            },
        )
        assert response.status_code == 201, response.text
        return site

    yield make
    for http in clients:
        http.__exit__(None, None, None)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


def test_sign_verify_count(site: Site) -> None:
    assert site.counts() == {"verified": 0, "pending": 0, "goal": 10, "progress": 0.0}
    response = site.sign("Jane.Doe@gmail.com", consent_public=True, comment="For her.")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "check_your_email"
    # The answer carries the counts as of its own commit (the page shows them with the thank-you).
    assert response.json()["counts"] == {"verified": 0, "pending": 1, "goal": 10, "progress": 0.0}
    assert site.counts()["pending"] == 1
    links = site.links(1)[0]
    assert set(links) == {"verify", "unsubscribe", "erase"}
    path = links["verify"].split("testserver", 1)[1]
    page = site.http.get(path)
    assert page.status_code == 200 and "Your signature is confirmed" in page.text
    assert site.counts() == {"verified": 1, "pending": 0, "goal": 10, "progress": 0.1}
    # The token is single use; a forged one is refused.
    assert site.http.get(path).status_code == 409
    token = path.split("token=")[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = site.http.post(f"/v1/petitions/{site.slug}/verify", json={"token": forged})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_token"
    # An unsubscribe token is not a verify token.
    other = links["unsubscribe"].split("token=")[1]
    response = site.http.post(f"/v1/petitions/{site.slug}/verify", json={"token": other})
    assert response.json()["error"]["code"] == "invalid_token"
    # The page shows the count and the escaped comment.
    page = site.http.get(f"/p/{site.slug}")
    assert page.status_code == 200
    assert 'id="verified-count">1<' in page.text and "For her." in page.text
    assert 'property="og:title" content="Give her domains back"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_duplicates_in_many_spellings_count_once(site: Site) -> None:
    spellings = ["jane.doe@gmail.com", "JaneDoe@GMAIL.com", "j.a.n.e.d.o.e+rally@googlemail.com", " janedoe@gmail.com "]
    answers = [site.sign(s) for s in spellings]
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1  # a duplicate looks like a new signature: nobody learns who signed
    assert site.counts()["pending"] == 1
    # Different mailboxes at a domain without aliasing rules stay different.
    assert site.sign("jane.doe@example.org").status_code == 202
    assert site.sign("janedoe@example.org").status_code == 202
    assert site.counts()["pending"] == 3


def test_idempotent_retry_and_used_pow(site: Site) -> None:
    pow_ = site.pow()
    body = {"name": "Ann", "email": "ann@example.org", "country": "DE", "pow": pow_}
    url = f"/v1/petitions/{site.slug}/signatures"
    first = site.http.post(url, json=body, headers={"Idempotency-Key": "retry-1"})
    again = site.http.post(url, json=body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["counts"]["pending"] == again.json()["counts"]["pending"] == 1  # the retry counts nothing
    assert site.counts()["pending"] == 1
    # The same solved puzzle for another request is refused.
    stolen = site.http.post(url, json={**body, "email": "bob@example.org"}, headers={"Idempotency-Key": "other"})
    assert stolen.status_code == 400 and stolen.json()["error"]["code"] == "used_pow"


@pytest.mark.parametrize(
    ("pow_value", "code"),
    [("", "invalid_pow"), ("not base64!", "invalid_pow"), ("e30=", "invalid_pow")],
)
def test_invalid_pow(site: Site, pow_value: str, code: str) -> None:
    response = site.http.post(
        f"/v1/petitions/{site.slug}/signatures",
        json={"name": "A", "email": "a@example.org", "country": "FR", "pow": pow_value},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_pow_wrong_answer_and_forged_signature(site: Site) -> None:
    challenge = site.http.get(f"/v1/petitions/{site.slug}/challenge").json()
    number = pow_mod.solve(challenge)
    url = f"/v1/petitions/{site.slug}/signatures"
    body = {"name": "A", "email": "a@example.org", "country": "FR"}
    wrong = pow_mod.encode_solution(challenge, number + 1)
    assert site.http.post(url, json={**body, "pow": wrong}).json()["error"]["code"] == "invalid_pow"
    forged = dict(challenge, signature="0" * 64)
    response = site.http.post(url, json={**body, "pow": pow_mod.encode_solution(forged, number)})
    assert response.json()["error"]["code"] == "invalid_pow"
    assert site.counts()["pending"] == 0


def test_bad_fields(site: Site) -> None:
    url = f"/v1/petitions/{site.slug}/signatures"
    cases = [
        ({"email": "not-an-address"}, 400, "invalid_email"),
        ({"email": "x@mailinator.com"}, 400, "disposable_email"),
        ({"email": "x@sub.yopmail.com"}, 400, "disposable_email"),
        ({"country": "ZZ"}, 400, "invalid_input"),
        ({"name": "   "}, 400, "invalid_input"),
        ({"name": "a\x00b"}, 400, "invalid_input"),
        ({"name": "x" * 201}, 422, "validation_error"),
        ({"comment": "y" * 1001}, 422, "validation_error"),
        ({"postcode": "<b>"}, 400, "invalid_input"),
    ]
    for change, status, code in cases:
        body = {"name": "Ann", "email": "ann@example.org", "country": "FR", "pow": site.pow(), **change}
        response = site.http.post(url, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), change
    assert site.http.post("/v1/petitions/nope/signatures", json={}).status_code in (404, 422)
    assert site.http.get("/v1/petitions/nope/counts").json()["error"]["code"] == "unknown_petition"
    assert site.http.get("/p/nope").status_code == 404
    assert site.counts()["pending"] == 0


def test_html_in_names_and_comments_is_escaped(site: Site) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert site.sign("evil@example.org", name=evil, comment=evil, consent_public=True).status_code == 202
    verify = site.links(1)[0]["verify"].split("testserver", 1)[1]
    assert site.http.get(verify).status_code == 200
    page = site.http.get(f"/p/{site.slug}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    exported = site.http.get(f"/v1/petitions/{site.slug}/export.csv", headers=site.admin)
    assert list(csv.reader(io.StringIO(exported.text)))[1] == [evil, "FR"]


def test_flood_from_one_ip_is_limited(make_site: Callable[..., Site]) -> None:
    site = make_site(petition_ip_limit_per_minute=5, petition_network_limit_per_minute=100)
    statuses = [site.sign(f"flood{i}@example.org").status_code for i in range(8)]
    assert statuses == [202] * 5 + [429] * 3
    response = site.sign("flood99@example.org")
    assert response.json()["error"]["code"] == "rate_limited" and int(response.headers["retry-after"]) >= 1
    assert site.counts()["pending"] == 5


def test_operator_flags_removal_export_erasure(make_site: Callable[..., Site]) -> None:
    site = make_site(petition_flag_network_per_hour=3)
    for i in range(5):
        assert site.sign(f"s{i}@example.org", consent_public=i % 2 == 0, name=f"Signer {i}").status_code == 202
    links = site.links(5)
    for found in links:
        assert site.http.get(found["verify"].split("testserver", 1)[1]).status_code == 200
    assert site.counts()["verified"] == 5
    # Operator endpoints need a key; public ones do not.
    assert site.http.get(f"/v1/petitions/{site.slug}/flags").status_code == 401
    flags = site.http.get(f"/v1/petitions/{site.slug}/flags", headers=site.admin).json()
    assert [(f["kind"], f["signatures"], f["status"]) for f in flags] == [("network", 5, "open")]
    # Export: names only with consent, a signed summary matching the CSV.
    exported = site.http.get(f"/v1/petitions/{site.slug}/export.csv", headers=site.admin)
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["name", "country"] and len(rows) == 6
    assert sorted(r[0] for r in rows[1:]) == ["", "", "Signer 0", "Signer 2", "Signer 4"]
    summary = site.http.get(f"/v1/petitions/{site.slug}/export/summary", headers=site.admin).json()
    assert summary["verified_signatures"] == 5 and verify_summary(summary, exported.content)
    assert not verify_summary({**summary, "verified_signatures": 6}, exported.content)
    assert not verify_summary(summary, exported.content + b"x")
    with_csv = json.loads(base64.b64decode(exported.headers["x-export-summary"]))
    assert with_csv["export_sha256"] == summary["export_sha256"] and verify_summary(with_csv, exported.content)
    # The same as a printable PDF: the summary that comes with it (header, or ?format=pdf) is of its exact bytes.
    assert site.http.get(f"/v1/petitions/{site.slug}/export.pdf").status_code == 401
    pdf = site.http.get(f"/v1/petitions/{site.slug}/export.pdf", headers=site.admin)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-export-sha256"] == hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["x-export-rows"] == "5"
    attached = json.loads(base64.b64decode(pdf.headers["x-export-summary"]))
    assert attached["verified_signatures"] == 5 and verify_summary(attached, pdf.content)
    separate = site.http.get(f"/v1/petitions/{site.slug}/export/summary?format=pdf", headers=site.admin).json()
    assert separate["export_sha256"] == attached["export_sha256"] and verify_summary(separate, pdf.content)
    assert not verify_summary(separate, exported.content)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content), strict=True).pages)
    assert "Verified signatures: 5" in text and "To: The registrar" in text
    assert all(f"Signer {i}" in text for i in (0, 2, 4)) and text.count("(name withheld)") == 2
    assert "Signer 1" not in text and "@example.org" not in text  # no consent, no name; never an address
    bad = site.http.get(f"/v1/petitions/{site.slug}/export/summary?format=xls", headers=site.admin)
    assert bad.status_code == 422
    # The signer erases their signature: gone, logged, counted out.
    erase_token = links[0]["erase"].split("token=")[1]
    confirm = site.http.get(f"/p/{site.slug}/erase?token={erase_token}")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    done = site.http.post(f"/p/{site.slug}/erase", data={"token": erase_token})
    assert done.status_code == 200 and site.counts()["verified"] == 4
    assert site.http.post(f"/p/{site.slug}/erase", data={"token": erase_token}).status_code == 404
    # The operator removes the flagged burst, with a reason; the log says who and why.
    flag_id = flags[0]["id"]
    acted = site.http.post(
        f"/v1/petitions/{site.slug}/flags/{flag_id}",
        headers=site.admin,
        json={"action": "remove", "note": "one script"},
    )
    assert acted.status_code == 200 and acted.json()["status"] == "removed"
    assert site.counts()["verified"] == 0
    log = site.http.get(f"/v1/petitions/{site.slug}/removals", headers=site.admin).json()
    assert sorted(r["action"] for r in log) == ["erased", "removed", "removed", "removed", "removed"]
    assert all(r["actor"] == "organiser" for r in log if r["action"] == "removed")
    assert (
        site.http.post(
            f"/v1/petitions/{site.slug}/removals", headers=site.admin, json={"ids": [1], "reason": ""}
        ).status_code
        == 422
    )


def test_breakdowns_widget_and_unsubscribe(site: Site) -> None:
    site.sign("a@example.org", country="DE")
    site.sign("b@example.org", country="FR")
    links = site.links(2)
    site.http.get(links[0]["verify"].split("testserver", 1)[1])
    by_country = site.http.get(f"/v1/petitions/{site.slug}/breakdown/country").json()
    assert {r["key"]: (r["verified"], r["pending"]) for r in by_country} == {"DE": (1, 0), "FR": (0, 1)}
    by_hour = site.http.get(f"/v1/petitions/{site.slug}/breakdown/hour").json()
    assert sum(r["verified"] + r["pending"] for r in by_hour) == 2
    widget = site.http.get(f"/p/{site.slug}/widget")
    assert widget.status_code == 200 and "frame-ancestors *" in widget.headers["content-security-policy"]
    unsubscribe = site.http.get(links[0]["unsubscribe"].split("testserver", 1)[1])
    assert unsubscribe.status_code == 200 and "no more e-mails" in unsubscribe.text
    assert site.http.get("/p/static/petition.js").status_code == 200
    assert site.http.get("/p/static/other.js").status_code == 404


def test_closed_petition_refuses(site: Site) -> None:
    from datetime import UTC, datetime, timedelta

    from takeback.store import petitions

    state = site.http.app.state  # type: ignore[attr-defined]
    with state.takeback.store.sessions.begin() as session:
        p = petitions.get_petition_by_slug(session, site.slug)
        petitions.set_closes_at(session, p.id, datetime.now(UTC) - timedelta(seconds=1))  # type: ignore[union-attr]
    state.petition._petitions.clear()
    response = site.sign("late@example.org")
    assert response.status_code == 409 and response.json()["error"]["code"] == "petition_closed"
