"""What the tests of takeback's real background tasks share: a loopback web site with the protected photo on it and a
gate that holds one answer, a case scanned a week ago (due for a re-scan), findings checked two days ago (due for a
re-check), a queued takedown notice, an SMTP server that can hold a sender in the middle of its conversation, and
readers of the effects (findings and their events, crawl runs, notice states, mails).

The tasks reach the site through the SSRF guard's code-only allowance for exactly one origin
(``Settings.allowing_origins``, ``discover.allow``): every other private address stays refused.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.store.models import utcnow
from takeback.store.models_findings import CrawlRun, Finding
from takeback.store.models_notices import Notice
from takeback.takedown import service as takedown
from tests.discover.crawl_site import BANKED, bank_case, html, jpeg
from tests.discover.webserver import Reply, Request, Route, WebServer

#: Never fires during a test (1 January, 00:00): schedules are driven by the test, not by the wall clock.
NEVER = "0 0 1 1 *"
QUIET_CRONS = {
    "jobs_notices_cron": NEVER,
    "jobs_rescan_cron": NEVER,
    "jobs_recheck_cron": NEVER,
    "jobs_webhooks_cron": NEVER,
}
#: How long a held answer waits for its gate at most (the tests open it much sooner, or kill the client).
HOLD_S = 60.0
SENDER = {"name": "Jane Doe", "email": "jane@example.org"}
TIDA = {"signature": "/s/ Jane Doe", "sender": SENDER, "good_faith_not_consensual": True}
RECIPIENT = "abuse@host.example"


class Gate:
    """Holds the answers routed through ``hold`` until ``open``; ``waiting`` is set once a request is held (so a
    test knows its client is in the middle of a job)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.waiting = threading.Event()

    def open(self) -> None:
        self.opened.set()

    def hold(self, reply: Reply) -> Route:
        def route(_: Request) -> Reply:
            self.waiting.set()
            self.opened.wait(HOLD_S)
            return reply

        return route


def site_routes(gate: Gate | None = None) -> dict[str, Any]:
    """A gallery: ``/`` shows a copy of the protected photo and links ``/more`` (held by ``gate`` if given), which
    shows a second copy.  So a crawl records ``/a.jpg`` before it waits for ``/more``."""
    more = html('<img src="/b.jpg">')
    return {
        "/": html('<img src="/a.jpg"><a href="/more">more</a>'),
        "/a.jpg": Reply(body=jpeg(BANKED), content_type="image/jpeg"),
        "/more": gate.hold(more) if gate is not None else more,
        "/b.jpg": Reply(body=jpeg(BANKED, (200, 150), 70), content_type="image/jpeg"),
    }



def week_old_scan(sessions: sessionmaker[Session], site: WebServer) -> int:
    """A case with the protected photo banked and one finished scan of ``site``, started 8 days ago: due for a
    scheduled re-scan (``discover.scan.due_cases``).  Returns the case id."""
    case_id, _ = bank_case(sessions, names=())
    with sessions.begin() as session:
        run = store.start_crawl_run(session, case_id, {"seeds": [site.url("/")], "max_pages": 20, "max_depth": 2})
        store.update_crawl_run(session, run.id, stats={}, status="done")
        session.execute(
            update(CrawlRun).where(CrawlRun.id == run.id).values(started_at=utcnow() - timedelta(days=8))
        )
    return case_id


def checked_findings(sessions: sessionmaker[Session], site: WebServer, paths: tuple[str, ...]) -> tuple[int, list[int]]:
    """A case with the protected photo banked and a media finding per path of ``site``, last checked two days
    ago: due for a scheduled re-check (``discover.recheck.due_findings``).  Returns (case id, finding ids)."""
    case_id, _ = bank_case(sessions, names=())
    ids = []
    with sessions.begin() as session:
        for path in paths:
            finding, _ = store.record_finding(session, case_id, site.url(path), "media", evidence={})
            ids.append(finding.id)
        session.execute(
            update(Finding).where(Finding.id.in_(ids)).values(last_checked_at=utcnow() - timedelta(days=2))
        )
    return case_id, ids


def queued_notice(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """A takedown notice waiting in ``queued`` (its last attempt an hour ago, so the sweep's back-off is over).
    Returns (case id, notice id)."""
    with sessions.begin() as session:
        case = store.create_case(session, "Case of N.")
        finding, _ = store.record_finding(session, case.id, "https://bad.example/x.jpg", "media", evidence={})
        notice = takedown.draft_notice(session, case.id, [finding.id], "takeitdown", TIDA, recipient=RECIPIENT)
        store.transition(session, notice.id, "queued", error="not sent yet")
        session.execute(
            update(Notice).where(Notice.id == notice.id).values(updated_at=utcnow() - timedelta(hours=1))
        )
    return case.id, notice.id


# --- effects -------------------------------------------------------------------------------------------------------


def findings_by_path(sessions: sessionmaker[Session], case_id: int, site: WebServer) -> dict[str, str]:
    """path -> status of the case's findings (one row per URL, so a duplicate would show as a lost key)."""
    with sessions() as session:
        rows = store.list_findings(session, case_id)
    paths = [f.url.removeprefix(site.origin) for f in rows]
    assert len(paths) == len(set(paths)), f"a URL recorded twice: {sorted(paths)}"
    return {f.url.removeprefix(site.origin): f.status for f in rows}


def finding_events(sessions: sessionmaker[Session], case_id: int, site: WebServer) -> dict[str, list[str]]:
    with sessions() as session:
        return {
            f.url.removeprefix(site.origin): [e.event for e in store.list_finding_events(session, f.id)]
            for f in store.list_findings(session, case_id)
        }


def crawl_runs(sessions: sessionmaker[Session], case_id: int) -> list[str]:
    """Statuses of the case's crawl runs, oldest first."""
    with sessions() as session:
        return [r.status for r in reversed(store.list_crawl_runs(session, case_id))]


def notice_state(sessions: sessionmaker[Session], notice_id: int) -> tuple[str, list[str], int]:
    """(state, its events' kinds, evidence entries "notice_sent")."""
    with sessions() as session:
        notice = store.get_notice(session, notice_id)
        assert notice is not None
        events = [e.kind for e in store.list_notice_events(session, notice_id)]
        sent = [e for e in store.list_evidence(session, notice.case_id) if e.kind == "notice_sent"]
    return notice.state, events, len(sent)


# --- an SMTP server that can hold a sender -------------------------------------------------------------------------


@dataclass
class Mailbox:
    """A real SMTP server on loopback (aiosmtpd).  While ``hold`` is set, a sender is kept waiting after RCPT TO
    (before any message content), until ``release``: so a worker can be killed in the middle of sending, at a point
    where nothing was delivered."""

    host: str
    port: int
    received: list[EmailMessage] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    hold: bool = False
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        self.hold = False
        self._released.set()

    def settings(self) -> dict[str, Any]:
        return {"smtp_host": self.host, "smtp_port": self.port, "smtp_from": "notices@takeback.example"}

    def env(self) -> dict[str, str]:
        return {"TAKEBACK_SMTP_HOST": self.host, "TAKEBACK_SMTP_PORT": str(self.port),
                "TAKEBACK_SMTP_FROM": "notices@takeback.example"}  # fmt: skip

    def recipients(self) -> list[list[str]]:
        with self._lock:
            return [sorted(m.get_all("To", [])) for m in self.received]


class _MailboxHandler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any) -> str:
        if self.box.hold:
            self.box.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.box._released.wait, HOLD_S)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.box._lock:
            self.box.received.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def mailbox() -> Iterator[Mailbox]:
    """Generator for a fixture: a started ``Mailbox``, stopped (and any held sender released) afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox("127.0.0.1", port)
    controller = Controller(_MailboxHandler(box), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        box.release()
        controller.stop()
