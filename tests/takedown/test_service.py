"""End to end against local servers: findings → parties (loopback RDAP) → notice → real SMTP → deadline → escalation
→ re-check through the discover fetcher → removal confirmed → re-upload reopens the chain; evidence verifies."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.fetch import Fetcher, FetchPolicy
from takeback.takedown import service
from takeback.takedown.directory import load_directory
from takeback.takedown.notices import IncompleteNotice
from takeback.takedown.parties import resolve_parties
from takeback.takedown.rdap import RdapClient
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer
from tests.smtp import SmtpServer
from tests.takedown.rdap_server import rdap_server

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SENDER = {"name": "Jane Doe", "email": "jane@example.org"}
TIDA = {"signature": "/s/ Jane Doe", "sender": SENDER, "good_faith_not_consensual": True}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def setup_case(session: Session, site: WebServer) -> tuple[int, list[int]]:
    case = store.create_case(session, "jane")
    ids = []
    for path in ("/a.jpg", "/b.jpg"):
        url = f"http://www.bad-site.com:{site.port}{path}"
        finding, _ = store.record_finding(session, case.id, url, "media", evidence={"sha256": "ab" * 32})
        ids.append(finding.id)
    return case.id, ids


def resolve(site_port: int, rdap_url: str) -> object:
    rdap = RdapClient(rdap_url, allow_private=True, timeout_s=2.0)
    return asyncio.run(resolve_parties(
        f"http://www.bad-site.com:{site_port}/a.jpg", rdap=rdap, directory=load_directory(),
        resolver=lambda host, port: ["198.18.7.7"],
    ))


def fetcher() -> Fetcher:
    return Fetcher(FetchPolicy(timeout_s=5.0), resolver=lambda host, port: ["127.0.0.1"],
                   allow_networks=ALLOW_LOOPBACK)


async def recheck(sessions: sessionmaker[Session], notice_id: int, now: datetime) -> service.RecheckReport:
    async with fetcher() as f:
        return await service.recheck_notice(sessions, notice_id, f, now=now)


def test_end_to_end(sessions: sessionmaker[Session], smtp_server: SmtpServer) -> None:
    settings = Settings(**smtp_server.settings(smtp_from="notices@takeback.example"))
    pages = {"/a.jpg": Reply(body=b"\xff\xd8fake-jpeg-a", content_type="image/jpeg"),
             "/b.jpg": Reply(body=b"\xff\xd8fake-jpeg-b", content_type="image/jpeg")}
    with WebServer(pages) as site, rdap_server() as rdap:
        with sessions.begin() as session:
            case_id, finding_ids = setup_case(session, site)
            resolution = resolve(site.port, rdap.url("/bootstrap/"))
            parties = service.save_resolution(session, case_id, finding_ids[0], resolution, now=T0)
            service.save_resolution(session, case_id, finding_ids[1], resolution, now=T0)
            host = next(p for p in parties if p.kind == "host")
            assert host.email == "abuse@shady-hosting.example"
            with pytest.raises(IncompleteNotice):
                service.draft_notice(session, case_id, finding_ids, "takeitdown", {"sender": SENDER},
                                     party_id=host.id, now=T0)
            notice = service.draft_notice(session, case_id, finding_ids, "takeitdown", TIDA, party_id=host.id, now=T0)
            assert notice.recipient == "abuse@shady-hosting.example" and notice.channel == "email"
            with pytest.raises(service.UnknownFinding):
                service.draft_notice(session, case_id, [999_999], "takeitdown", TIDA, now=T0)

        # send over real SMTP
        with sessions.begin() as session:
            outcome = service.send_notice(session, settings, notice.id, now=T0)
        assert outcome.sent and outcome.notice.state == "sent"
        assert outcome.notice.due_at == T0 + timedelta(hours=48)
        message = smtp_server.wait_for(1)[0].message
        assert message["To"] == "abuse@shady-hosting.example" and message["Reply-To"] == "jane@example.org"
        assert message["X-Takeback-Notice"] == notice.data["reference"]
        body = message.get_body(("plain",)).get_content()
        assert f"http://www.bad-site.com:{site.port}/a.jpg" in body and "48 hours" in body
        attachments = list(message.iter_attachments())
        assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [("notice.json", "application/json")]
        assert json.loads(attachments[0].get_content())["media_attached"] is False
        with sessions.begin() as session, pytest.raises(store.InvalidTransition):
            service.send_notice(session, settings, notice.id, now=T0)  # never sent twice

        # the deadline: nothing due before 48 h, expired and escalation proposed after
        with sessions.begin() as session:
            assert service.check_due(session, now=T0 + timedelta(hours=47)).expired == []
            due = service.check_due(session, now=T0 + timedelta(hours=49), directory=load_directory())
        assert [n.id for n in due.expired] == [notice.id] and due.expired[0].state == "expired"
        proposal = due.proposals[0]
        # the host did not act: next is its upstream provider (the network above the host's, from RDAP)
        assert proposal.party is not None and proposal.party.kind == "upstream" and proposal.basis == "abuse"
        assert any("Federal Trade Commission" in r["name"] for r in proposal.regulators)
        with sessions.begin() as session:
            follow = service.escalate(session, notice.id, party_id=proposal.party.id, basis="abuse",
                                      details={"explanation": "Hosts intimate images of me", "good_faith": True},
                                      now=T0 + timedelta(hours=50))
            assert follow.parent_id == notice.id and follow.recipient == "abuse@upstream-transit.example"
            assert follow.data["notice"]["sender"]["name"] == "Jane Doe"  # carried over
            assert store.get_notice(session, notice.id).state == "escalated"  # type: ignore[union-attr]
            service.send_notice(session, settings, follow.id, now=T0 + timedelta(hours=50))

        # still online: nothing confirmed
        report = asyncio.run(recheck(sessions, follow.id, T0 + timedelta(hours=60)))
        assert {c.outcome for c in report.checks} == {"present"} and not report.removed
        # gone (404 and 410): removal confirmed, findings removed
        site.routes["/a.jpg"] = Reply(status=404, body=b"gone")
        site.routes["/b.jpg"] = Reply(status=410, body=b"gone")
        report = asyncio.run(recheck(sessions, follow.id, T0 + timedelta(hours=70)))
        assert report.removed and report.notice.state == "removed"
        with sessions() as session:
            assert {store.get_finding(session, i).status for i in finding_ids} == {"removed"}  # type: ignore[union-attr]
        # re-uploaded: finding reopened and a follow-up notice drafted
        site.routes["/b.jpg"] = Reply(body=b"\xff\xd8again", content_type="image/jpeg")
        report = asyncio.run(recheck(sessions, follow.id, T0 + timedelta(days=5)))
        assert report.follow_up is not None and report.follow_up.parent_id == follow.id
        assert report.follow_up.state == "drafted"
        with sessions() as session:
            assert store.get_finding(session, finding_ids[1]).status == "open"  # type: ignore[union-attr]
            assert [u.url for u in store.notice_urls(session, report.follow_up.id)] == [
                f"http://www.bad-site.com:{site.port}/b.jpg"]
            kinds = [e.kind for e in store.list_evidence(session, case_id)]
            check = store.verify_evidence(session, case_id)
    assert check.ok and check.entries == len(kinds)
    for kind in ("party_resolved", "finding", "notice_drafted", "notice_sent", "escalation_proposed", "fetch",
                 "removal_confirmed", "reappeared"):
        assert kind in kinds, kind


def test_unreachable_smtp_keeps_the_notice_queued(sessions: sessionmaker[Session], smtp_server: SmtpServer) -> None:
    with sessions.begin() as session:
        case = store.create_case(session, "c")
        finding, _ = store.record_finding(session, case.id, "https://bad.example/x", "media", evidence={})
        notice = service.draft_notice(session, case.id, [finding.id], "takeitdown", TIDA,
                                      recipient="abuse@host.example", now=T0)
    down = Settings(smtp_host="127.0.0.1", smtp_port=closed_port(), smtp_timeout_s=2)
    with sessions.begin() as session:
        outcome = service.send_notice(session, down, notice.id, now=T0)
    assert not outcome.sent and outcome.notice.state == "queued" and outcome.notice.attempts == 1
    assert outcome.error and "127.0.0.1" in outcome.error and outcome.notice.last_error
    with sessions.begin() as session:
        results = service.retry_queued(session, Settings(**smtp_server.settings()), now=T0 + timedelta(minutes=5))
    assert [r.sent for r in results] == [True] and results[0].notice.attempts == 2
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["abuse@host.example"]
    with sessions() as session:
        kinds = [e.kind for e in store.list_evidence(session, case.id)]
    assert kinds[-2:] == ["send_failed", "notice_sent"]


def test_web_form_notices_are_exported_and_marked(sessions: sessionmaker[Session]) -> None:
    settings = Settings(takedown_followup_days=10)
    with sessions.begin() as session:
        case = store.create_case(session, "c")
        finding, _ = store.record_finding(session, case.id, "https://old.reddit.com/r/x/1", "media", evidence={})
        party = store.upsert_party(session, "platform", "platform:directory:reddit", "Reddit",
                                   web_form="https://support.reddithelp.com/hc/en-us/requests/new", source="directory")
        notice = service.draft_notice(session, case.id, [finding.id], "dsa",
                                      {"sender": SENDER, "explanation": "NCII", "bona_fide": True},
                                      party_id=party.id, now=T0)
        assert notice.channel == "web_form" and notice.recipient is None
        with pytest.raises(service.NotSendable, match="web form"):
            service.send_notice(session, settings, notice.id, now=T0)
        sent = service.mark_notice(session, settings, notice.id, "sent", note="submitted via form", now=T0)
        assert sent.due_at == T0 + timedelta(days=10)
        service.mark_notice(session, settings, notice.id, "acknowledged", note="ticket 123", now=T0 + timedelta(1))
        removed = service.mark_notice(session, settings, notice.id, "removed", now=T0 + timedelta(days=2))
        assert removed.closed_at == T0 + timedelta(days=2)
        with pytest.raises(store.InvalidTransition):
            service.mark_notice(session, settings, notice.id, "refused", now=T0 + timedelta(days=3))
        with pytest.raises(service.TakedownError):
            service.mark_notice(session, settings, notice.id, "escalated")
        entries = store.list_evidence(session, case.id)
        assert [e.kind for e in entries][-3:] == ["notice_sent", "reply", "removal_confirmed"]
        assert entries[-1].payload["time_to_removal_s"] == 2 * 86400


def test_a_late_acknowledgement_opens_a_new_window(sessions: sessionmaker[Session]) -> None:
    """Acknowledged after the deadline passed: the notice gets a fresh deadline from the reply, so the next sweep
    does not expire it again straight away."""
    settings = Settings(takedown_followup_days=10)
    with sessions.begin() as session:
        case = store.create_case(session, "c")
        finding, _ = store.record_finding(session, case.id, "https://old.reddit.com/r/x/2", "media", evidence={})
        party = store.upsert_party(session, "platform", "platform:directory:reddit", "Reddit",
                                   web_form="https://support.reddithelp.com/hc/en-us/requests/new", source="directory")
        notice = service.draft_notice(session, case.id, [finding.id], "dsa",
                                      {"sender": SENDER, "explanation": "NCII", "bona_fide": True},
                                      party_id=party.id, now=T0)
        service.mark_notice(session, settings, notice.id, "sent", now=T0)
        report = service.check_due(session, now=T0 + timedelta(days=11))
        assert [n.id for n in report.expired] == [notice.id]
        late = T0 + timedelta(days=12)
        acked = service.mark_notice(session, settings, notice.id, "acknowledged", note="ticket 9", now=late)
        assert acked.state == "acknowledged" and acked.due_at == late + timedelta(days=10)
        assert service.check_due(session, now=late + timedelta(days=1)).expired == []
        assert [n.id for n in service.check_due(session, now=late + timedelta(days=11)).expired] == [
            notice.id
        ]


def test_a_finding_reopened_by_the_crawler_reopens_the_notice_chain(sessions: sessionmaker[Session]) -> None:
    settings = Settings()
    with sessions.begin() as session:
        case = store.create_case(session, "c")
        finding, _ = store.record_finding(session, case.id, "https://bad.example/x", "media", evidence={},
                                          seen_at=T0)
        notice = service.draft_notice(session, case.id, [finding.id], "takeitdown", TIDA,
                                      recipient="abuse@host.example", now=T0)
        service.mark_notice(session, settings, notice.id, "sent", now=T0)
        service.mark_notice(session, settings, notice.id, "removed", now=T0 + timedelta(hours=5))
        store.record_check(session, finding.id, "removed", http_status=404, checked_at=T0 + timedelta(hours=5))
        assert service.reopen_reappeared(session, now=T0 + timedelta(hours=6)) == []
        # the crawler's re-check sees it again a week later
        store.record_check(session, finding.id, "seen", http_status=200, checked_at=T0 + timedelta(days=7))
        [follow_up] = service.reopen_reappeared(session, now=T0 + timedelta(days=7))
        assert follow_up.parent_id == notice.id and follow_up.state == "drafted"
        assert follow_up.recipient == "abuse@host.example" and follow_up.body == notice.body
        assert service.reopen_reappeared(session, now=T0 + timedelta(days=8)) == []  # once only
        assert [e.kind for e in store.list_notice_events(session, notice.id)][-1] == "reappeared"
        assert store.list_evidence(session, case.id)[-1].kind == "reappeared"


def test_recheck_open_only_rechecks_stale_open_notices(sessions: sessionmaker[Session]) -> None:
    settings = Settings()
    with WebServer({"/gone": Reply(status=404), "/here": Reply(body=b"x")}) as site:
        with sessions.begin() as session:
            case = store.create_case(session, "c")
            ids = {}
            for path in ("/gone", "/here", "/draft"):
                finding, _ = store.record_finding(session, case.id, f"http://site.example:{site.port}{path}", "media",
                                                  evidence={})
                notice = service.draft_notice(session, case.id, [finding.id], "takeitdown", TIDA,
                                              recipient="a@host.example", now=T0)
                if path != "/draft":
                    service.mark_notice(session, settings, notice.id, "sent", now=T0)
                ids[path] = notice.id

        async def sweep(now: datetime) -> list[service.RecheckReport]:
            async with fetcher() as f:
                return await service.recheck_open(sessions, f, now=now)

        reports = asyncio.run(sweep(T0 + timedelta(hours=1)))
        assert {r.notice.id: r.removed for r in reports} == {ids["/gone"]: True, ids["/here"]: False}
        assert asyncio.run(sweep(T0 + timedelta(hours=2))) == []  # checked an hour ago
        assert [r.notice.id for r in asyncio.run(sweep(T0 + timedelta(hours=8)))] == [ids["/here"]]
        assert site.hits["/gone"] == 1


def test_message_ids_are_stable_per_attempt(sessions: sessionmaker[Session], smtp_server: SmtpServer) -> None:
    """The Message-ID is fixed by the notice and the attempt: a retried job resends the same message, a new attempt
    after a refusal is a new message.  Header injection through it is refused."""
    from takeback.mail import Mail, MailError, build_message

    with sessions.begin() as session:
        case = store.create_case(session, "c")
        finding, _ = store.record_finding(session, case.id, "https://bad.example/x", "media", evidence={})
        notice = service.draft_notice(session, case.id, [finding.id], "takeitdown", TIDA,
                                      recipient="abuse@host.example", now=T0)
    settings = Settings(**smtp_server.settings(smtp_from="notices@take-back.example"))
    first = service.message_id(notice, settings, "a1")
    assert first == service.message_id(notice, settings, "a1") != service.message_id(notice, settings, "a2")
    assert first.startswith(f"<{notice.data['reference']}.n{notice.id}.a1@") and first.endswith("@take-back.example>")
    down = Settings(smtp_host="127.0.0.1", smtp_port=closed_port(), smtp_timeout_s=2)
    with sessions.begin() as session:
        assert not service.send_notice(session, down, notice.id, now=T0).sent  # attempt 1 refused
    with sessions.begin() as session:
        sent = service.send_notice(session, settings, notice.id, now=T0).notice
    assert sent.message_id == service.message_id(notice, settings, "a2")
    assert smtp_server.wait_for(1)[0].message["Message-ID"] == sent.message_id
    for bad in ("<a@b>\r\nBcc: victim@example.org", "no-brackets@example.org", "<no-at-sign>"):
        with pytest.raises(MailError):
            build_message(settings, Mail(to=("a@b.example",), subject="s", text="t", message_id=bad))
