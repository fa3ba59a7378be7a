"""Aggregates for the dashboard's charts, computed in the database so a case with many findings stays cheap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from takeback.store._sql import is_id
from takeback.store.models_findings import Finding, FindingEvent


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    found: int
    removed: int


def findings_timeline(session: Session, case_id: int) -> list[DayCount]:
    """Per day with activity: findings found so far, and how many of them were down (removed, not back) at the
    day's end.  A re-upload (``reopened``) counts against the removals, so the gap between the lines is what is
    still online."""
    if not is_id(case_id):
        return []
    found_days = session.execute(select(Finding.first_seen_at).where(Finding.case_id == case_id)).scalars().all()
    events = session.execute(
        select(FindingEvent.event, FindingEvent.at)
        .join(Finding, Finding.id == FindingEvent.finding_id)
        .where(Finding.case_id == case_id, FindingEvent.event.in_(("removed", "reopened")))
    ).all()
    delta: dict[date, list[int]] = {}
    for at in found_days:
        delta.setdefault(_day(at), [0, 0])[0] += 1
    for event, at in events:
        delta.setdefault(_day(at), [0, 0])[1] += 1 if event == "removed" else -1
    out: list[DayCount] = []
    found = removed = 0
    for day in sorted(delta):
        found += delta[day][0]
        removed += delta[day][1]
        out.append(DayCount(day, found, max(0, removed)))
    return out


def _day(at: datetime) -> date:
    return at.date()
