"""Findings: places on the web where a case's protected content or names were seen, with evidence and history.

One finding per URL per case: the URL is normalised into ``url_key`` (``url_key()``) so the same page seen through
slightly different spellings stays one finding.  Each observation updates the finding's latest evidence and
appends a ``finding_events`` row, so the history of a finding (found, seen again, removed, reopened, fetch errors)
is never overwritten.  Status: ``open`` → ``removed`` (a re-check saw the content gone) → ``open`` again (seen
again: a re-upload; recorded as ``reopened``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from takeback.store._sql import check_int32, check_text, clamp_after, insert_ignore, is_id
from takeback.store.errors import InvalidInput
from takeback.store.models import Case, utcnow
from takeback.store.models_findings import CrawlRun, Finding, FindingEvent

URL_MAX = 2048
KINDS = frozenset({"media", "name", "domain"})
STATUSES = frozenset({"open", "removed"})
#: Observations a re-check can report (``record_check``).
CHECK_OUTCOMES = frozenset({"seen", "removed", "fetch_error"})
#: Evidence is kept small: hashes, sizes, a title, never the media or the page itself.
EVIDENCE_MAX = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Which kind wins when one URL is found for two reasons: a media match is the strongest evidence.
_KIND_RANK = {"domain": 0, "name": 1, "media": 2}


@dataclass(frozen=True, slots=True)
class FindingInfo:
    id: int
    case_id: int
    url: str
    kind: str
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_checked_at: datetime | None
    http_status: int | None
    #: The latest evidence (a plain JSON object).
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FindingEventInfo:
    id: int
    finding_id: int
    event: str
    at: datetime
    http_status: int | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CrawlRunInfo:
    id: int
    case_id: int
    status: str
    options: dict[str, Any]
    stats: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None


_FINDING = (
    Finding.id,
    Finding.case_id,
    Finding.url,
    Finding.kind,
    Finding.status,
    Finding.first_seen_at,
    Finding.last_seen_at,
    Finding.last_checked_at,
    Finding.http_status,
    Finding.evidence,
)
_EVENT = (
    FindingEvent.id,
    FindingEvent.finding_id,
    FindingEvent.event,
    FindingEvent.at,
    FindingEvent.http_status,
    FindingEvent.details,
)
_RUN = (
    CrawlRun.id,
    CrawlRun.case_id,
    CrawlRun.status,
    CrawlRun.options,
    CrawlRun.stats,
    CrawlRun.started_at,
    CrawlRun.finished_at,
)


def _finding(row: Any) -> FindingInfo:
    return FindingInfo(*row[:-1], evidence=_loads(row[-1]))


def _event(row: Any) -> FindingEventInfo:
    return FindingEventInfo(*row[:-1], details=_loads(row[-1]))


def _run(row: Any) -> CrawlRunInfo:
    id_, case_id, status, options, stats, started, finished = row
    return CrawlRunInfo(id_, case_id, status, _loads(options), _loads(stats), started, finished)


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _dumps(field: str, value: dict[str, Any] | None, limit: int = EVIDENCE_MAX) -> str:
    """JSON text that both backends store alike (NUL characters come out escaped), refused when oversized."""
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object")
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"must be plain JSON ({exc})") from None
    if len(text) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters as JSON")
    return text


# --- URL keys --------------------------------------------------------------------------------------------------


def url_key(url: str) -> str:
    """The de-duplication key of a URL.

    For http(s) URLs: scheme and host lower-cased (a trailing dot on the host dropped, IDN hosts in punycode),
    default ports dropped, user info dropped, an empty path becomes ``/``, the fragment dropped (it never reaches
    the server), and query parameters sorted (sites answer ``?a=1&b=2`` and ``?b=2&a=1`` alike; blank values
    kept).  Percent-encoding is left as given except for characters that must be encoded.  Anything else (a bare
    domain from a domain feed, another scheme) is lower-cased and stripped.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return text.lower().rstrip(".")
        host = parts.hostname.rstrip(".")
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = host.lower()
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        port = parts.port
    except ValueError:  # an unparsable port or bracket: still a stable key
        return text.lower()
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)), doseq=True) if parts.query else ""
    return urlunsplit((scheme, netloc, path, query, ""))


# --- findings --------------------------------------------------------------------------------------------------


def _check_case(session: Session, case_id: int) -> None:
    if not is_id(case_id) or session.execute(select(Case.id).where(Case.id == case_id)).first() is None:
        raise InvalidInput("case_id", f"no case {case_id}")


def _http_status(evidence: dict[str, Any]) -> int | None:
    value = evidence.get("http_status")
    return value if type(value) is int and 0 <= value <= 999 else None


def _add_event(
    session: Session, finding_id: int, event: str, at: datetime, http_status: int | None, details: str
) -> None:
    session.execute(
        insert(FindingEvent).values(
            finding_id=finding_id, event=event, at=at, http_status=http_status, details=details
        )
    )


def record_finding(
    session: Session,
    case_id: int,
    url: str,
    kind: str,
    *,
    evidence: dict[str, Any],
    seen_at: datetime | None = None,
) -> tuple[FindingInfo, bool]:
    """Record that ``url`` was seen (again) for the case.  Returns the finding and whether it was created.

    An existing finding for the same ``url_key`` gets the new evidence as its latest, ``last_seen_at`` moved
    forward, and a ``seen`` event; a ``removed`` one is reopened (a re-upload) with a ``reopened`` event.  A new
    one gets a ``found`` event.  ``evidence["http_status"]``, when an int, becomes the finding's HTTP status.
    """
    check_text("url", url, URL_MAX)
    if not url.strip():
        raise InvalidInput("url", "must not be empty")
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {sorted(KINDS)}")
    details = _dumps("evidence", evidence)
    _check_case(session, case_id)
    key = url_key(url)
    if len(key) > URL_MAX:
        raise InvalidInput("url", f"must be at most {URL_MAX} characters once normalised")
    at = seen_at or utcnow()
    status_code = _http_status(evidence)
    row = session.execute(
        insert_ignore(session, Finding.__table__, ["case_id", "url_key"])
        .values(
            case_id=case_id,
            url=url,
            url_key=key,
            kind=kind,
            status="open",
            first_seen_at=at,
            last_seen_at=at,
            last_checked_at=at,
            http_status=status_code,
            evidence=details,
        )
        .returning(*_FINDING)
    ).first()
    if row is not None:
        finding = _finding(row)
        _add_event(session, finding.id, "found", at, status_code, details)
        return finding, True
    current = session.execute(
        select(Finding.id, Finding.kind, Finding.status, Finding.last_seen_at)
        .where(Finding.case_id == case_id, Finding.url_key == key)
        .with_for_update()
    ).one()
    finding_id, old_kind, old_status, last_seen = current
    values: dict[str, Any] = {
        "evidence": details,
        "last_seen_at": max(last_seen, at),
        "last_checked_at": at,
        "http_status": status_code,
        "status": "open",
    }
    if _KIND_RANK[kind] > _KIND_RANK.get(old_kind, 0):
        values["kind"] = kind
    row = session.execute(update(Finding).where(Finding.id == finding_id).values(**values).returning(*_FINDING)).one()
    _add_event(session, finding_id, "reopened" if old_status == "removed" else "seen", at, status_code, details)
    return _finding(row), False


def record_check(
    session: Session,
    finding_id: int,
    outcome: str,
    *,
    http_status: int | None = None,
    details: dict[str, Any] | None = None,
    checked_at: datetime | None = None,
) -> FindingInfo | None:
    """Record a re-check of a finding.  ``outcome``: ``seen`` (still there: a removed finding is reopened),
    ``removed`` (gone: an open finding becomes removed), ``fetch_error`` (could not tell: status unchanged).
    Every check adds one event (seen, reopened, removed, still_removed or fetch_error), so the history shows
    exactly when something went away or came back.  None if there is no such finding."""
    if outcome not in CHECK_OUTCOMES:
        raise InvalidInput("outcome", f"must be one of {sorted(CHECK_OUTCOMES)}")
    check_int32("http_status", http_status)
    text = _dumps("details", details)
    if not is_id(finding_id, 64):
        return None
    current = session.execute(
        select(Finding.status, Finding.last_seen_at).where(Finding.id == finding_id).with_for_update()
    ).first()
    if current is None:
        return None
    old_status, last_seen = current
    at = checked_at or utcnow()
    values: dict[str, Any] = {"last_checked_at": at}
    if outcome == "seen":
        values.update(status="open", last_seen_at=max(last_seen, at), http_status=http_status)
        event = "reopened" if old_status == "removed" else "seen"
        if details:
            values["evidence"] = text
    elif outcome == "removed":
        values.update(status="removed", http_status=http_status)
        event = "removed" if old_status != "removed" else "still_removed"
    else:
        event = "fetch_error"
    row = session.execute(update(Finding).where(Finding.id == finding_id).values(**values).returning(*_FINDING)).one()
    _add_event(session, finding_id, event, at, http_status, text)
    return _finding(row)


def get_finding(session: Session, finding_id: int) -> FindingInfo | None:
    if not is_id(finding_id, 64):
        return None
    row = session.execute(select(*_FINDING).where(Finding.id == finding_id)).first()
    return _finding(row) if row else None


def get_finding_by_url(session: Session, case_id: int, url: str) -> FindingInfo | None:
    if not is_id(case_id) or not isinstance(url, str):
        return None
    key = url_key(url)
    if "\x00" in key or len(key) > URL_MAX:
        return None
    row = session.execute(select(*_FINDING).where(Finding.case_id == case_id, Finding.url_key == key)).first()
    return _finding(row) if row else None


def list_findings(
    session: Session,
    case_id: int,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> list[FindingInfo]:
    """A case's findings by id (keyset paging with ``after_id``)."""
    if not is_id(case_id):
        return []
    stmt = select(*_FINDING).where(Finding.case_id == case_id, Finding.id > clamp_after(after_id))
    if status is not None:
        if status not in STATUSES:
            return []
        stmt = stmt.where(Finding.status == status)
    if kind is not None:
        if kind not in KINDS:
            return []
        stmt = stmt.where(Finding.kind == kind)
    stmt = stmt.order_by(Finding.id).limit(max(0, min(int(limit), 10_000)))
    return [_finding(row) for row in session.execute(stmt)]


def count_findings(session: Session, case_id: int, *, status: str | None = None) -> int:
    if not is_id(case_id):
        return 0
    stmt = select(func.count()).select_from(Finding).where(Finding.case_id == case_id)
    if status is not None:
        stmt = stmt.where(Finding.status == status)
    return int(session.execute(stmt).scalar_one())


def findings_due(
    session: Session,
    checked_before: datetime,
    *,
    kinds: tuple[str, ...] = ("media", "name"),
    limit: int = 1000,
) -> list[int]:
    """Ids of findings (any case) last checked before ``checked_before`` (or never), oldest check first: what a
    scheduled re-check should look at next."""
    stmt = (
        select(Finding.id)
        .where(
            Finding.kind.in_(list(kinds)),
            Finding.status.in_(sorted(STATUSES)),
            (Finding.last_checked_at.is_(None)) | (Finding.last_checked_at < checked_before),
        )
        .order_by(Finding.last_checked_at, Finding.id)
        .limit(max(0, min(int(limit), 100_000)))
    )
    return [int(row[0]) for row in session.execute(stmt)]


def list_finding_events(session: Session, finding_id: int, *, limit: int = 1000) -> list[FindingEventInfo]:
    """A finding's history, oldest first."""
    if not is_id(finding_id, 64):
        return []
    stmt = (
        select(*_EVENT)
        .where(FindingEvent.finding_id == finding_id)
        .order_by(FindingEvent.id)
        .limit(max(0, min(int(limit), 100_000)))
    )
    return [_event(row) for row in session.execute(stmt)]


# --- crawl runs ------------------------------------------------------------------------------------------------


def start_crawl_run(session: Session, case_id: int, options: dict[str, Any] | None = None) -> CrawlRunInfo:
    _check_case(session, case_id)
    row = session.execute(
        insert(CrawlRun)
        .values(case_id=case_id, status="running", options=_dumps("options", options), stats="{}", started_at=utcnow())
        .returning(*_RUN)
    ).one()
    return _run(row)


def update_crawl_run(
    session: Session, run_id: int, *, stats: dict[str, Any] | None = None, status: str | None = None
) -> CrawlRunInfo | None:
    """Store progress counters / the error log; a final ``status`` ("done" or "failed") stamps finished_at."""
    if not is_id(run_id, 64):
        return None
    values: dict[str, Any] = {}
    if stats is not None:
        values["stats"] = _dumps("stats", stats, 4 * EVIDENCE_MAX)
    if status is not None:
        if status not in {"running", "done", "failed"}:
            raise InvalidInput("status", "must be running, done or failed")
        values["status"] = status
        if status != "running":
            values["finished_at"] = utcnow()
    if not values:
        return get_crawl_run(session, run_id)
    row = session.execute(update(CrawlRun).where(CrawlRun.id == run_id).values(**values).returning(*_RUN)).first()
    return _run(row) if row else None


def get_crawl_run(session: Session, run_id: int) -> CrawlRunInfo | None:
    if not is_id(run_id, 64):
        return None
    row = session.execute(select(*_RUN).where(CrawlRun.id == run_id)).first()
    return _run(row) if row else None


def list_crawl_runs(session: Session, case_id: int, *, limit: int = 20) -> list[CrawlRunInfo]:
    """A case's most recent crawl runs, newest first."""
    if not is_id(case_id):
        return []
    stmt = select(*_RUN).where(CrawlRun.case_id == case_id).order_by(CrawlRun.id.desc()).limit(max(0, int(limit)))
    return [_run(row) for row in session.execute(stmt)]
