"""Seed the demo into a database: account, case with names, bank, a scan of the demo site, the replayed domain
feed, notices and removals, a petition, and the operator's API client and inbox request.

Idempotent step by step: each step looks for what it would make and makes only what is missing, so a second start
reuses everything (no duplicate case, findings, notices or signatures), and a start interrupted half-way finishes
the rest next time.  The scan and the feed run only while the case has no scan and no domain findings yet.

``seed_demo`` is what `takeback serve --demo` calls before the server starts, and what the tests call on a
temporary data dir.  It needs the demo site running (``site.DemoSite``): the scan and the re-check fetch from it
through the guarded fetcher, with an allowance for exactly its host:port.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.accounts import passwords
from takeback.config import Settings
from takeback.demo import feed, media, operator, petition, protect, story, takedown
from takeback.demo.site import DemoSite
from takeback.discover.crawl import CrawlOptions
from takeback.discover.scan import scan_case
from takeback.store.models import utcnow


@dataclass
class DemoSeed:
    email: str
    #: The account's password, only when this run created (or reset) it: it is stored hashed and never again shown.
    password: str | None
    case_id: int
    petition_slug: str
    #: What this run did, one line each (empty when everything was already there).
    done: list[str] = field(default_factory=list)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _account(session: Session, reset_password: bool) -> tuple[int, str | None]:
    user = store.get_user_by_email(session, story.ACCOUNT_EMAIL)
    if user is not None and not reset_password:
        return user.id, None
    password = new_password()
    hashed = passwords.hash_password(password, email=story.ACCOUNT_EMAIL)
    if user is None:
        user = store.create_user(session, story.ACCOUNT_EMAIL, hashed, display_name=story.ACCOUNT_NAME,
                                 is_operator=True)
    else:
        store.update_user(session, user.id, password_hash=hashed, disabled=False)
        store.delete_user_sessions(session, user.id)
    return user.id, password


def _case(session: Session, user_id: int) -> tuple[int, bool]:
    for case, _role in store.user_cases(session, user_id):
        if case.name == story.CASE_NAME:
            return case.id, False
    case = store.create_case(session, story.CASE_NAME)
    store.add_member(session, case.id, user_id, "owner")
    return case.id, True


def _names(session: Session, case_id: int) -> int:
    have = {(n.value, n.kind) for n in store.list_case_names(session, case_id)}
    wanted = [(story.PERSON, "name")] + [(a, "alias") for a in story.ALIASES] + [(u, "username")
                                                                                 for u in story.USERNAMES]
    missing = [w for w in wanted if w not in have]
    for value, kind in missing:
        store.add_case_name(session, case_id, value, kind)
    return len(missing)


def seed_demo(
    settings: Settings,
    site: DemoSite,
    *,
    mail: bool,
    reset_password: bool = False,
    now: datetime | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> DemoSeed:
    """Seed (or complete) the demo in ``settings``' database.  ``mail``: a mail sink is configured in
    ``settings`` (notices are sent to it; otherwise they are marked sent by hand)."""
    now = now or utcnow()
    settings = settings.allowing_origins(site.origin)
    engine, sessions = store.open_store(settings)
    done: list[str] = []

    def note(line: str) -> None:
        done.append(line)
        log(line)

    try:
        with sessions.begin() as session:
            user_id, password = _account(session, reset_password)
            case_id, created = _case(session, user_id)
            added_names = _names(session, case_id)
            bank = store.get_bank_by_name(session, protect.bank_name(case_id))
            needs_bank = bank is None or store.count_signals(session, bank.id) == 0
        if password:
            note(f"demo account {story.ACCOUNT_EMAIL}")
        if created:
            note(f"case {case_id}: {story.CASE_NAME}, {added_names} names and aliases")
        if needs_bank:
            listing = protect.make_hash_list(settings, settings.data_dir / "demo")
            with sessions.begin() as session:
                _bank_id, added = protect.load_bank(session, case_id, listing)
            note(f"bank {protect.bank_name(case_id)}: {added} hashes of {len(media.PROTECTED)} benign photos")
        _discover(sessions, settings, case_id, site, now, note)
        takedown.tell(sessions, settings, case_id, site, mail=mail, now=now, log=note)
        _public_side(sessions, settings, case_id, site, now, note)
        with sessions.begin() as session:
            if done:
                store.audit(session, "demo_seeded", user_id=user_id, case_id=case_id, subject=f"case:{case_id}",
                            detail={"steps": done})
        return DemoSeed(story.ACCOUNT_EMAIL, password, case_id, story.PETITION_SLUG, done)
    finally:
        engine.dispose()


def _discover(sessions: sessionmaker[Session], settings: Settings, case_id: int, site: DemoSite, now: datetime,
              note: Callable[[str], None]) -> None:
    with sessions() as session:
        scanned = bool(store.list_crawl_runs(session, case_id, limit=1))
        watched = bool(store.list_findings(session, case_id, kind="domain", limit=1))
    if not scanned:
        result = scan_case(sessions, settings, case_id, [site.url("/")],
                           options=CrawlOptions(max_pages=50, max_depth=3, max_media=200))
        note(f"scan of the demo site {site.url('/')}: {result.stats.get('pages', 0)} pages, "
             f"{len(result.new_findings)} findings")
    if not watched:
        summary = feed.watch_case(sessions, case_id, now, settings.name_match_threshold)
        note(f"domain watch over the recorded feed: {summary.created} look-alike domains")


def _public_side(sessions: sessionmaker[Session], settings: Settings, case_id: int, site: DemoSite, now: datetime,
                 note: Callable[[str], None]) -> None:
    with sessions.begin() as session:
        info = petition.ensure_petition(session, case_id, now)
        signed = petition.add_supporters(session, info.id, now, settings.petition_flag_postcode_per_hour)
        bank = store.get_bank_by_name(session, protect.bank_name(case_id))
        client = operator.ensure_client(session, bank.id) if bank is not None else False
        filed = operator.ensure_request(session, [site.url("/media/rocket-mirrored.jpg")], now)
    if signed:
        note(f"petition /p/{story.PETITION_SLUG}: {signed} signatures")
    if client:
        note(f"API client {story.API_CLIENT} (scope match, the case's bank)")
    if filed:
        note("TAKE IT DOWN inbox: one request, 28 hours left on its clock")
