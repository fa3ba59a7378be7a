"""Cases and banks on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store


def test_create_get_list_banks(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        case = store.create_case(session, "Case of A.")
        first = store.create_bank(session, "photos", "her photos", case_id=case.id)
        second = store.create_bank(session, "imported")
    assert (first.name, first.description, first.case_id) == ("photos", "her photos", case.id)
    assert (second.description, second.case_id) == ("", None)
    assert first.created_at.tzinfo is not None
    with sessions.begin() as session:
        assert store.get_bank(session, first.id) == first
        assert store.get_bank_by_name(session, "imported") == second
        assert store.get_bank_by_name(session, "missing") is None
        assert store.get_bank(session, second.id + 100) is None
        assert store.list_banks(session) == [first, second]
        assert store.get_banks_by_names(session, ["photos", "nope", "imported", "photos"]) == {
            "photos": first,
            "imported": second,
        }
        assert store.get_banks_by_names(session, []) == {}
        assert store.get_case(session, case.id) == case
        assert store.list_cases(session) == [case]
        assert store.get_case(session, case.id + 1) is None


def test_bank_names_are_unique(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.create_bank(session, "photos")
    with sessions.begin() as session:
        with pytest.raises(store.BankExists):
            store.create_bank(session, "photos", "again")
        # The transaction is still usable after the refusal (no IntegrityError left behind).
        other = store.create_bank(session, "Photos")
    with sessions.begin() as session:
        assert [b.name for b in store.list_banks(session)] == ["photos", "Photos"]
        assert store.get_bank(session, other.id) == other


def test_grant_to_creator_and_list_by_client(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        alice, _ = store.create_client(session, "alice", "manage")
        bob, _ = store.create_client(session, "bob", ["manage"])
        a1 = store.create_bank(session, "a1", grant_to=alice.id)
        b1 = store.create_bank(session, "b1", grant_to=bob.id)
        a2 = store.create_bank(session, "a2", grant_to=alice.id)
        shared = store.create_bank(session, "shared")
        store.grant_bank(session, alice.id, shared.id)
        store.grant_bank(session, bob.id, shared.id)
    with sessions.begin() as session:
        assert [b.name for b in store.list_banks(session, client_id=alice.id)] == ["a1", "a2", "shared"]
        assert [b.name for b in store.list_banks(session, client_id=bob.id)] == ["b1", "shared"]
        assert store.client_bank_ids(session, alice.id) == {a1.id, a2.id, shared.id}
        assert len(store.list_banks(session)) == 4
        assert b1.id in store.client_bank_ids(session, bob.id)
        with pytest.raises(store.UnknownClient):
            store.create_bank(session, "orphan", grant_to=alice.id + bob.id + 100)


def test_bank_with_unknown_case_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(store.InvalidInput):
        store.create_bank(session, "x", case_id=12345)
