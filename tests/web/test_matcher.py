"""The server's index stays equal to the store across writes, snapshots and restarts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from takeback.config import Settings
from takeback.index import IndexedSignal, Query
from takeback.store import banks as bank_repo
from takeback.store import signals as signal_repo
from takeback.store.db import open_store
from takeback.web import matcher as matcher_module
from takeback.web.matcher import Matcher


def rand_hex(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, size=32, dtype=np.uint8).tobytes().hex()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


def add(matcher: Matcher, sessions, bank_id: int, values: list[str], kind: str = "pdq") -> list[int]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        result = signal_repo.add_signals(session, bank_id, [(kind, v, None, None) for v in values])
        matcher.apply(session, added=[IndexedSignal(s.id, s.bank_id, s.signal_type, s.value) for s in result.added])
        return [s.id for s in result.added]


def found(matcher: Matcher, values: list[str]) -> list[list[int]]:
    return [[m.signal_id for m in ms] for ms in matcher.match([Query("pdq", v, threshold=0) for v in values])]


def test_restart_replays_store_with_and_without_snapshot(settings: Settings) -> None:
    rng = np.random.default_rng(1)
    _engine, sessions = open_store(settings)
    values = [rand_hex(rng) for _ in range(30)]
    matcher = Matcher.open(sessions, settings)
    with sessions() as session:
        bank = bank_repo.create_bank(session, "a")
        other = bank_repo.create_bank(session, "b")
        session.commit()
    ids = add(matcher, sessions, bank.id, values[:10])
    matcher.snapshot()
    # changes after the snapshot: more signals, a removal, a whole bank deleted
    more = add(matcher, sessions, bank.id, values[10:20])
    doomed = add(matcher, sessions, other.id, values[20:30])
    with sessions() as session:
        gone = signal_repo.remove_signals(session, bank.id, [ids[0], more[0]])
        matcher.apply(session, removed=gone)
    with sessions() as session:
        bank_repo.delete_bank(session, other.id)
        matcher.apply(session, removed_banks=[other.id])
    expected = found(matcher, values)
    assert expected[0] == [] and expected[10] == [] and expected[25] == [] and expected[5] == [ids[5]]
    assert doomed
    # no close(): as after kill -9, the snapshot on disk is the old one and the store has the rest
    restarted = Matcher.open(sessions, settings)
    assert found(restarted, values) == expected
    restarted.close()
    # without any snapshot: everything from the store
    cold = Matcher.open(sessions, settings, snapshots=False)
    assert found(cold, values) == expected
    assert len(cold) == len(restarted) == 18


def test_reused_bank_id_after_snapshot_is_not_removed(settings: Settings) -> None:
    rng = np.random.default_rng(2)
    _engine, sessions = open_store(settings)
    matcher = Matcher.open(sessions, settings)
    with sessions() as session:
        first = bank_repo.create_bank(session, "first")
        session.commit()
    add(matcher, sessions, first.id, [rand_hex(rng)])
    matcher.snapshot()
    with sessions() as session:
        bank_repo.delete_bank(session, first.id)
        matcher.apply(session, removed_banks=[first.id])
    with sessions() as session:
        second = bank_repo.create_bank(session, "second")
        session.commit()
    fresh = rand_hex(rng)
    [new_id] = add(matcher, sessions, second.id, [fresh])
    restarted = Matcher.open(sessions, settings)
    assert found(restarted, [fresh]) == [[new_id]]
    restarted.close()


def test_large_replay_writes_a_snapshot(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher_module, "SNAPSHOT_AFTER_CHANGES", 5)
    rng = np.random.default_rng(3)
    _engine, sessions = open_store(settings)
    with sessions() as session:
        bank = bank_repo.create_bank(session, "bulk")
        signal_repo.add_signals(session, bank.id, [("pdq", rand_hex(rng), None, None) for _ in range(8)])
        session.commit()
    matcher = Matcher.open(sessions, settings)
    assert (settings.snapshot_dir / "meta.json").exists()
    assert len(matcher) == 8
    matcher.close()


def test_failed_commit_leaves_index_untouched(settings: Settings) -> None:
    _engine, sessions = open_store(settings)
    matcher = Matcher.open(sessions, settings, snapshots=False)

    class Boom(RuntimeError):
        pass

    class FailingSession:
        def commit(self) -> None:
            raise Boom

    with pytest.raises(Boom):
        matcher.apply(FailingSession(), added=[IndexedSignal(1, 1, "pdq", "0" * 64)])  # type: ignore[arg-type]
    assert len(matcher) == 0
