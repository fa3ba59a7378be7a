"""Automatic follow-through through the jobs layer, on the local backend with a controllable clock, on SQLite and
PostgreSQL, with a real SMTP server and a real web site on loopback:

deadline passes → expired → one reminder to the same party (citing the notice; stable Message-ID; never twice, even
when the job runs again) → grace period → escalation proposed to the person (default) or carried out and sent
(``takedown_auto_escalate``); periodic re-checks confirm removal and reopen the chain once when the content is back;
a crash between the mail server's acceptance and our commit resends the reminder with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.jobs.effects import ensure_tables
from takeback.jobs.local import LocalBackend
from takeback.jobs.tasks import takeback_tasks
from takeback.mail import Mail, MailError, send_mail
from takeback.store.db import make_engine, session_factory
from takeback.takedown import followup, service
from tests.discover.webserver import Reply, WebServer
from tests.smtp import SmtpServer
from tests.takedown.loopback import patch_network

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
TIDA = {"signature": "/s/ Jane Doe", "sender": {"name": "Jane Doe", "email": "jane@example.org"},
        "good_faith_not_consensual": True}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    ensure_tables(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer({"/a.jpg": Reply(body=b"\xff\xd8not-a-real-photo", content_type="image/jpeg")}) as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_fetcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs' fetcher, allowed to reach the loopback test site (production code never allows it)."""
    patch_network(monkeypatch)


@dataclass
class World:
    settings: Settings
    backend: LocalBackend
    clock: Clock
    sessions: sessionmaker[Session]
    case_id: int
    notice_id: int
    parties: dict[str, int]

    async def sweep(self, at: datetime, task: str = "notices.check_deadlines") -> int:
        self.clock.at(at)
        await self.backend.enqueue(task)
        return await self.backend.run_due()

    def notice(self, notice_id: int | None = None) -> store.NoticeInfo:
        with self.sessions() as session:
            found = store.get_notice(session, notice_id or self.notice_id)
            assert found is not None
            return found

    def events(self, notice_id: int | None = None) -> list[str]:
        with self.sessions() as session:
            return [e.kind for e in store.list_notice_events(session, notice_id or self.notice_id)]

    def evidence(self) -> list[str]:
        with self.sessions() as session:
            assert store.verify_evidence(session, self.case_id).ok
            return [e.kind for e in store.list_evidence(session, self.case_id)]


def make_world(sessions: sessionmaker[Session], smtp: SmtpServer, site: WebServer, tmp_path: Path,
               **overrides: Any) -> World:
    settings = Settings(**smtp.settings(smtp_from="notices@takeback.example"), data_dir=tmp_path, **overrides)
    url = f"http://www.bad-site.com:{site.port}/a.jpg"
    with sessions.begin() as session:
        case = store.create_case(session, "jane")
        finding, _ = store.record_finding(session, case.id, url, "media", evidence={"sha256": "ab" * 32}, seen_at=T0)
        parties = {}
        for kind, key, email in (("host", "host:rdap:NET-SHADY", "abuse@shady-hosting.example"),
                                 ("upstream", "upstream:rdap:NET-UP", "abuse@upstream-transit.example"),
                                 ("registrar", "registrar:iana:4242", "abuse@registrar.example")):
            party = store.upsert_party(session, kind, key, kind.title(), email=email, source="rdap")
            store.link_finding_party(session, finding.id, party.id, kind, at=T0)
            parties[kind] = party.id
        notice = service.draft_notice(session, case.id, [finding.id], "takeitdown", TIDA, party_id=parties["host"],
                                      now=T0)
    with sessions.begin() as session:
        assert service.send_notice(session, settings, notice.id, now=T0).sent
    clock = Clock(T0)
    backend = LocalBackend(settings, sessions, takeback_tasks(settings, backend="local"), clock=clock)
    return World(settings, backend, clock, sessions, case.id, notice.id, parties)


async def test_reminder_once_then_escalation_proposed(sessions: sessionmaker[Session], smtp_server: SmtpServer,
                                                     site: WebServer, tmp_path: Path) -> None:
    world = make_world(sessions, smtp_server, site, tmp_path)
    [original] = smtp_server.wait_for(1)
    assert world.notice().message_id == original.message["Message-ID"]
    assert original.message["Message-ID"].endswith(".a1@takeback.example>")

    await world.sweep(T0 + timedelta(hours=47))
    assert world.notice().state == "sent" and len(smtp_server.received) == 1

    await world.sweep(T0 + timedelta(hours=49))  # past the 48 hours: expired, reminded
    assert world.notice().state == "expired"
    reminder = smtp_server.wait_for(2)[1].message
    assert reminder["To"] == "abuse@shady-hosting.example" and reminder["Reply-To"] == "jane@example.org"
    assert reminder["Subject"].startswith("Reminder: Removal request for a non-consensual intimate")
    assert reminder["In-Reply-To"] == original.message["Message-ID"]
    assert reminder["Message-ID"] == original.message["Message-ID"].replace(".a1@", ".r1@")
    text = reminder.get_body(("plain",)).get_content()
    reference = world.notice().data["reference"]
    assert reference in text and "48 hours" in text and f"127.0.0.1:{site.port}" not in text
    assert f"http://www.bad-site.com:{site.port}/a.jpg" in text and "2026-03-04 09:00 UTC" in text

    # the sweep again, and the reminder job itself again (a retry): nothing more is sent
    await world.sweep(T0 + timedelta(hours=50))
    await world.backend.enqueue("notices.remind", {"notice_id": world.notice_id}, key="again")
    await world.backend.run_due()
    assert len(smtp_server.received) == 2
    assert world.events().count("reminder_sent") == 1

    # the grace period: nothing yet after 2 days, the next step proposed after 3 (not carried out by default)
    await world.sweep(T0 + timedelta(hours=49, days=2))
    assert "escalation_due" not in world.events()
    await world.sweep(T0 + timedelta(hours=49, days=3, minutes=1))
    assert world.notice().state == "expired" and world.events()[-1] == "escalation_due"
    with sessions() as session:
        proposal = store.list_evidence(session, world.case_id)[-1]
    assert proposal.kind == "escalation_proposed" and proposal.payload["next_party_id"] == world.parties["upstream"]
    assert proposal.payload["after"] == "reminder" and proposal.payload["basis"] == "abuse"
    before = world.evidence()
    await world.sweep(T0 + timedelta(days=10))
    assert world.evidence() == before and len(smtp_server.received) == 2
    assert before.count("reminder_sent") == 1 and before.count("escalation_proposed") == 2  # at expiry, after grace


async def test_automatic_escalation_goes_down_the_parties(sessions: sessionmaker[Session], smtp_server: SmtpServer,
                                                         site: WebServer, tmp_path: Path) -> None:
    world = make_world(sessions, smtp_server, site, tmp_path, takedown_auto_escalate=True,
                       takedown_reminder_grace_days=1)
    await world.sweep(T0 + timedelta(hours=49))
    await world.sweep(T0 + timedelta(hours=49, days=1, minutes=1))
    assert world.notice().state == "escalated"
    with sessions() as session:
        [upstream_notice] = store.child_notices(session, world.notice_id)
    assert upstream_notice.basis == "abuse" and upstream_notice.party_id == world.parties["upstream"]
    sent = world.notice(upstream_notice.id)
    assert sent.state == "sent" and sent.due_at == T0 + timedelta(hours=49, days=15, minutes=1)
    mail = smtp_server.wait_for(3)[2].message
    assert mail["To"] == "abuse@upstream-transit.example"
    body = mail.get_body(("plain",)).get_content()
    assert "intimate images of me published without my consent" in body and world.notice().data["reference"] in body
    assert sent.data["notice"]["good_faith"] is True and "auto_escalation" in world.events(upstream_notice.id)
    # the escalation job again: nothing new
    await world.backend.enqueue("notices.escalate", {"notice_id": world.notice_id}, key="again")
    await world.backend.run_due()
    assert len(smtp_server.received) == 3

    # the upstream provider does not act either: its reminder, then the registrar
    await world.sweep(T0 + timedelta(hours=49, days=15, minutes=2))
    assert smtp_server.wait_for(4)[3].message["To"] == "abuse@upstream-transit.example"
    await world.sweep(T0 + timedelta(hours=49, days=16, minutes=3))
    with sessions() as session:
        [registrar_notice] = store.child_notices(session, upstream_notice.id)
    assert registrar_notice.party_id == world.parties["registrar"] and registrar_notice.state == "sent"
    assert smtp_server.wait_for(5)[4].message["To"] == "abuse@registrar.example"
    kinds = world.evidence()
    assert kinds.count("escalated") == 2 and kinds.count("reminder_sent") == 2


async def test_refused_and_web_form_notices_skip_the_reminder(sessions: sessionmaker[Session],
                                                              smtp_server: SmtpServer, site: WebServer,
                                                              tmp_path: Path) -> None:
    world = make_world(sessions, smtp_server, site, tmp_path)
    with sessions.begin() as session:
        service.mark_notice(session, world.settings, world.notice_id, "refused", note="not our content",
                            now=T0 + timedelta(hours=2))
    await world.sweep(T0 + timedelta(hours=3))
    assert world.events()[-1] == "escalation_due" and len(smtp_server.received) == 1
    with sessions.begin() as session:
        finding = store.notice_urls(session, world.notice_id)[0].finding_id
        form = store.upsert_party(session, "platform", "platform:directory:x", "X", web_form="https://x.example/f",
                                  source="directory")
        web = service.draft_notice(session, world.case_id, [finding], "takeitdown", TIDA, party_id=form.id, now=T0)
        service.mark_notice(session, world.settings, web.id, "sent", now=T0)
    await world.sweep(T0 + timedelta(hours=49))  # expired: no e-mail channel, so straight to the proposal
    assert world.notice(web.id).state == "expired" and "reminder_sent" not in world.events(web.id)
    assert world.events(web.id)[-1] == "escalation_due" and len(smtp_server.received) == 1


async def test_a_crash_after_the_mail_server_accepted_resends_the_same_message(
        sessions: sessionmaker[Session], smtp_server: SmtpServer, site: WebServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(sessions, smtp_server, site, tmp_path)
    crashes = [1]

    def accepted_then_crash(settings: Settings, mail: Mail) -> str:
        message_id = send_mail(settings, mail)  # the server said 250 ...
        if crashes:
            crashes.pop()
            raise RuntimeError("worker died before committing")  # ... and we never recorded it
        return message_id

    monkeypatch.setattr(followup, "send_mail", accepted_then_crash)
    await world.sweep(T0 + timedelta(hours=49))
    assert len(smtp_server.wait_for(2)) == 2 and "reminder_sent" not in world.events()
    [failed] = [j for j in await world.backend.list_jobs() if j.task == "notices.remind"]
    assert failed.status == "todo" and "worker died" in (failed.error or "")
    world.clock.at(T0 + timedelta(hours=49, minutes=2))  # the retry after its backoff
    await world.backend.run_due()
    first, again = smtp_server.wait_for(3)[1:]
    assert first.message["Message-ID"] == again.message["Message-ID"]  # one message, delivered twice
    assert world.events().count("reminder_sent") == 1 and world.evidence().count("reminder_sent") == 1
    await world.sweep(T0 + timedelta(hours=50))
    assert len(smtp_server.received) == 3


async def test_a_refused_reminder_is_retried_then_given_up(sessions: sessionmaker[Session], smtp_server: SmtpServer,
                                                           site: WebServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(sessions, smtp_server, site, tmp_path)

    def refuse(settings: Settings, mail: Mail) -> str:
        raise MailError("550 mailbox unavailable")

    monkeypatch.setattr(followup, "send_mail", refuse)
    at = T0 + timedelta(hours=49)
    await world.sweep(at)
    assert world.events()[-1] == "reminder_failed"
    await world.sweep(at + timedelta(minutes=1))  # backing off: not yet
    assert world.events().count("reminder_failed") == 1
    for minutes in (3, 10, 30, 60):
        await world.sweep(at + timedelta(minutes=minutes))
    kinds = world.events()
    assert kinds.count("reminder_failed") == followup.MAX_REMINDER_FAILURES and "reminder_abandoned" in kinds
    await world.sweep(at + timedelta(hours=2))  # given up: the chain goes on at once
    assert world.events()[-1] == "escalation_due"
    assert world.evidence().count("reminder_failed") == followup.MAX_REMINDER_FAILURES


async def test_rechecks_confirm_removal_and_reopen_the_chain_once(sessions: sessionmaker[Session],
                                                                  smtp_server: SmtpServer, site: WebServer,
                                                                  tmp_path: Path) -> None:
    world = make_world(sessions, smtp_server, site, tmp_path)
    await world.sweep(T0 + timedelta(hours=1), "notices.recheck_due")
    assert site.hits["/a.jpg"] == 1 and world.notice().state == "sent"
    await world.sweep(T0 + timedelta(hours=2), "notices.recheck_due")
    assert site.hits["/a.jpg"] == 1  # checked an hour ago: not due
    site.routes["/a.jpg"] = Reply(status=404, body=b"gone")
    await world.sweep(T0 + timedelta(hours=8), "notices.recheck_due")
    assert world.notice().state == "removed" and site.hits["/a.jpg"] == 2
    await world.sweep(T0 + timedelta(hours=20), "notices.recheck_due")
    assert site.hits["/a.jpg"] == 2  # removed notices are looked at daily
    site.routes["/a.jpg"] = Reply(body=b"\xff\xd8re-uploaded", content_type="image/jpeg")
    await world.sweep(T0 + timedelta(days=2), "notices.recheck_due")
    with sessions() as session:
        [follow_up] = store.child_notices(session, world.notice_id)
        assert store.get_finding(session, store.notice_urls(session, follow_up.id)[0].finding_id).status == "open"
    assert follow_up.state == "drafted" and follow_up.party_id == world.parties["host"]
    # later sweeps re-check the follow-up chain, never draft a second follow-up
    await world.backend.enqueue("notices.recheck", {"notice_id": world.notice_id}, key="again")
    await world.backend.run_due()
    await world.sweep(T0 + timedelta(days=4), "notices.recheck_due")
    with sessions() as session:
        assert len(store.child_notices(session, world.notice_id)) == 1
    kinds = world.evidence()
    assert kinds.count("reappeared") == 1 and kinds.count("removal_confirmed") == 1 and "fetch" in kinds


def test_the_follow_through_is_scheduled_on_both_backends() -> None:
    settings = Settings()
    for backend in ("local", "procrastinate"):
        tasks = takeback_tasks(settings, backend=backend)
        assert {"notices.remind", "notices.escalate", "notices.recheck", "notices.recheck_due"} <= set(tasks.tasks)
        schedules = {s.task for s in tasks.schedules}
        assert {"notices.check_deadlines", "notices.recheck_due"} <= schedules
