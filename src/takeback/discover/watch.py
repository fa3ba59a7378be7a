"""Domain watch: run a new-domain feed against cases' names and record the hits as ``domain`` findings.

Why a finding per domain (``https://<domain>/``): a domain carrying the person's name is something to take down
(at the registrar) and to re-check later (does it serve anything yet?), like any other place on the web.  The
evidence says which feed and line saw it, the certificate facts the feed had, the name variant and its score.
Matching is pure (``watch``); the database part (``record_hits``, ``watch_into_store``) comes last, in batches,
so a feed of millions of lines never holds one long transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from takeback.discover.confusables import decode_idn
from takeback.discover.domains import InvalidDomain
from takeback.discover.feeds import FeedEntry
from takeback.discover.names import InvalidName, NameHit, NameMatcher, prepare_domain
from takeback.store import get_case, list_case_names, record_finding

__all__ = [
    "NoNames",
    "UnknownCase",
    "WatchHit",
    "WatchSummary",
    "evidence_for",
    "finding_url",
    "load_matchers",
    "record_hits",
    "watch",
    "watch_into_store",
]

#: Domains remembered per run so a domain seen in many certificates is matched once.
SEEN_LIMIT = 1_000_000


class UnknownCase(LookupError):
    """No case with that id."""


class NoNames(ValueError):
    """The case has no names, aliases or usernames to watch for."""


@dataclass(frozen=True, slots=True)
class WatchHit:
    case_id: int
    feed: str
    entry: FeedEntry
    #: Best first; one per name of the case that matched.
    hits: tuple[NameHit, ...]

    @property
    def best(self) -> NameHit:
        return self.hits[0]


@dataclass(frozen=True, slots=True)
class WatchSummary:
    hits: int
    created: int
    updated: int


def watch(
    entries: Iterable[FeedEntry],
    matchers: Mapping[int, NameMatcher],
    *,
    feed: str = "",
    threshold: int | None = None,
) -> Iterator[WatchHit]:
    """Hits of a feed's entries against each case's matcher (a domain seen again in the same run is skipped)."""
    seen: set[str] = set()
    for entry in entries:
        if entry.domain in seen:
            continue
        if len(seen) >= SEEN_LIMIT:
            seen.clear()
        seen.add(entry.domain)
        try:
            prepared = prepare_domain(entry.domain)  # split and folded once for every case
        except InvalidDomain:
            continue  # not a host name (a custom reader that did not clean it): skip the entry, never fatal
        for case_id, matcher in matchers.items():
            hits = matcher.match_domain(prepared, threshold=threshold)
            if hits:
                yield WatchHit(case_id, feed, entry, tuple(hits))


def finding_url(domain: str) -> str:
    return f"https://{domain}/"


def _hit_dict(hit: NameHit) -> dict[str, Any]:
    return {
        "name": hit.name,
        "name_kind": hit.name_kind,
        "variant": hit.variant,
        "matched": hit.matched,
        "where": hit.where,
        "score": hit.score,
        "match": hit.match,
    }


def evidence_for(hit: WatchHit) -> dict[str, Any]:
    """The evidence kept with a domain finding: small, factual, enough for a notice."""
    entry = hit.entry
    evidence: dict[str, Any] = {
        "signal": "domain-watch",
        "feed": hit.feed,
        "feed_line": entry.line,
        "domain": entry.domain,
        "domain_unicode": decode_idn(entry.domain),
        **_hit_dict(hit.best),
    }
    if len(hit.hits) > 1:
        evidence["other_names"] = [_hit_dict(h) for h in hit.hits[1:]]
    certificate = {
        "fingerprint": entry.fingerprint,
        "issuer": entry.issuer,
        "log": entry.source,
        "seen_at": entry.seen_at.isoformat() if entry.seen_at else None,
    }
    if any(certificate.values()):
        evidence["certificate"] = {k: v for k, v in certificate.items() if v is not None}
    return evidence


def record_hits(session: Session, hits: Iterable[WatchHit]) -> list[bool]:
    """Record hits as ``domain`` findings (flushes, never commits).  Returns, per hit, whether it was new."""
    created = []
    for hit in hits:
        _, new = record_finding(
            session,
            hit.case_id,
            finding_url(hit.entry.domain),
            "domain",
            evidence=evidence_for(hit),
            seen_at=hit.entry.seen_at,
        )
        created.append(new)
    return created


def load_matchers(session: Session, case_ids: Iterable[int], *, threshold: int | None = None) -> dict[int, NameMatcher]:
    """One matcher per case from its stored names.  Raises ``UnknownCase``, ``NoNames`` or ``InvalidName``."""
    matchers: dict[int, NameMatcher] = {}
    for case_id in case_ids:
        if get_case(session, case_id) is None:
            raise UnknownCase(f"no case {case_id}")
        names = [(n.value, n.kind) for n in list_case_names(session, case_id)]
        if not names:
            raise NoNames(f"case {case_id} has no names to watch for (add names, aliases or usernames first)")
        try:
            matchers[case_id] = NameMatcher(names, **({} if threshold is None else {"threshold": threshold}))
        except InvalidName as exc:
            raise InvalidName(f"case {case_id}: {exc}") from exc
    return matchers


def watch_into_store(
    factory: sessionmaker[Session],
    hits: Iterable[WatchHit],
    *,
    batch_size: int = 200,
    on_hit: Callable[[WatchHit, bool], None] | None = None,
) -> WatchSummary:
    """Record hits in batches, one transaction per batch; ``on_hit(hit, created)`` hears about each one."""
    batch: list[WatchHit] = []
    created = updated = 0

    def flush() -> None:
        nonlocal created, updated
        with factory.begin() as session:
            outcome = record_hits(session, batch)
        for hit, new in zip(batch, outcome, strict=True):
            created += new
            updated += not new
            if on_hit is not None:
                on_hit(hit, new)
        batch.clear()

    for hit in hits:
        batch.append(hit)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return WatchSummary(hits=created + updated, created=created, updated=updated)
