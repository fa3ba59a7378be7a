"""Petition storage on SQLite and PostgreSQL: batched adds, duplicates, idempotency, verify/remove/erase, and the
maintained counters always equal to a recount from the rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from takeback.petition.emails import email_key, normalise_email
from takeback.store import petitions, signatures
from takeback.store.errors import InvalidInput
from takeback.store.petitions import Counts, PetitionExists, PetitionInfo, UnknownCase
from takeback.store.signatures import NewSignature


def sig(petition_id: int, email: str, *, country: str = "FR", idem: str | None = None, **kw: object) -> NewSignature:
    values: dict[str, object] = {
        "petition_id": petition_id,
        "email": email,
        "email_key": email_key(normalise_email(email)),
        "name": "Ann",
        "country": country,
        "postcode": None,
        "comment": None,
        "consent_updates": True,
        "consent_public": True,
        "idempotency_key": idem,
        "network": "192.0.2.0/24",
    }
    values.update(kw)
    return NewSignature(**values)  # type: ignore[arg-type]


def assert_counts_exact(sessions: sessionmaker[Session], petition_id: int) -> None:
    with sessions.begin() as session:
        assert petitions.counter_table(session, petition_id) == petitions.recount(session, petition_id)
        total = petitions.get_counts(session, petition_id)
        assert total.verified == signatures.count_rows(session, petition_id, "verified")
        assert total.pending == signatures.count_rows(session, petition_id, "pending")


def test_petition_create_and_lookup(sessions: sessionmaker[Session], petition: PetitionInfo) -> None:
    with sessions.begin() as session:
        assert petitions.get_petition_by_slug(session, "give-it-back") == petition
        assert petitions.get_petition(session, petition.id) == petition
        assert petitions.get_petition(session, 2**40) is None
        with pytest.raises(PetitionExists):
            petitions.create_petition(session, petition.case_id, "give-it-back", "t", "x", "y", 1)
        with pytest.raises(UnknownCase):
            petitions.create_petition(session, 9999, "other", "t", "x", "y", 1)
        with pytest.raises(InvalidInput):
            petitions.create_petition(session, petition.case_id, "Bad Slug!", "t", "x", "y", 1)
        update = petitions.add_update(session, petition.id, "Day 2", "10,000 signatures")
        assert petitions.list_updates(session, petition.id) == [update]
    assert petition.is_open(datetime.now(UTC))
    assert not petition.is_open(petition.starts_at - timedelta(seconds=1))


def test_batch_dedupes_spellings_and_retries(sessions: sessionmaker[Session], petition: PetitionInfo) -> None:
    p = petition.id
    with sessions.begin() as session:
        out = signatures.add_signatures(
            session,
            [
                sig(p, "Jane.Doe@gmail.com", idem="k1"),
                sig(p, "janedoe+petition@googlemail.com", idem="k2"),  # same mailbox, another spelling
                sig(p, "bob@example.org", idem="k3"),
                sig(p, "bob@example.org", idem="k3"),  # the same request twice in one batch
            ],
        )
    assert [o.created for o in out] == [True, False, True, False]
    assert out[1].signature_id == out[0].signature_id and not out[1].retry
    assert out[3].signature_id == out[2].signature_id and out[3].retry
    with sessions.begin() as session:
        again = signatures.add_signatures(
            session,
            [sig(p, "JANEDOE@gmail.com"), sig(p, "other@example.org", idem="k3"), sig(p, "new@example.org")],
        )
    assert [o.created for o in again] == [False, False, True]
    assert again[0].signature_id == out[0].signature_id and again[0].email == "Jane.Doe@gmail.com"
    assert again[1].signature_id == out[2].signature_id and again[1].retry  # the idempotency key wins
    with sessions.begin() as session:
        assert petitions.get_counts(session, p) == Counts(0, 3)
    assert_counts_exact(sessions, p)


def test_verify_remove_erase_keep_counts_exact(sessions: sessionmaker[Session], petition: PetitionInfo) -> None:
    p = petition.id
    with sessions.begin() as session:
        out = signatures.add_signatures(
            session, [sig(p, f"s{i}@example.org", country="DE" if i % 2 else "FR") for i in range(6)]
        )
    ids = [o.signature_id for o in out]
    with sessions.begin() as session:
        assert signatures.verify_signature(session, ids[0])[0] == "verified"
        assert signatures.verify_signature(session, ids[0])[0] == "already_verified"
        assert signatures.verify_signature(session, ids[1])[0] == "verified"
        assert signatures.verify_signature(session, 2**50)[0] == "not_found"
    with sessions.begin() as session:
        assert petitions.get_counts(session, p) == Counts(2, 4)
        assert dict(petitions.breakdown(session, p, "country")) == {"DE": Counts(1, 2), "FR": Counts(1, 2)}
        removed = signatures.remove_signatures(session, p, [ids[1], ids[2], 999_999], reason="fraud", actor="op")
        assert removed == sorted([ids[1], ids[2]])
        assert signatures.verify_signature(session, ids[2])[0] == "removed"
        assert signatures.erase_signature(session, ids[0])
        assert not signatures.erase_signature(session, ids[0])
        assert signatures.unsubscribe(session, ids[3])
        with pytest.raises(InvalidInput):
            signatures.remove_signatures(session, p, [ids[4]], reason=" ", actor="op")
    with sessions.begin() as session:
        assert petitions.get_counts(session, p) == Counts(0, 3)
        log = petitions.list_removals(session, p)
        assert sorted((r.signature_id, r.action, r.previous_status) for r in log) == sorted(
            [(ids[1], "removed", "verified"), (ids[2], "removed", "pending"), (ids[0], "erased", "verified")]
        )
        assert signatures.get_signature(session, ids[0]) is None
        assert signatures.get_signature(session, ids[3]).consent_updates is False  # type: ignore[union-attr]
    assert_counts_exact(sessions, p)


def test_flags_detect_bursts_and_operator_removes(sessions: sessionmaker[Session], petition: PetitionInfo) -> None:
    p = petition.id
    now = datetime.now(UTC)
    with sessions.begin() as session:
        signatures.add_signatures(
            session,
            [sig(p, f"bot{i}@example.org", network="198.51.100.0/24", postcode="75001") for i in range(8)]
            + [sig(p, f"real{i}@example.org", network=f"203.0.{i}.0/24") for i in range(3)],
        )
    with sessions.begin() as session:
        flags = petitions.detect_bursts(session, p, network_threshold=5, postcode_threshold=7, now=now)
        assert sorted((f.kind, f.key, f.signatures) for f in flags) == [
            ("network", "198.51.100.0/24", 8),
            ("postcode", "75001", 8),
        ]
        # Detecting again refreshes, never duplicates.
        petitions.detect_bursts(session, p, network_threshold=5, postcode_threshold=7, now=now)
        assert len(petitions.list_flags(session, p)) == 2
    network_flag = next(f for f in flags if f.kind == "network")
    postcode_flag = next(f for f in flags if f.kind == "postcode")
    with sessions.begin() as session:
        flag, removed = petitions.resolve_flag(session, p, network_flag.id, "remove", actor="op", note="one script")
        assert (flag.status, removed) == ("removed", 8)
        flag, removed = petitions.resolve_flag(session, p, postcode_flag.id, "dismiss", actor="op")
        assert (flag.status, removed) == ("dismissed", 0)
        assert petitions.get_counts(session, p) == Counts(0, 3)
        assert {r.flag_id for r in petitions.list_removals(session, p)} == {network_flag.id}
    assert_counts_exact(sessions, p)


def test_concurrent_writers_settle_duplicates(sessions: sessionmaker[Session], petition: PetitionInfo) -> None:
    """Several transactions at once, overlapping mailboxes: one row per mailbox, counters exact, no failure."""
    p = petition.id
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for round_ in range(5):
                with sessions.begin() as session:
                    signatures.add_signatures(
                        session, [sig(p, f"m{(n + round_ + j) % 12}@example.org") for j in range(4)]
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions.begin() as session:
        expected = len({(n + r + j) % 12 for n in range(4) for r in range(5) for j in range(4)})
        assert petitions.get_counts(session, p) == Counts(0, expected)
    assert_counts_exact(sessions, p)


OPS = st.lists(
    st.tuples(st.sampled_from(["add", "verify", "remove", "erase"]), st.integers(0, 9), st.sampled_from(["FR", "DE"])),
    max_size=25,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_counters_equal_rows_after_any_sequence(
    sessions: sessionmaker[Session], petition: PetitionInfo, ops: list[tuple[str, int, str]]
) -> None:
    p = petition.id
    with sessions.begin() as session:  # a fresh start for each example
        for s in signatures.list_signatures(session, p, limit=10_000):
            signatures.erase_signature(session, s.id)
    for op, n, country in ops:
        with sessions.begin() as session:
            if op == "add":
                signatures.add_signatures(session, [sig(p, f"h{n}@example.org", country=country)])
                continue
            found = [s for s in signatures.list_signatures(session, p, limit=10_000) if s.email == f"h{n}@example.org"]
            if not found:
                continue
            if op == "verify":
                signatures.verify_signature(session, found[0].id)
            elif op == "remove":
                signatures.remove_signatures(session, p, [found[0].id], reason="test", actor="t")
            else:
                signatures.erase_signature(session, found[0].id)
    assert_counts_exact(sessions, p)


def test_secret_is_created_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = petitions.get_or_create_secret(session, "petition")
    with sessions.begin() as session:
        assert petitions.get_or_create_secret(session, "petition") == first
    assert len(first) == 64


def test_intake_answers_event_loop_waiters_with_the_commits_counts(
    sessions: sessionmaker[Session], petition: PetitionInfo
) -> None:
    """``Intake.accept``: every waiter of a batch is answered after its commit with counts that include it; a waiter
    that gave up (a client gone) is skipped without disturbing the others, and its signature is stored."""
    import asyncio

    from takeback.petition.counts import CountsCache
    from takeback.petition.intake import Intake, IntakeClosed

    cache = CountsCache(60.0)
    intake = Intake(sessions, max_batch=100, counts_cache=cache)

    async def burst() -> list[object]:
        waiters = [asyncio.ensure_future(intake.accept(sig(petition.id, f"s{i}@example.org"))) for i in range(20)]
        await asyncio.sleep(0)  # let every waiter queue its signature before the writer starts
        waiters[3].cancel()
        intake.start()
        return await asyncio.gather(*waiters, return_exceptions=True)

    try:
        answers = asyncio.run(burst())
    finally:
        intake.stop()
    accepted = [a for a in answers if not isinstance(a, BaseException)]
    assert len(accepted) == 19 and isinstance(answers[3], asyncio.CancelledError)
    assert all(a.outcome.created for a in accepted)  # type: ignore[attr-defined]
    # One batch: each waiter saw the counts as of that commit (all 20, including the one whose client left).
    assert {a.counts for a in accepted} == {Counts(0, 20)} and intake.batches == 1  # type: ignore[attr-defined]
    assert cache.get(petition.id) == Counts(0, 20)
    assert_counts_exact(sessions, petition.id)
    with pytest.raises(IntakeClosed):
        asyncio.run(intake.accept(sig(petition.id, "late@example.org")))
