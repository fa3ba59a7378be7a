"""Data the dashboard tests put straight into the store: petitions and signatures, review flags, notices.

Through the store's own repository functions (the same ones the services call), so the pages are tested against
rows shaped exactly as the running system writes them, at fixed times so charts and flags are deterministic.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from takeback import store
from takeback.store import petitions, signatures
from takeback.store.signatures import NewSignature
from tests.web.conftest import Server


def make_petition(server: Server, case_id: int, slug: str, *, goal: int = 10, title: str = "Take it down") -> int:
    with server.state.store.sessions() as session:
        created = petitions.create_petition(session, case_id, slug, title, "Please act.", "The Platform", goal,
                                            starts_at=datetime(2026, 1, 1, tzinfo=UTC))
        session.commit()
        return created.id


def add_signature(
    server: Server, petition_id: int, email: str, *, at: datetime, name: str = "Sam Signer", country: str = "FR",
    network: str = "198.51.100.0/24", postcode: str | None = None, comment: str | None = None, verify: bool = False,
    public: bool = True,
) -> int:
    item = NewSignature(
        petition_id=petition_id, email=email, email_key=hashlib.sha256(email.lower().encode()).hexdigest(), name=name,
        country=country, postcode=postcode, comment=comment, consent_updates=False, consent_public=public,
        idempotency_key=None, network=network, created_at=at,
    )
    with server.state.store.sessions() as session:
        [outcome] = signatures.add_signatures(session, [item])
        if verify:
            signatures.verify_signature(session, outcome.signature_id)
        session.commit()
        return outcome.signature_id


def make_flag(server: Server, petition_id: int, at: datetime) -> int:
    """A network flag for the hour of ``at`` (its signatures must already be there: more than 2 from one network)."""
    with server.state.store.sessions() as session:
        [flag] = petitions.detect_bursts(session, petition_id, network_threshold=2, postcode_threshold=1000, now=at)
        session.commit()
        return flag.id


def make_notice(
    server: Server, case_id: int, finding_id: int, url: str, *, party: str | None = None,
    sent_at: datetime | None = None, removed_at: datetime | None = None, note: str = "",
) -> int:
    """A notice naming one finding; sent at ``sent_at`` and marked removed at ``removed_at`` (with ``note`` as the
    party's reply) when given."""
    with server.state.store.sessions() as session:
        party_id = None
        if party is not None:
            party_id = store.upsert_party(session, "host", f"host:test:{party}", party,
                                          email=f"abuse@{party.lower()}.example").id
        notice = store.create_notice(session, case_id, "takeitdown", subject="Removal request", body="Please remove.",
                                     data={"reference": f"TB-{finding_id}"}, urls=[(url, finding_id)],
                                     party_id=party_id, recipient="abuse@host.example", now=sent_at)
        if sent_at is not None:
            store.transition(session, notice.id, "sent", now=sent_at)
        if removed_at is not None:
            store.transition(session, notice.id, "removed", now=removed_at, detail={"note": note} if note else None)
        session.commit()
        return notice.id
