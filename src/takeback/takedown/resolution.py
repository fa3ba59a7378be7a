"""Resolve and remember who can remove one finding: the shared path of ``takeback notices parties`` and
``POST /v1/findings/{id}/parties``.

Network work (RDAP, the site's pages) happens outside any database transaction; the result is saved in one
transaction afterwards (parties upserted, linked to the finding, the resolution path appended to the evidence log).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.urlguard import UnsafeURL
from takeback.store.parties import PartyInfo
from takeback.takedown import network, service
from takeback.takedown.directory import Directory
from takeback.takedown.parties import PartyResolution, resolve_parties


def page_of(finding: store.FindingInfo) -> str | None:
    """The page a media finding was seen on (its contact links are read first), from the crawl evidence."""
    page = (finding.evidence or {}).get("page")
    url = page.get("url") if isinstance(page, dict) else None
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else None


async def resolve_finding(
    sessions: sessionmaker[Session], settings: Settings, finding_id: int, *, directory: Directory,
    basis: str | None = None, case_ids: frozenset[int] | None = None, now: datetime | None = None,
) -> tuple[store.FindingInfo, PartyResolution, list[PartyInfo]]:
    """Everyone who can remove the finding, saved; ``UnknownFinding`` when there is no such finding (or it is not
    in ``case_ids``), ``TakedownError`` when its URL cannot be looked up at all."""
    with sessions() as session:
        finding = store.get_finding(session, finding_id)
    if finding is None or (case_ids is not None and finding.case_id not in case_ids):
        raise service.UnknownFinding(f"no finding {finding_id}")
    rdap = network.rdap_client(settings)
    try:
        async with network.open_fetcher(settings) as fetcher:
            resolution = await resolve_parties(finding.url, rdap=rdap, directory=directory, fetcher=fetcher,
                                               resolver=network.resolver(), basis=basis, page_url=page_of(finding))
    except UnsafeURL as exc:
        raise service.TakedownError(f"the finding's URL cannot be looked up: {exc.message}") from None
    with sessions.begin() as session:
        saved = service.save_resolution(session, finding.case_id, finding.id, resolution, now=now)
    return finding, resolution, saved
