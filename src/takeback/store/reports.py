"""Aggregates for the dashboard's charts and lists, computed from the store so a case with many findings stays cheap.

A finding's *stage* is what the person wants to know about it — new, notified, removed, back again — and it is not
one column: it follows the finding's history (re-checks that saw it gone, a re-upload recorded as ``reopened``)
and the notices that cover it (sent, marked *removed*), in the order those happened, so a re-upload that got its
own follow-up notice reads notified again.  ``_history`` and ``_Replay`` are the one place that rule lives:
``finding_stages``, the notices page's ``draft_choices`` and the overview's timeline all replay the same steps, so
the chart, the filtered list and what can be drafted always agree.
"""

from __future__ import annotations

import statistics
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
    """One notice naming a finding, as far as the stage rule needs it."""

    state: str
    sent_at: datetime | None
    closed_at: datetime | None
    #: Who the notice went to (see ``_addressee``).
    addressee: str


@dataclass(frozen=True, slots=True)
class DraftChoice:
    """Whether a finding may go into a new notice, from its stage (``draft_choices``)."""

    finding_id: int
    stage: str
    #: Who was told about it since it (re)appeared (see ``_addressee``): a notified finding goes into a new notice
    #: only to someone else, a follow-up to another party (the host after the site, a search engine).
    told: frozenset[str]

    def allows(self, addressee: str) -> bool:
        """May a notice to ``addressee`` (``_addressee``'s form; "" when unknown) name this finding?  New and back
        again: yes (a re-upload's follow-up may go to the same party).  Notified: only to a known addressee who was
        not told yet.  Removed: no, there is nothing left to take down."""
        if self.stage in ("new", "back"):
            return True
        return self.stage == "notified" and bool(addressee) and addressee not in self.told


# A finding's history as steps that change its stage.  At one instant they apply in this order: a sighting before a
# notice's removal recorded at the same moment (only a later sighting means it came back, as ``last_seen_at >
# closed_at`` elsewhere), re-check results, notice removals, then notices sent (a notice sent at the very moment of
# a reappearance is about the re-upload).
_AT_SEEN, _AT_CHECK, _AT_NOTICE_REMOVED, _AT_TOLD = range(1, 5)


@dataclass(frozen=True, slots=True)
class _Step:
    at: datetime
    order: int
    finding_id: int
    #: found | seen | down | up | told
    change: str
    addressee: str = ""


def _addressee(recipient: str | None, web_form: str | None, party_id: int | None) -> str:
    """What tells two notices' addressees apart: the e-mail address (case-insensitive), else the web form, else the
    party.  The dashboard's drafts name a recipient address, the escalation path a party."""
    if recipient:
        return recipient.strip().lower()
    if web_form:
        return web_form
    return f"party:{party_id}" if party_id is not None else ""


def _covers(session: Session, case_id: int) -> dict[int, list[_Cover]]:
    """The case's notices per finding they name."""
    rows = session.execute(
        select(NoticeUrl.finding_id, Notice.state, Notice.sent_at, Notice.closed_at, Notice.recipient,
               Notice.web_form, Notice.party_id)
        .join(Notice, Notice.id == NoticeUrl.notice_id)
        .where(Notice.case_id == case_id, NoticeUrl.finding_id.is_not(None))
    )
    out: dict[int, list[_Cover]] = {}
    for finding_id, state, sent_at, closed_at, recipient, web_form, party_id in rows:
        out.setdefault(int(finding_id), []).append(
            _Cover(state, sent_at, closed_at, _addressee(recipient, web_form, party_id))
        )
    return out


def _history(session: Session, case_id: int) -> list[_Step]:
    """Every step of every finding of the case, in the order they happened.

    Steps: found (first seen); a re-check saw it gone (down) or a re-upload reopened it (up); a covering notice was
    marked removed (down); it was seen while a notice's removal stood (seen); a covering notice was sent (told).
    A step dated before its finding was found (a notice sent "before" the crawler's clock) counts from the finding's
    first sighting, so no finding is removed before it exists."""
    rows = session.execute(select(Finding.id, Finding.first_seen_at).where(Finding.case_id == case_id))
    found: dict[int, datetime] = {fid: at for fid, at in rows}
    steps = [_Step(at, 0, fid, "found") for fid, at in found.items()]
    covers = _covers(session, case_id)
    notice_removed: dict[int, datetime] = {}  # the earliest, from when on sightings matter
    for fid, mine in covers.items():
        for cover in mine:
            if cover.sent_at is not None:
                steps.append(_Step(cover.sent_at, _AT_TOLD, fid, "told", cover.addressee))
            if cover.state == "removed" and cover.closed_at is not None:
                steps.append(_Step(cover.closed_at, _AT_NOTICE_REMOVED, fid, "down"))
                notice_removed[fid] = min(cover.closed_at, notice_removed.get(fid, cover.closed_at))
    events = session.execute(
        select(FindingEvent.finding_id, FindingEvent.event, FindingEvent.at)
        .join(Finding, Finding.id == FindingEvent.finding_id)
        .where(Finding.case_id == case_id, FindingEvent.event.in_(("removed", "reopened")))
    ).all()
    steps += [_Step(at, _AT_CHECK, fid, "down" if event == "removed" else "up") for fid, event, at in events]
    # A re-check's "removed" makes the finding's status removed, so a re-upload comes back as "reopened"; after a
    # removal the person recorded on a notice the status stays open and a re-upload is just "seen" again.
    for part in chunked(sorted(notice_removed)):
        seen = session.execute(
            select(FindingEvent.finding_id, FindingEvent.at).where(
                FindingEvent.finding_id.in_(part), FindingEvent.event == "seen"
            )
        ).all()
        steps += [_Step(at, _AT_SEEN, fid, "seen") for fid, at in seen if at > notice_removed[fid]]
    for i, step in enumerate(steps):
        first = found.get(step.finding_id)
        if first is not None and step.at < first:
            steps[i] = _Step(first, step.order, step.finding_id, step.change, step.addressee)
    steps.sort(key=lambda s: (s.at, s.order, s.finding_id))
    return steps


class _Replay:
    """The stage rule as a state machine over ``_history``'s steps (see ``finding_stages``)."""

    def __init__(self) -> None:
        self.stages: dict[int, str] = {}
        self.told: dict[int, set[str]] = {}

    def apply(self, step: _Step) -> None:
        fid, stage = step.finding_id, self.stages.get(step.finding_id)
        if step.change == "found":
            self.stages[fid] = "new"
            self.told[fid] = set()
        elif stage is None:
            return  # a step of a finding that is not in the case (cannot happen: the queries join on the case)
        elif step.change == "told":
            if stage in ("new", "back"):
                self.stages[fid] = "notified"
                self.told[fid] = set()
            if self.stages[fid] == "notified":
                self.told[fid].add(step.addressee)
        elif step.change == "down":
            self.stages[fid] = "removed"
            self.told[fid] = set()
        elif stage == "removed":  # up (a re-upload) or seen after a notice's removal: it is back
            self.stages[fid] = "back"


def finding_stages(session: Session, case_id: int) -> dict[int, str]:
    """Each finding's stage (finding id → one of ``STAGES``), replaying its history:

    - **new**: found; nothing sent about it yet (a drafted notice does not count);
    - **notified**: a notice covering it was sent (whatever the answer so far) — after it came back, if it did;
    - **removed**: a re-check saw it gone, or a notice covering it was marked removed, and it was not seen since;
    - **back**: it had been taken down and was seen again (a re-upload), and no notice was sent about it since.

    So a re-upload goes back → notified when the follow-up notice is sent, and → removed again when that one is
    marked removed or a re-check sees it gone.  The timeline replays the very same steps.
    """
    if not is_id(case_id):
        return {}
    replay = _Replay()
    for step in _history(session, case_id):
        replay.apply(step)
    return replay.stages


def draft_choices(session: Session, case_id: int) -> dict[int, DraftChoice]:
    """Which findings a new notice may name, and to whom (finding id → ``DraftChoice``), from the same replay as
    ``finding_stages``: the notices page offers and accepts exactly what the stages say is still to do."""
    if not is_id(case_id):
        return {}
    replay = _Replay()
    for step in _history(session, case_id):
        replay.apply(step)
    return {
        fid: DraftChoice(fid, stage, frozenset(replay.told.get(fid, ())) if stage == "notified" else frozenset())
        for fid, stage in replay.stages.items()
    }


def addressee(recipient: str | None) -> str:
    """The addressee key of a notice the dashboard drafts to ``recipient`` (compare with ``DraftChoice.told``)."""
    return _addressee(recipient, None, None)


def findings_timeline(session: Session, case_id: int) -> list[DayCount]:
    """Per day with activity: findings found so far, and how many of them were down at the day's end.

    Down means what ``finding_stages`` calls removed, replayed over the same steps, so the gap between the lines is
    what is still online and the last point matches the stage counts."""
    if not is_id(case_id):
        return []
    replay = _Replay()
    total = removed = 0
    per_day: dict[date, tuple[int, int]] = {}
    for step in _history(session, case_id):
        before = replay.stages.get(step.finding_id)
        replay.apply(step)
        after = replay.stages.get(step.finding_id)
        if step.change == "told":
            continue  # a notice sent moves neither line
        total += step.change == "found"
        removed += (after == "removed") - (before == "removed")
        per_day[step.at.date()] = (total, removed)
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
