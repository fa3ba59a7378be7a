"""The quickest end-to-end check of the store on both backends."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from takeback import store


def test_bank_signals_roundtrip(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        bank = store.create_bank(session, "smoke")
        result = store.add_signals(session, bank.id, [("pdq", "a" * 64, 100, None), ("md5", "b" * 32, None, "x")])
    assert [s.signal_type for s in result.added] == ["pdq", "md5"]
    with sessions.begin() as session:
        assert [s.id for s in store.list_signals(session, bank.id)] == [s.id for s in result.added]
