"""The demo case's petition: its text, a dozen supporters over the last week (most verified, a few still pending)
and a small burst from one network that raises a review flag, so the counts, the over-time chart and the flags
list all have something to show.

Signatures go through ``store.signatures`` (the intake's own storage path: de-duplicated per mailbox, counters
adjusted in the same transaction), so running this twice adds nobody twice.  Addresses use reserved example
domains and networks are documentation ranges (RFC 5737): nothing here is anyone's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from takeback.demo import story
from takeback.petition.emails import email_key, normalise_email
from takeback.store import petitions, signatures
from takeback.store.petitions import PetitionInfo
from takeback.store.signatures import NewSignature

SUPPORTER_NETWORK = "198.51.100.0/24"
BURST_NETWORK = "203.0.113.0/24"
BURST = 6
#: The demo lowers the review threshold to show a flag with few signatures (a deployment uses its settings').
BURST_THRESHOLD = BURST - 1


def _signature(petition_id: int, name: str, email: str, country: str, comment: str | None, network: str,
               at: datetime) -> NewSignature:
    return NewSignature(
        petition_id=petition_id, email=email, email_key=email_key(normalise_email(email)), name=name,
        country=country, postcode=None, comment=comment, consent_updates=False, consent_public=True,
        idempotency_key=None, network=network, created_at=at,
    )


def ensure_petition(session: Session, case_id: int, now: datetime) -> PetitionInfo:
    existing = petitions.get_petition_by_slug(session, story.PETITION_SLUG)
    if existing is not None:
        return existing
    return petitions.create_petition(session, case_id, story.PETITION_SLUG, story.PETITION_TITLE,
                                     story.PETITION_TEXT, story.PETITION_TARGET, story.PETITION_GOAL,
                                     starts_at=now - timedelta(days=8))


def add_supporters(session: Session, petition_id: int, now: datetime, postcode_threshold: int) -> int:
    """Sign (and verify) the demo supporters; returns how many signatures were new."""
    count = len(story.SUPPORTERS)
    items = [
        _signature(petition_id, name, email, country, comment, SUPPORTER_NETWORK,
                   now - timedelta(days=7) + timedelta(days=7) * i / count)
        for i, (name, email, country, comment, _verified) in enumerate(story.SUPPORTERS)
    ]
    items += [
        _signature(petition_id, f"Supporter {i + 1}", f"burst{i + 1}@example.com", "US", None, BURST_NETWORK,
                   now.replace(minute=0, second=0, microsecond=0) + timedelta(seconds=i))
        for i in range(BURST)
    ]
    outcomes = signatures.add_signatures(session, items)
    verified = [o for o, s in zip(outcomes[:count], story.SUPPORTERS, strict=True) if s[4] and o.created]
    for outcome in verified:
        signatures.verify_signature(session, outcome.signature_id)
    petitions.detect_bursts(session, petition_id, network_threshold=BURST_THRESHOLD,
                            postcode_threshold=postcode_threshold, now=now)
    return sum(o.created for o in outcomes)
