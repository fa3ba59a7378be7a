"""Inputs PostgreSQL would refuse (NUL characters, over-long text, integers beyond the column) get the same answer on
both backends: a named InvalidInput before any SQL, or "not found" for ids that cannot exist — never a DataError."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store

IMPOSSIBLE_IDS = [0, -1, 2**31, 2**63, 10**30, True, "1", 1.0]  # None means "all" where a filter is optional


def test_text_with_nul_or_too_long_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        bank = store.create_bank(session, "b")
        client, _ = store.create_client(session, "c", "match")
        hook = store.create_webhook(session, client.id, "https://example.org/")
    cases = [
        lambda s: store.create_bank(s, "nul\x00name"),
        lambda s: store.create_bank(s, "x" * 201),
        lambda s: store.create_bank(s, "ok", "desc\x00"),
        lambda s: store.create_case(s, "\x00"),
        lambda s: store.add_signals(s, bank.id, [("pdq", "a" * 64, None, None), ("pdq", "b\x00", None, None)]),
        lambda s: store.add_signals(s, bank.id, [("pdq", "a" * 64, None, "note\x00")]),
        lambda s: store.add_signals(s, bank.id, [("p" * 33, "a" * 64, None, None)]),
        lambda s: store.add_signals(s, bank.id, [("pdq", "a" * 64, 2**31, None)]),
        lambda s: store.add_signals(s, bank.id, [("pdq", "a" * 64, "100", None)]),
        lambda s: store.create_client(s, "n\x00", "match"),
        lambda s: store.create_client(s, "n", "match", rate_limit_per_minute=2**40),
        lambda s: store.create_webhook(s, client.id, "https://example.org/\x00"),
        lambda s: store.create_webhook(s, client.id, "https://example.org/", "s" * 201),
        lambda s: store.create_delivery(s, hook.id, "e" * 37, "{}"),
        lambda s: store.update_delivery(s, 1, response_status=2**40),
    ]
    for i, case in enumerate(cases):
        with sessions.begin() as session:
            with pytest.raises(store.InvalidInput) as raised:
                case(session)
            assert isinstance(raised.value, ValueError) and raised.value.field, i
    with sessions.begin() as session:
        assert store.count_signals(session) == 0  # all-or-nothing: the good first signal was not stored
        assert [b.name for b in store.list_banks(session)] == ["b"]


def test_impossible_ids_are_not_found(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        bank = store.create_bank(session, "b")
        client, _ = store.create_client(session, "c", "match")
        store.add_signals(session, bank.id, [("md5", "0" * 32, None, None)])
    for bad in IMPOSSIBLE_IDS:
        with sessions.begin() as session:
            assert store.get_bank(session, bad) is None  # type: ignore[arg-type]
            assert store.get_case(session, bad) is None  # type: ignore[arg-type]
            assert store.delete_bank(session, bad) is False  # type: ignore[arg-type]
            assert store.list_signals(session, bad) == []  # type: ignore[arg-type]
            assert store.count_signals(session, bad) == 0  # type: ignore[arg-type]
            assert list(store.iter_signals(session, bank_id=bad)) == []  # type: ignore[arg-type]
            assert store.remove_signals(session, bad, [1]) == []  # type: ignore[arg-type]
            assert store.remove_signals(session, bank.id, [bad]) == []  # type: ignore[list-item]
            assert store.get_signals(session, [bad]) == {}  # type: ignore[list-item]
            assert store.get_client(session, bad) is None  # type: ignore[arg-type]
            assert store.revoke_client(session, bad) is False  # type: ignore[arg-type]
            assert store.client_bank_ids(session, bad) == frozenset()  # type: ignore[arg-type]
            assert store.list_banks(session, client_id=bad) == []  # type: ignore[arg-type]
            assert store.ungrant_bank(session, client.id, bad) is False  # type: ignore[arg-type]
            assert store.get_webhook(session, bad) is None  # type: ignore[arg-type]
            assert store.delete_webhook(session, bad) is False  # type: ignore[arg-type]
            assert store.set_webhook_active(session, bad, False) is False  # type: ignore[arg-type]
            assert store.list_webhooks(session, bad) == []  # type: ignore[arg-type]
            assert store.get_delivery(session, bad) is None  # type: ignore[arg-type]
            assert store.update_delivery(session, bad, status="failed") is None  # type: ignore[arg-type]
            assert store.list_deliveries(session, bad) == []  # type: ignore[arg-type]
            with pytest.raises(store.UnknownBank):
                store.add_signals(session, bad, [("md5", "1" * 32, None, None)])  # type: ignore[arg-type]
            with pytest.raises(store.UnknownBank):
                store.grant_bank(session, client.id, bad)  # type: ignore[arg-type]
            with pytest.raises(store.UnknownClient):
                store.grant_bank(session, bad, bank.id)  # type: ignore[arg-type]
            with pytest.raises(store.UnknownClient):
                store.create_webhook(session, bad, "https://example.org/")  # type: ignore[arg-type]
            with pytest.raises(store.UnknownWebhook):
                store.create_delivery(session, bad, "e", "{}")  # type: ignore[arg-type]


def test_huge_paging_bounds(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        bank = store.create_bank(session, "b")
        store.add_signals(session, bank.id, [("md5", "0" * 32, None, None)])
    with sessions.begin() as session:
        for after in (2**63, 10**30):
            assert store.list_signals(session, bank.id, after_id=after) == []
            assert list(store.iter_signals(session, after_id=after)) == []
            assert list(store.iter_signal_rows(session, after_id=after)) == []
            assert store.removals_since(session, after) == ([], after)
        assert len(store.list_signals(session, bank.id, after_id=-(10**30))) == 1
        assert store.list_signals(session, bank.id, limit=-5) == []


def test_names_that_cannot_exist_are_not_found(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.create_bank(session, "b")
        for name in ["b\x00", "x" * 10_000, ""]:
            assert store.get_bank_by_name(session, name) is None
        assert store.get_banks_by_names(session, ["b", "b\x00", "y" * 500]).keys() == {"b"}
