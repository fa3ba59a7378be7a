"""The demo's takedown story, told through ``takedown.service`` (the code the dashboard, API and CLI use):

* days ago, an abuse report to the pretend registrar about look-alike domains, sent, then reported removed;
* today, a TAKE IT DOWN notice to the pretend host about two copies on the demo site, sent over SMTP (to the
  demo's mail sink); the host takes the pages down (the demo site answers 410) and a real re-check through the
  guarded fetcher confirms the removal;
* one more notice left as a draft, for the person to review and send from the dashboard.

Times are spread over the last days on purpose (``now`` minus offsets), so the overview shows a history: the gap
between "found" and "taken down" closing.  Each part runs only when its party has no notice yet (idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.demo import story
from takeback.demo.site import DemoSite
from takeback.discover.allow import open_fetcher
from takeback.store.findings import FindingInfo
from takeback.store.parties import PartyInfo
from takeback.takedown import service

#: Findings on the demo site named in today's sent notice, and in the draft (by path of the copy).
SENT_PATHS = ("/media/astronaut-resized.jpg", "/media/coffee-thumbnail.jpg")
DRAFT_PATHS = ("/media/rocket-resized.jpg", "/media/astronaut-thumbnail.jpg")
#: Look-alike domains in the registrar's notice (those found first in the feed).
REGISTRAR_DOMAINS = 4


def parties(session: Session) -> tuple[PartyInfo, PartyInfo]:
    """The pretend host and registrar (upserted: their contact is the demo's, whatever was stored)."""
    host = store.upsert_party(session, "host", story.HOST_PARTY_KEY, story.HOST_PARTY_NAME,
                              email=story.HOST_ABUSE, source="demo")
    registrar = store.upsert_party(session, "registrar", story.REGISTRAR_PARTY_KEY, story.REGISTRAR_PARTY_NAME,
                                   email=story.REGISTRAR_ABUSE, source="demo")
    return host, registrar


def _by_path(findings: list[FindingInfo], site: DemoSite, paths: tuple[str, ...]) -> list[FindingInfo]:
    wanted = {site.url(p) for p in paths}
    return [f for f in findings if f.url in wanted]


def _send(session: Session, settings: Settings, notice_id: int, mail: bool, now: datetime) -> None:
    """Send over SMTP to the sink; without a sink, record it as sent by hand (the web-form path) with a note."""
    if mail:
        outcome = service.send_notice(session, settings, notice_id, now=now)
        if outcome.sent:
            return
    service.mark_notice(session, settings, notice_id, "sent", now=now,
                        note="demo: no local mail sink (pip install 'takeback[demo]'), marked as sent by hand")


def tell(sessions: sessionmaker[Session], settings: Settings, case_id: int, site: DemoSite, *, mail: bool,
         now: datetime, log: Callable[[str], None]) -> None:
    with sessions.begin() as session:
        host, registrar = parties(session)
        findings = store.list_findings(session, case_id, limit=1000)
        for f in findings:
            if f.url.startswith(site.url("/")):
                store.link_finding_party(session, f.id, host.id, "host", at=now)
            elif f.kind == "domain":
                store.link_finding_party(session, f.id, registrar.id, "registrar", at=now)
        notices = store.list_notices(session, case_id, limit=1000)
    told = {n.party_id for n in notices}
    if registrar.id not in told:
        _registrar_story(sessions, settings, case_id, registrar, findings, mail=mail, now=now)
        log("notice to the registrar: sent four days ago, removed two days ago")
    if host.id not in told:
        _host_story(sessions, settings, case_id, host, findings, site, mail=mail, now=now)
        log("TAKE IT DOWN notice to the host: sent, pages taken down, removal confirmed by a re-check")
        with sessions.begin() as session:
            drafted = _by_path(findings, site, DRAFT_PATHS)
            if drafted:
                service.draft_notice(session, case_id, [f.id for f in drafted], "takeitdown",
                                     story.NOTICE_DETAILS["takeitdown"], party_id=host.id, now=now)
                log("one more notice drafted, for you to review and send")


def _registrar_story(sessions: sessionmaker[Session], settings: Settings, case_id: int, registrar: PartyInfo,
                     findings: list[FindingInfo], *, mail: bool, now: datetime) -> None:
    domains = sorted((f for f in findings if f.kind == "domain"), key=lambda f: f.first_seen_at)
    chosen = [f for f in domains if not f.url.startswith("https://www.")][:REGISTRAR_DOMAINS]
    if not chosen:
        return
    sent_at, removed_at = now - timedelta(days=4), now - timedelta(days=2)
    with sessions.begin() as session:
        notice = service.draft_notice(session, case_id, [f.id for f in chosen], "abuse", story.NOTICE_DETAILS["abuse"],
                                      party_id=registrar.id, now=sent_at - timedelta(hours=1))
        _send(session, settings, notice.id, mail, sent_at)
    with sessions.begin() as session:
        service.mark_notice(session, settings, notice.id, "removed", now=removed_at,
                            note="Registrar: the domains are suspended.")
        for f in chosen:  # a suspended domain is a removal of the finding, as a re-check would record it
            store.record_check(session, f.id, "removed", details={"reason": "suspended by the registrar",
                                                                   "notice_id": notice.id}, checked_at=removed_at)


def _host_story(sessions: sessionmaker[Session], settings: Settings, case_id: int, host: PartyInfo,
                findings: list[FindingInfo], site: DemoSite, *, mail: bool, now: datetime) -> None:
    chosen = _by_path(findings, site, SENT_PATHS)
    if not chosen:
        return
    sent_at = now - timedelta(hours=3)
    with sessions.begin() as session:
        notice = service.draft_notice(session, case_id, [f.id for f in chosen], "takeitdown",
                                      story.NOTICE_DETAILS["takeitdown"], party_id=host.id,
                                      now=sent_at - timedelta(minutes=20))
        _send(session, settings, notice.id, mail, sent_at)
    for path in SENT_PATHS:
        site.take_down(path)  # the host complies

    async def recheck() -> None:
        async with open_fetcher(settings) as fetcher:
            await service.recheck_notice(sessions, notice.id, fetcher, now=now)

    asyncio.run(recheck())
