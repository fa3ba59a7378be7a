"""Concurrency basics on both backends: parallel writers, same-name races, readers never see half a write, and the
"resume after id N / seq S" contract the matcher relies on holds while writers run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.store.db import session_factory
from tests.store.helpers import pdq_inputs

THREADS = 4


def _run_threads(target: Callable[[int], None], n: int = THREADS) -> None:
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def test_parallel_adders_never_duplicate(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        bank = store.create_bank(session, "shared")
    pool = pdq_inputs(random.Random(11), 300)
    barrier = threading.Barrier(THREADS)
    added: list[list[int]] = [[] for _ in range(THREADS)]
    duplicates = [0] * THREADS

    def adder(i: int) -> None:
        rnd = random.Random(i)
        barrier.wait(30)
        for _ in range(8):
            batch = rnd.sample(pool, 60)
            with sessions.begin() as session:
                result = store.add_signals(session, bank.id, batch)
            added[i] += [s.id for s in result.added]
            duplicates[i] += result.duplicates

    _run_threads(adder)
    all_ids = [i for ids in added for i in ids]
    assert len(all_ids) == len(set(all_ids))
    assert sum(duplicates) + len(all_ids) == THREADS * 8 * 60
    with sessions.begin() as session:
        stored = [s for c in store.iter_signals(session) for s in c]
    assert sorted(all_ids) == [s.id for s in stored]
    assert len({s.value for s in stored}) == len(stored)


def test_same_bank_name_race_has_one_winner(sessions: sessionmaker[Session]) -> None:
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def creator(i: int) -> None:
        barrier.wait(30)
        try:
            with sessions.begin() as session:
                store.create_bank(session, "contested", f"by {i}")
            outcomes.append("created")
        except store.BankExists:
            outcomes.append("exists")

    _run_threads(creator)
    assert sorted(outcomes) == ["created"] + ["exists"] * (THREADS - 1)


def test_readers_see_whole_writes_only(engine: Engine, sessions: sessionmaker[Session]) -> None:
    batch = 500
    with sessions.begin() as session:
        bank = store.create_bank(session, "b")
    reader_factory = session_factory(engine, read_only=True)
    done = threading.Event()
    seen: set[int] = set()

    def writer() -> None:
        rnd = random.Random(12)
        try:
            for _ in range(6):
                with sessions.begin() as session:
                    store.add_signals(session, bank.id, pdq_inputs(rnd, batch))
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            with reader_factory() as session:
                seen.add(store.count_signals(session, bank.id))

    _run_threads(lambda i: writer() if i == 0 else reader(), n=3)
    assert seen and all(n % batch == 0 for n in seen), sorted(seen)


def test_tailing_by_id_and_seq_misses_nothing(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """While writers add and remove, a tailer that only ever asks "signals after my last id" and "removals after
    my last seq" ends up with exactly the store's state: ids and seqs become visible in number order."""
    with sessions.begin() as session:
        banks = [store.create_bank(session, f"b{i}").id for i in range(THREADS - 1)]
    done = threading.Event()
    reader_factory = session_factory(engine, read_only=True)
    mirror: dict[int, int] = {}
    marker = [0, 0]

    def catch_up() -> None:
        with reader_factory() as session:
            removals, marker[1] = store.removals_since(session, marker[1])
            for signal_id, bank_id in removals:
                if signal_id is None:
                    for k in [k for k, b in mirror.items() if b == bank_id]:
                        del mirror[k]
                else:
                    mirror.pop(signal_id, None)
            for chunk in store.iter_signal_rows(session, after_id=marker[0], chunk=100):
                mirror.update({row[0]: row[1] for row in chunk})
                marker[0] = chunk[-1][0]

    def writer(i: int) -> None:
        rnd = random.Random(100 + i)
        bank_id = banks[i]
        mine: list[int] = []
        for _ in range(15):
            with sessions.begin() as session:
                if mine and rnd.random() < 0.4:
                    gone = store.remove_signals(session, bank_id, rnd.sample(mine, min(len(mine), 4)))
                    mine = [m for m in mine if m not in gone]
                else:
                    mine += [s.id for s in store.add_signals(session, bank_id, pdq_inputs(rnd, 20)).added]

    def tailer() -> None:
        while not done.is_set():
            catch_up()

    tail = threading.Thread(target=tailer)
    tail.start()
    try:
        _run_threads(writer, n=THREADS - 1)
    finally:
        done.set()
        tail.join(60)
    catch_up()
    with sessions.begin() as session:
        truth = {s.id: s.bank_id for c in store.iter_signals(session) for s in c}
    assert mirror == truth


WRITER = """
import sys
from takeback import store
from takeback.store.db import make_engine, session_factory

url, bank_id = sys.argv[1], int(sys.argv[2])
factory = session_factory(make_engine(url))
n = 0
while True:
    with factory.begin() as session:
        result = store.add_signals(session, bank_id, [("md5", f"{n + k:032x}", None, None) for k in range(50)])
    n += 50
    print(" ".join(str(s.id) for s in result.added), flush=True)
"""


def test_acknowledged_signals_survive_kill_9(database_url: str, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        bank = store.create_bank(session, "durable")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, database_url, str(bank.id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[int] = []
    try:
        assert proc.stdout is not None
        for _ in range(20):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            acknowledged += [int(x) for x in line.split()]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    with sessions.begin() as session:
        present = set(store.get_signals(session, acknowledged))
        total = store.count_signals(session, bank.id)
    assert present == set(acknowledged)
    assert total >= len(acknowledged) and total % 50 == 0  # whole transactions only
