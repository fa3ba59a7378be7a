"""`takeback serve --demo`'s seeding: every dashboard page has something to show on the demo data, and seeding
again (a second start) reuses everything instead of duplicating it.  SQLite only: the demo's embedded default."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from takeback import store
from takeback.config import Settings
from takeback.demo import mailsink, pages, story
from takeback.demo.run import demo_settings
from takeback.demo.seed import DemoSeed, seed_demo
from takeback.demo.site import DemoSite
from takeback.store import inbox, petitions, signatures
from takeback.web.app import create_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Seeded:
    settings: Settings
    site: DemoSite
    sink: mailsink.MailSink
    seed: DemoSeed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data = tmp_path_factory.mktemp("demo")
    sink = mailsink.start(data / "demo" / "mail")
    assert sink is not None, "aiosmtpd is a dev dependency"
    site = DemoSite(removed_file=data / "demo" / "site-removed.txt").start()
    settings = Settings(data_dir=data, smtp_host=sink.host, smtp_port=sink.port, jobs_in_server=False)
    try:
        yield Seeded(settings.allowing_origins(site.origin), site, sink, seed_demo(settings, site, mail=True))
    finally:
        site.stop()
        sink.stop()


@pytest.fixture(scope="module")
def http(seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(create_app(seeded.settings), raise_server_exceptions=False) as client:
        form = client.get("/app/login")
        token = _CSRF.search(form.text)
        assert token
        signed_in = client.post("/app/login", follow_redirects=False, data={
            "email": seeded.seed.email, "password": seeded.seed.password, "csrf_token": token.group(1), "next": "/app/",
        })
        assert signed_in.status_code == 303, signed_in.text
        yield client


def _ok(http: TestClient, path: str) -> httpx.Response:
    response = http.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response


def _counts(settings: Settings, case_id: int) -> dict[str, int]:
    engine, sessions = store.open_store(settings)
    try:
        with sessions() as session:
            petition = petitions.get_petition_by_slug(session, story.PETITION_SLUG)
            assert petition is not None
            return {
                "users": len(store.list_users(session)),
                "cases": len(store.list_cases(session)),
                "names": len(store.list_case_names(session, case_id)),
                "signals": store.count_signals(session),
                "findings": store.count_findings(session, case_id),
                "removed": store.count_findings(session, case_id, status="removed"),
                "scans": len(store.list_crawl_runs(session, case_id)),
                "notices": store.count_notices(session, case_id),
                "signatures": sum(signatures.count_rows(session, petition.id, s) for s in ("pending", "verified")),
                "flags": len(petitions.list_flags(session, petition.id)),
                "clients": len(store.list_clients(session)),
                "requests": len(inbox.list_requests(session)),
            }
    finally:
        engine.dispose()


def test_every_page_is_populated(seeded: Seeded, http: TestClient) -> None:
    case_id = seeded.seed.case_id
    assert seeded.seed.password and seeded.seed.email == story.ACCOUNT_EMAIL

    assert story.CASE_NAME in _ok(http, "/app/").text

    case = _ok(http, f"/app/cases/{case_id}").text
    assert case.count("<svg") >= 3  # found vs taken down, time to removal, notices by state (and signatures)
    for name in (story.PERSON, *story.ALIASES, *story.USERNAMES):
        assert name in case
    assert "hashes in" in case and "No hashes loaded yet" not in case
    assert seeded.site.url("/media/rocket-mirrored.jpg") in case  # a planted copy, shown as text
    assert "https://ada-demoulin-videos.com/" in case  # a look-alike domain from the replayed feed
    assert 'id="scan-state"' in case and 'data-state="done"' in case
    taken_down = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td><td>(\d+)</td></tr>", case)
    assert len(taken_down) >= 3, "the found vs taken-down table spans several days"
    assert int(taken_down[-1][2]) > int(taken_down[0][2]) and int(taken_down[-1][2]) > 0

    removed = _ok(http, f"/app/cases/{case_id}?status=removed").text
    assert seeded.site.url("/media/astronaut-resized.jpg") in removed

    finding_ids = [int(i) for i in re.findall(rf"/app/cases/{case_id}/findings/(\d+)", case)]
    assert finding_ids
    evidence = [_ok(http, f"/app/cases/{case_id}/findings/{i}").text for i in finding_ids]
    assert any("What matched" in page for page in evidence)
    assert any("Which name matched" in page for page in evidence)

    notices = _ok(http, f"/app/cases/{case_id}/notices/").text
    notice_ids = sorted({int(i) for i in re.findall(rf"/app/cases/{case_id}/notices/(\d+)", notices)})
    assert len(notice_ids) == 3
    states = [_ok(http, f"/app/cases/{case_id}/notices/{i}").text for i in notice_ids]
    assert any("Send it now" in page for page in states)  # the draft waiting for review
    assert sum('<span class="tag">removed</span>' in page for page in states) == 2

    petition = _ok(http, f"/app/cases/{case_id}/petition").text
    assert story.PETITION_TITLE in petition and 'id="flag-' in petition  # counts, comments and the burst to review
    assert "Nobody should have to fight this alone." in petition
    public = _ok(http, f"/p/{story.PETITION_SLUG}").text
    assert story.PETITION_TITLE in public

    operator = _ok(http, "/app/operator/").text
    assert story.API_CLIENT in operator and f"case-{case_id}" in operator
    assert story.INBOX_REQUEST["name"] in _ok(http, "/app/operator/inbox/").text
    assert "demo_seeded" in _ok(http, f"/app/cases/{case_id}/audit").text


def test_notices_went_to_the_mail_sink(seeded: Seeded) -> None:
    mails = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in seeded.sink.stored()]
    assert sorted(m["To"] for m in mails) == sorted([story.HOST_ABUSE, story.REGISTRAR_ABUSE])
    host = next(m for m in mails if m["To"] == story.HOST_ABUSE)
    text = host.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert seeded.site.url("/media/astronaut-resized.jpg") in text and "TAKE IT DOWN" in text
    # the host complied: the demo site answers 410 for what the notice named, and the re-check recorded it
    assert httpx.get(seeded.site.url("/media/astronaut-resized.jpg"), trust_env=False).status_code == 410


def test_seeding_twice_duplicates_nothing(seeded: Seeded, http: TestClient) -> None:
    before = _counts(seeded.settings, seeded.seed.case_id)
    assert before["findings"] >= 15 and before["removed"] >= 3 and before["signatures"] >= 12
    assert before["flags"] == 1 and before["clients"] == 1 and before["requests"] == 1
    again = seed_demo(seeded.settings, seeded.site, mail=True)
    assert again.done == [] and again.password is None and again.case_id == seeded.seed.case_id
    assert _counts(seeded.settings, seeded.seed.case_id) == before
    assert len(seeded.sink.stored()) == 2  # nothing sent twice
    assert _ok(http, "/app/").text.count(story.CASE_NAME) == 1


def test_a_new_password_when_asked(seeded: Seeded) -> None:
    fresh = seed_demo(seeded.settings, seeded.site, mail=True, reset_password=True)
    assert fresh.password and fresh.password != seeded.seed.password and fresh.done == [
        f"demo account {story.ACCOUNT_EMAIL}"
    ]


def test_the_demo_never_uses_the_real_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAKEBACK_DATABASE_URL", "postgresql+psycopg://real/db")
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "real"))
    settings = demo_settings(Settings(), None)
    assert settings.database_url == "" and settings.data_dir != tmp_path / "real"
    assert settings.resolved_database_url.startswith("sqlite:///")
    chosen = demo_settings(Settings(), tmp_path / "mine")
    assert chosen.data_dir == tmp_path / "mine" and chosen.database_url == ""


def test_the_site_plants_every_copy_it_lists() -> None:
    with DemoSite() as site:
        for planted in pages.planted():
            response = httpx.get(site.url(planted.path), trust_env=False)
            assert response.status_code == 200 and response.content == planted.data()
        assert httpx.get(site.url("/nothing-here"), trust_env=False).status_code == 404
