"""The server's index stays equal to the store across writes, snapshots and restarts."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from takeback.config import Settings
from takeback.index import IndexedSignal, Query
from takeback.store import banks as bank_repo
from takeback.store import signals as signal_repo
from takeback.store.db import open_store, session_factory
from takeback.web import matcher as matcher_module
from takeback.web.matcher import Matcher


def rand_hex(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, size=32, dtype=np.uint8).tobytes().hex()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # no background sync: the tests call sync() themselves, so what a matcher sees never depends on timing
    return Settings(data_dir=tmp_path / "data", database_url=database_url, index_sync_interval_s=0)


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


def test_second_process_follows_the_first_through_the_store(settings: Settings) -> None:
    """Two servers on one database: what one writes, the other's index picks up on its next sync, in order."""
    rng = np.random.default_rng(4)
    engine, sessions = open_store(settings)
    writer = Matcher.open(sessions, settings, snapshots=False)
    follower = Matcher.open(session_factory(engine, read_only=True), settings, snapshots=False)
    with sessions() as session:
        doomed_bank = bank_repo.create_bank(session, "doomed")
        kept_bank = bank_repo.create_bank(session, "kept")
        session.commit()
    values = [rand_hex(rng) for _ in range(6)]
    doomed = add(writer, sessions, doomed_bank.id, values[:2])
    kept = add(writer, sessions, kept_bank.id, values[2:4])
    assert found(follower, values[:4]) == [[], [], [], []]  # not synced yet
    assert follower.sync() == 4
    assert found(follower, values[:4]) == [[doomed[0]], [doomed[1]], [kept[0]], [kept[1]]]
    with sessions() as session:
        writer.apply(session, removed=signal_repo.remove_signals(session, kept_bank.id, [kept[0]]))
    with sessions() as session:
        bank_repo.delete_bank(session, doomed_bank.id)
        writer.apply(session, removed_banks=[doomed_bank.id])
    with sessions() as session:  # on SQLite the deleted bank's id may be handed out again
        reborn = bank_repo.create_bank(session, "reborn")
        session.commit()
    fresh = add(writer, sessions, reborn.id, values[4:])
    follower.sync()
    assert found(follower, values) == found(writer, values) == [[], [], [], [kept[1]], [fresh[0]], [fresh[1]]]
    assert follower.position == writer.position
    assert follower.sync() == 0


def test_sync_loop_picks_up_other_writers(settings: Settings) -> None:
    rng = np.random.default_rng(5)
    engine, sessions = open_store(settings)
    follower = Matcher.open(session_factory(engine, read_only=True), settings.model_copy(
        update={"index_sync_interval_s": 0.01}), snapshots=False)
    try:
        with sessions() as session:
            bank = bank_repo.create_bank(session, "b")
            value = rand_hex(rng)
            [stored] = signal_repo.add_signals(session, bank.id, [("pdq", value, None, None)]).added
            session.commit()  # written behind the follower's back, as another process would
        synced = threading.Event()
        for _ in range(2000):  # wait for the condition, not for a time: each round blocks until the loop moves
            if found(follower, [value]) == [[stored.id]]:
                synced.set()
                break
            follower._stop.wait(0.005)
        assert synced.is_set()
    finally:
        follower.close()


def test_out_of_order_commits_are_not_skipped(settings: Settings, database_url: str) -> None:
    """A writer that took an id first but commits last must still reach the other processes' indexes.

    Ids come from a sequence at insert time; without writers taking turns, the second writer's bigger id could commit
    first, a sync would move past it, and the first writer's rows would never be read.  PostgreSQL only: SQLite's
    BEGIN IMMEDIATE makes writers take turns on its own.
    """
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers itself")
    from sqlalchemy import text

    rng = np.random.default_rng(6)
    engine, sessions = open_store(settings)
    follower = Matcher.open(session_factory(engine, read_only=True), settings, snapshots=False)
    with sessions() as session:
        bank = bank_repo.create_bank(session, "b")
        session.commit()
    first_value, second_value = rand_hex(rng), rand_hex(rng)
    first = sessions()
    signal_repo.add_signals(first, bank.id, [("pdq", first_value, None, None)])  # id taken, not committed

    def second_writer() -> None:
        with sessions() as session:
            signal_repo.add_signals(session, bank.id, [("pdq", second_value, None, None)])
            session.commit()

    thread = threading.Thread(target=second_writer)
    thread.start()
    with sessions() as probe:  # wait until the second writer is queued behind the first (a condition, not a time)
        for _ in range(2000):
            waiting = probe.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
            probe.rollback()
            if waiting or not thread.is_alive():
                break
            follower._stop.wait(0.005)
    follower.sync()
    first.commit()
    first.close()
    thread.join(timeout=30)
    follower.sync()
    assert [len(ms) for ms in follower.match([Query("pdq", v, threshold=0) for v in (first_value, second_value)])] == [
        1,
        1,
    ]
