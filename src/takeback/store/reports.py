"""Aggregates for the dashboard's charts and lists, computed from the store so a case with many findings stays cheap.

A finding's *stage* is what the person wants to know about it — new, notified, removed, back again — and it is not
one column: it combines the finding's own status (re-checks), its history (a re-upload is recorded as
``reopened``) and the notices that cover it (a notice the person marked *removed*).  ``finding_stages`` is the one
place that rule lives; the overview's timeline replays the same rule over time, so the chart and the filtered list
always agree.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from takeback.store._sql import chunked, is_id
from takeback.store.models_findings import Finding, FindingEvent
from takeback.store.models_notices import Notice, NoticeUrl, Party
from takeback.store.notices import STATES, NoticeInfo, count_notices, get_notice
from takeback.store.petitions import breakdown

#: Stages, in the order a finding usually goes through them.
STAGES = ("new", "notified", "removed", "back")
STAGE_LABELS = {"new": "new", "notified": "notified", "removed": "removed", "back": "back again"}
#: Notice states in which the notice has left (the party was told).
_TOLD = frozenset({"sent", "acknowledged", "refused", "expired", "escalated"})


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    found: int
    removed: int


@dataclass(frozen=True, slots=True)
class PartyRemoval:
    party: str
    #: Notices to this party that ended in removal, and the median hours from sending to removal.
    removed: int
    median_hours: float


@dataclass(frozen=True, slots=True)
class SignatureDay:
    day: date
    #: Signatures signed up to the end of the day, by their status now.
    verified: int
    pending: int


@dataclass(frozen=True, slots=True)
class _Cover:
    state: str
    sent_at: datetime | None
    closed_at: datetime | None


def _covers(session: Session, case_id: int) -> dict[int, list[_Cover]]:
    """The case's notices per finding they name."""
    rows = session.execute(
        select(NoticeUrl.finding_id, Notice.state, Notice.sent_at, Notice.closed_at)
        .join(Notice, Notice.id == NoticeUrl.notice_id)
        .where(Notice.case_id == case_id, NoticeUrl.finding_id.is_not(None))
    )
    out: dict[int, list[_Cover]] = {}
    for finding_id, state, sent_at, closed_at in rows:
        out.setdefault(int(finding_id), []).append(_Cover(state, sent_at, closed_at))
    return out


def _removed_by_notice(covers: Iterable[_Cover]) -> datetime | None:
    """When the latest notice covering a finding was marked removed, if one was."""
    times = [c.closed_at for c in covers if c.state == "removed" and c.closed_at is not None]
    return max(times) if times else None


def finding_stages(session: Session, case_id: int) -> dict[int, str]:
    """Each finding's stage (finding id → one of ``STAGES``):

    - **removed**: a re-check saw it gone, or a notice covering it was marked removed and it has not been seen
      since;
    - **back**: it had been taken down and was seen again (a re-upload); it stays *back* until taken down again;
    - **notified**: a notice covering it was sent (whatever the answer so far);
    - **new**: nothing sent about it yet (a drafted notice does not count).
    """
    if not is_id(case_id):
        return {}
    findings = session.execute(
        select(Finding.id, Finding.status, Finding.last_seen_at).where(Finding.case_id == case_id)
    ).all()
    reopened = set(
        session.execute(
            select(FindingEvent.finding_id)
            .join(Finding, Finding.id == FindingEvent.finding_id)
            .where(Finding.case_id == case_id, FindingEvent.event == "reopened")
            .distinct()
        ).scalars()
    )
    covers = _covers(session, case_id)
    stages: dict[int, str] = {}
    for finding_id, status, last_seen in findings:
        mine = covers.get(finding_id, [])
        removed_at = _removed_by_notice(mine)
        if status == "removed":
            stage = "removed"
        elif removed_at is not None:
            stage = "back" if last_seen > removed_at else "removed"
        elif finding_id in reopened:
            stage = "back"
        elif any(c.state in _TOLD for c in mine):
            stage = "notified"
        else:
            stage = "new"
        stages[int(finding_id)] = stage
    return stages


def findings_timeline(session: Session, case_id: int) -> list[DayCount]:
    """Per day with activity: findings found so far, and how many of them were down at the day's end.

    Down means what ``finding_stages`` calls removed: a re-check saw it gone, or a covering notice was marked
    removed; a re-upload (``reopened``, or seen again after the notice's removal) puts it back up.  So the gap
    between the lines is what is still online, and the last point matches the stage counts."""
    if not is_id(case_id):
        return []
    found = session.execute(select(Finding.id, Finding.first_seen_at).where(Finding.case_id == case_id)).all()
    notice_removals = {fid: at for fid, c in _covers(session, case_id).items() if (at := _removed_by_notice(c))}
    # (time, order, finding, change): order puts a finding's discovery before anything else at the same instant.
    steps: list[tuple[datetime, int, int, str]] = [(at, 0, fid, "found") for fid, at in found]
    steps += [(at, 2, fid, "down") for fid, at in notice_removals.items()]
    events = session.execute(
        select(FindingEvent.finding_id, FindingEvent.event, FindingEvent.at)
        .join(Finding, Finding.id == FindingEvent.finding_id)
        .where(Finding.case_id == case_id, FindingEvent.event.in_(("removed", "reopened")))
    ).all()
    steps += [(at, 1, fid, "down" if event == "removed" else "up") for fid, event, at in events]
    for part in chunked(sorted(notice_removals)):  # seen after a notice's removal: back up
        seen = session.execute(
            select(FindingEvent.finding_id, FindingEvent.at).where(
                FindingEvent.finding_id.in_(part), FindingEvent.event == "seen"
            )
        ).all()
        steps += [(at, 3, fid, "up") for fid, at in seen if at > notice_removals[fid]]
    steps.sort()
    down: set[int] = set()
    total = 0
    per_day: dict[date, tuple[int, int]] = {}
    for at, _, finding_id, change in steps:
        if change == "found":
            total += 1
        elif change == "down":
            down.add(finding_id)
        else:
            down.discard(finding_id)
        per_day[at.date()] = (total, len(down))
    return [DayCount(day, f, r) for day, (f, r) in sorted(per_day.items())]


def notices_by_state(session: Session, case_id: int) -> list[tuple[str, int]]:
    """How many of the case's notices are in each state, in the order a notice goes through them."""
    if not is_id(case_id):
        return []
    counts = count_notices(session, case_id)
    return [(state, counts[state]) for state in STATES if counts.get(state)]


def removal_times(session: Session, case_id: int) -> list[PartyRemoval]:
    """Median time from sending a notice to its removal, per party (notices marked removed only), slowest first.

    A notice without a resolved party is grouped under its recipient address, so a person who typed the address
    herself still sees how fast that recipient was."""
    if not is_id(case_id):
        return []
    rows = session.execute(
        select(Party.name, Notice.recipient, Notice.sent_at, Notice.closed_at)
        .outerjoin(Party, Party.id == Notice.party_id)
        .where(
            Notice.case_id == case_id,
            Notice.state == "removed",
            Notice.sent_at.is_not(None),
            Notice.closed_at.is_not(None),
        )
    ).all()
    hours: dict[str, list[float]] = {}
    for party, recipient, sent_at, closed_at in rows:
        label = party or recipient or "unknown party"
        hours.setdefault(label, []).append(max(0.0, (closed_at - sent_at).total_seconds() / 3600))
    out = [PartyRemoval(label, len(values), statistics.median(values)) for label, values in hours.items()]
    return sorted(out, key=lambda r: (-r.median_hours, r.party))


def signatures_timeline(session: Session, petition_id: int) -> list[SignatureDay]:
    """Signatures by the day they were signed (UTC), cumulative, from the petition's hourly counter rows (never by
    counting signature rows, so a viral petition stays cheap)."""
    if not is_id(petition_id):
        return []
    per_day: dict[date, list[int]] = {}
    for key, counts in breakdown(session, petition_id, "hour"):
        try:
            day = date.fromisoformat(key[:10])
        except ValueError:
            continue
        totals = per_day.setdefault(day, [0, 0])
        totals[0] += counts.verified
        totals[1] += counts.pending
    out: list[SignatureDay] = []
    verified = pending = 0
    for day in sorted(per_day):
        verified += per_day[day][0]
        pending += per_day[day][1]
        out.append(SignatureDay(day, verified, pending))
    return out


def notices_for_finding(session: Session, finding_id: int) -> list[NoticeInfo]:
    """The notices that name a finding, oldest first (the finding's page lists them)."""
    if not is_id(finding_id, 64):
        return []
    ids = session.execute(
        select(NoticeUrl.notice_id).where(NoticeUrl.finding_id == finding_id).distinct().order_by(NoticeUrl.notice_id)
    ).scalars()
    return [n for n in (get_notice(session, int(i)) for i in ids) if n is not None]
