"""Signals: de-duplication, removal journal, bank cascade, paging and chunked iteration, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.signals.types import SignalType
from takeback.store.models import ClientBank, Signal, SignalRemoval
from tests.store.helpers import pdq_hex, pdq_inputs


@pytest.fixture
def bank(sessions: sessionmaker[Session]) -> store.BankInfo:
    with sessions.begin() as session:
        return store.create_bank(session, "protected", "a case's photos")


def test_add_returns_stored_signals_in_input_order(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    vpdq = json.dumps([{"hash": "f" * 64, "quality": 90, "timestamp": 0.0}], separators=(",", ":"))
    inputs = [("pdq", "a" * 64, 97, "front"), (SignalType.VPDQ, vpdq, None, None), ("md5", "c" * 32, None, None)]
    before = datetime.now(UTC)
    with sessions.begin() as session:
        result = store.add_signals(session, bank.id, inputs)
    assert result.duplicates == 0
    assert [(s.signal_type, s.value, s.quality, s.note) for s in result.added] == [
        ("pdq", "a" * 64, 97, "front"),
        ("vpdq", vpdq, None, None),
        ("md5", "c" * 32, None, None),
    ]
    ids = [s.id for s in result.added]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(s.bank_id == bank.id for s in result.added)
    assert all(s.created_at.tzinfo is not None and s.created_at >= before.replace(microsecond=0) for s in result.added)
    with sessions.begin() as session:
        assert store.list_signals(session, bank.id) == result.added


def test_duplicates_within_a_bank_are_skipped(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    rnd = random.Random(1)
    first = pdq_inputs(rnd, 10)
    with sessions.begin() as session:
        assert len(store.add_signals(session, bank.id, first).added) == 10
    again = [*first[:4], *pdq_inputs(rnd, 3), first[0]]  # 4 stored, 3 new, 1 repeated within the batch
    with sessions.begin() as session:
        result = store.add_signals(session, bank.id, again)
    assert (len(result.added), result.duplicates) == (3, 5)
    # Quality and note are not part of identity: same type+value is the same signal.
    with sessions.begin() as session:
        result = store.add_signals(session, bank.id, [("pdq", first[1][1], 5, "other note")])
        assert (result.added, result.duplicates) == ([], 1)
        assert store.count_signals(session, bank.id) == 13


def test_same_value_may_live_in_two_banks_and_under_two_types(sessions: sessionmaker[Session]) -> None:
    value = "d" * 64
    with sessions.begin() as session:
        a = store.create_bank(session, "a")
        b = store.create_bank(session, "b")
        assert len(store.add_signals(session, a.id, [("pdq", value, None, None)]).added) == 1
        assert len(store.add_signals(session, b.id, [("pdq", value, None, None)]).added) == 1
        assert len(store.add_signals(session, a.id, [("sha256", value, None, None)]).added) == 1
        assert store.count_signals(session) == 3


def test_value_digest_covers_type_and_value() -> None:
    assert store.value_digest("pdq", "ab") != store.value_digest("sha256", "ab")
    assert store.value_digest("pd", "qab") != store.value_digest("pdq", "ab")
    assert len(store.value_digest("md5", "0" * 32)) == 64


def test_add_to_unknown_bank_and_empty_add(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    with sessions.begin() as session, pytest.raises(store.UnknownBank):
        store.add_signals(session, bank.id + 1000, [("pdq", "a" * 64, None, None)])
    with sessions.begin() as session:
        assert store.add_signals(session, bank.id, []) == store.AddResult(added=[], duplicates=0)


def test_large_batch_crosses_insert_batches(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    inputs = pdq_inputs(random.Random(2), 5_000)
    with sessions.begin() as session:
        result = store.add_signals(session, bank.id, inputs + inputs[:100])
    assert (len(result.added), result.duplicates) == (5_000, 100)
    assert [s.value for s in result.added] == [v for _, v, _, _ in inputs]


def test_remove_signals_journals_each_removal(sessions: sessionmaker[Session]) -> None:
    rnd = random.Random(3)
    with sessions.begin() as session:
        a = store.create_bank(session, "a")
        b = store.create_bank(session, "b")
        in_a = [s.id for s in store.add_signals(session, a.id, pdq_inputs(rnd, 5)).added]
        in_b = [s.id for s in store.add_signals(session, b.id, pdq_inputs(rnd, 2)).added]
        start = store.last_removal_seq(session)
    with sessions.begin() as session:
        # Ids of another bank and unknown ids are ignored; repeats count once.
        removed = store.remove_signals(session, a.id, [in_a[3], in_a[1], in_a[1], in_b[0], 10**12])
    assert removed == sorted([in_a[1], in_a[3]])
    with sessions.begin() as session:
        assert [s.id for s in store.list_signals(session, a.id)] == [in_a[0], in_a[2], in_a[4]]
        assert store.count_signals(session, b.id) == 2
        removals, last = store.removals_since(session, start)
        assert removals == [(in_a[1], a.id), (in_a[3], a.id)]
        assert last == store.last_removal_seq(session) > start
        assert store.removals_since(session, last) == ([], last)
        assert store.remove_signals(session, a.id, []) == []
        assert store.removals_since(session, last) == ([], last)


def test_delete_bank_cascades_and_journals_one_whole_bank_removal(sessions: sessionmaker[Session]) -> None:
    rnd = random.Random(4)
    with sessions.begin() as session:
        doomed = store.create_bank(session, "doomed")
        kept = store.create_bank(session, "kept")
        client, _ = store.create_client(session, "platform", "match", bank_ids=[doomed.id, kept.id])
        store.add_signals(session, doomed.id, pdq_inputs(rnd, 50))
        kept_ids = [s.id for s in store.add_signals(session, kept.id, pdq_inputs(rnd, 5)).added]
        seq = store.last_removal_seq(session)
    with sessions.begin() as session:
        assert store.delete_bank(session, doomed.id) is True
    with sessions.begin() as session:
        assert store.delete_bank(session, doomed.id) is False
        assert store.get_bank(session, doomed.id) is None
        assert session.execute(select(func.count()).where(Signal.bank_id == doomed.id)).scalar_one() == 0
        assert [s.id for s in store.list_signals(session, kept.id)] == kept_ids
        assert store.removals_since(session, seq)[0] == [(None, doomed.id)]
        assert session.execute(select(func.count()).select_from(SignalRemoval)).scalar_one() == 1
        assert store.client_bank_ids(session, client.id) == {kept.id}
        assert session.execute(select(ClientBank.bank_id)).scalars().all() == [kept.id]
        # The name is free again, and the new bank's signals get new ids.
        again = store.create_bank(session, "doomed")
        new = store.add_signals(session, again.id, pdq_inputs(random.Random(4), 1)).added
        assert again.id != doomed.id
        assert new[0].id > max(kept_ids)


def test_ids_are_never_reused(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    rnd = random.Random(5)
    with sessions.begin() as session:
        ids = [s.id for s in store.add_signals(session, bank.id, pdq_inputs(rnd, 3)).added]
        store.remove_signals(session, bank.id, ids)
    with sessions.begin() as session:
        assert store.max_signal_id(session) == 0
        new = store.add_signals(session, bank.id, pdq_inputs(rnd, 1)).added[0]
    assert new.id > max(ids)


def test_removals_since_replay_rebuilds_the_live_set(sessions: sessionmaker[Session]) -> None:
    """What the matcher does after loading a snapshot: add rows after the snapshot's max id, apply removals after
    its seq.  Whatever happened in between, the result equals the store's live set."""
    rnd = random.Random(6)
    with sessions.begin() as session:
        banks = [store.create_bank(session, f"b{i}").id for i in range(3)]
    live: dict[int, int] = {}
    snapshot: dict[int, int] | None = None
    marker = (0, 0)
    for step in range(40):
        with sessions.begin() as session:
            op = rnd.random()
            if op < 0.55:
                bank_id = rnd.choice(banks)
                for s in store.add_signals(session, bank_id, pdq_inputs(rnd, rnd.randint(1, 6))).added:
                    live[s.id] = s.bank_id
            elif op < 0.9 and live:
                victim_bank = rnd.choice(banks)
                candidates = [i for i, b in live.items() if b == victim_bank]
                for i in store.remove_signals(session, victim_bank, rnd.sample(candidates, min(3, len(candidates)))):
                    del live[i]
            elif len(banks) > 1:
                victim_bank = banks.pop(rnd.randrange(len(banks)))
                assert store.delete_bank(session, victim_bank)
                live = {i: b for i, b in live.items() if b != victim_bank}
                banks.append(store.create_bank(session, f"new{step}").id)
            if step == 15:
                snapshot = dict(live)
                marker = (store.max_signal_id(session), store.last_removal_seq(session))
    assert snapshot is not None
    with sessions.begin() as session:
        state = dict(snapshot)
        removals, _ = store.removals_since(session, marker[1])
        for signal_id, bank_id in removals:
            if signal_id is None:
                state = {i: b for i, b in state.items() if b != bank_id}
            else:
                state.pop(signal_id, None)
        for chunk in store.iter_signal_rows(session, after_id=marker[0], chunk=7):
            state.update({row[0]: row[1] for row in chunk})
        assert state == live
        assert {s.id: s.bank_id for c in store.iter_signals(session) for s in c} == live


def test_iter_signals_chunks_by_id(sessions: sessionmaker[Session]) -> None:
    rnd = random.Random(7)
    with sessions.begin() as session:
        a = store.create_bank(session, "a")
        b = store.create_bank(session, "b")
        ids = []
        for _ in range(5):  # interleave the two banks' ids
            ids += [s.id for s in store.add_signals(session, a.id, pdq_inputs(rnd, 3)).added]
            ids += [s.id for s in store.add_signals(session, b.id, pdq_inputs(rnd, 2)).added]
    with sessions.begin() as session:
        chunks = list(store.iter_signals(session, chunk=4))
        assert [len(c) for c in chunks] == [4, 4, 4, 4, 4, 4, 1]
        assert [s.id for c in chunks for s in c] == ids
        exact = list(store.iter_signals(session, chunk=25))
        assert [len(c) for c in exact] == [25]
        assert [s.id for c in store.iter_signals(session, after_id=ids[10], chunk=100) for s in c] == ids[11:]
        assert list(store.iter_signals(session, after_id=ids[-1])) == []
        in_b = [s for c in store.iter_signals(session, chunk=3, bank_id=b.id) for s in c]
        assert [s.bank_id for s in in_b] == [b.id] * 10
        rows = [r for c in store.iter_signal_rows(session, chunk=6) for r in c]
        assert rows == [(s.id, s.bank_id, s.signal_type, s.value) for c in chunks for s in c]
        with pytest.raises(ValueError):
            next(store.iter_signals(session, chunk=0))
        with pytest.raises(ValueError):
            next(store.iter_signal_rows(session, chunk=0))


def test_list_signals_pages(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    with sessions.begin() as session:
        ids = [s.id for s in store.add_signals(session, bank.id, pdq_inputs(random.Random(8), 12)).added]
    with sessions.begin() as session:
        pages, after = [], 0
        while page := store.list_signals(session, bank.id, after_id=after, limit=5):
            pages.append([s.id for s in page])
            after = page[-1].id
        assert pages == [ids[:5], ids[5:10], ids[10:]]
        assert store.list_signals(session, bank.id, limit=0) == []
        assert store.list_signals(session, bank.id + 99) == []


def test_get_signals_and_counts(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    with sessions.begin() as session:
        added = store.add_signals(session, bank.id, pdq_inputs(random.Random(9), 3)).added
        found = store.get_signals(session, [added[0].id, added[2].id, 10**9])
        assert found == {added[0].id: added[0], added[2].id: added[2]}
        assert store.count_signals(session) == store.count_signals(session, bank.id) == 3
        assert store.max_signal_id(session) == added[-1].id


def test_values_are_stored_verbatim(sessions: sessionmaker[Session], bank: store.BankInfo) -> None:
    value = pdq_hex(random.Random(10))
    note = "naïve café — 写真 \t end"  # notes are free text; nothing is mangled
    with sessions.begin() as session:
        store.add_signals(session, bank.id, [("pdq", value, 0, note)])
    with sessions.begin() as session:
        (stored,) = store.list_signals(session, bank.id)
    assert (stored.value, stored.quality, stored.note) == (value, 0, note)
