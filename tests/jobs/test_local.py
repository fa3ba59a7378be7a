"""The single-machine backend: enqueue/run, keys, effects once, schedules on an injected clock, retries, the loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from takeback.config import Settings
from takeback.jobs import (
    InvalidPayload,
    JobContext,
    NotRetryable,
    Schedule,
    TaskSet,
    TaskSpec,
    UnknownJob,
    UnknownTask,
    claim_effect,
    effect_done,
)
from takeback.jobs.effects import ensure_tables
from takeback.jobs.local import LocalBackend
from takeback.store.db import make_engine, session_factory

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC).timestamp()  # 30 s past a minute


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions(database_url: str) -> Any:
    engine = make_engine(database_url)
    ensure_tables(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE probe_effects (name VARCHAR(100) NOT NULL, pid INTEGER NOT NULL)"))
    yield session_factory(engine)
    engine.dispose()


def make(sessions: Any, tmp_path: Path, *specs: TaskSpec, schedules: tuple[Schedule, ...] = ()) -> LocalBackend:
    tasks = TaskSet()
    tasks.add(*specs)
    tasks.schedule(*schedules)
    return LocalBackend(Settings(data_dir=tmp_path), sessions, tasks, clock=Clock())


def effect_task(seen: list[tuple[int, dict[str, Any]]]) -> TaskSpec:
    async def run(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append((ctx.job_id, payload))

        def effect() -> None:
            with ctx.sessions.begin() as session:
                if claim_effect(session, f"probe:{payload['name']}", task=ctx.task):
                    session.execute(text("INSERT INTO probe_effects VALUES (:n, 1)"), {"n": payload["name"]})

        await asyncio.to_thread(effect)

    return TaskSpec("probe.effect", run)


def effect_rows(sessions: Any) -> list[str]:
    with sessions() as session:
        return [row[0] for row in session.execute(text("SELECT name FROM probe_effects ORDER BY name"))]


async def test_enqueue_runs_with_payload_and_effect_happens_once(sessions: Any, tmp_path: Path) -> None:
    seen: list[tuple[int, dict[str, Any]]] = []
    backend = make(sessions, tmp_path, effect_task(seen))
    first = await backend.enqueue("probe.effect", {"name": "a"}, key="k-a")
    assert first is not None
    assert await backend.enqueue("probe.effect", {"name": "a"}, key="k-a") is None  # one waiting job per key
    assert await backend.run_due() == 1
    # The same effect requested again (a new job: the first one finished) runs the task but not the effect.
    second = await backend.enqueue("probe.effect", {"name": "a"}, key="k-a")
    assert second is not None and second != first
    assert await backend.run_due() == 1
    assert [payload for _, payload in seen] == [{"name": "a"}, {"name": "a"}]
    assert effect_rows(sessions) == ["a"]
    jobs = await backend.list_jobs()
    assert [j.status for j in jobs] == ["succeeded", "succeeded"]
    with sessions() as session:
        assert effect_done(session, "probe:a") and not effect_done(session, "probe:b")


async def test_claim_effect_rolls_back_with_its_transaction(sessions: Any) -> None:
    with pytest.raises(RuntimeError), sessions.begin() as session:
        assert claim_effect(session, "probe:x")
        raise RuntimeError("the effect failed")
    with sessions.begin() as session:
        assert claim_effect(session, "probe:x")  # the failed attempt left nothing behind
        assert not claim_effect(session, "probe:x")
    with pytest.raises(InvalidPayload), sessions() as session:
        claim_effect(session, "")


@hsettings(max_examples=40, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c, max_size=3)))
def test_payloads_round_trip_or_are_refused_by_name(value: Any) -> None:
    from takeback.jobs.spec import check_payload

    def strings(v: Any) -> list[str]:
        return [v] if isinstance(v, str) else [s for item in v for s in strings(item)] if isinstance(v, list) else []

    try:
        result = check_payload({"v": value, "escaped": "\\u0000"})
    except InvalidPayload:
        assert any("\x00" in text for text in strings(value))  # only NUL is refused (jsonb cannot hold it)
    else:
        assert result == {"v": value, "escaped": "\\u0000"}
        assert not any("\x00" in text for text in strings(value))


async def test_bad_requests_are_named_errors(sessions: Any, tmp_path: Path) -> None:
    backend = make(sessions, tmp_path, effect_task([]))
    with pytest.raises(UnknownTask):
        await backend.enqueue("no.such.task")
    with pytest.raises(InvalidPayload):
        await backend.enqueue("probe.effect", {"x": float("nan")})
    with pytest.raises(InvalidPayload):
        await backend.enqueue("probe.effect", ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(InvalidPayload):
        await backend.enqueue("probe.effect", {"x": "y" * 70_000})
    with pytest.raises(InvalidPayload):
        await backend.enqueue("probe.effect", {"x": "\ud800"})
    with pytest.raises(InvalidPayload):
        await backend.enqueue("probe.effect", {}, key="k" * 201)
    with pytest.raises(InvalidPayload):
        await backend.enqueue("probe.effect", {}, queue="Bad Queue")
    with pytest.raises(UnknownJob):
        await backend.retry(12345)
    job_id = await backend.enqueue("probe.effect", {"name": "z"})
    assert job_id is not None
    with pytest.raises(NotRetryable):
        await backend.retry(job_id)  # waiting, not failed
    with pytest.raises(InvalidPayload):
        backend.tasks.schedule(Schedule("s", "probe.effect", "every minute"))
    with pytest.raises(UnknownTask):
        backend.tasks.schedule(Schedule("s", "no.such.task", "* * * * *"))


async def test_schedules_follow_the_injected_clock(sessions: Any, tmp_path: Path) -> None:
    seen: list[tuple[int, dict[str, Any]]] = []
    backend = make(
        sessions,
        tmp_path,
        effect_task(seen),
        schedules=(Schedule("every-minute", "probe.effect", "* * * * *", {"name": "tick"}),),
    )
    assert await backend.tick(T0) == 0  # a fresh process starts at the next tick
    assert await backend.tick(T0 + 29) == 0  # 10:00:59
    assert await backend.tick(T0 + 30) == 1  # 10:01:00
    assert await backend.tick(T0 + 31) == 0
    # The job for 10:01 has not run yet: the next tick's job would be the same work, so it is not added.
    assert await backend.tick(T0 + 90) == 0
    assert await backend.run_due(T0 + 90) == 1
    # Ten missed minutes give one job, not ten (the task looks at the store, not at the tick).
    assert await backend.tick(T0 + 700) == 1
    assert await backend.run_due(T0 + 700) == 1
    assert [p for _, p in seen] == [{"name": "tick"}, {"name": "tick"}]
    assert backend.next_tick() == pytest.approx(T0 + 750)


async def test_failed_jobs_back_off_then_fail_and_can_be_retried(sessions: Any, tmp_path: Path) -> None:
    runs: list[int] = []

    async def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(ctx.attempts)
        raise RuntimeError("remote refused")

    backend = make(sessions, tmp_path, TaskSpec("probe.flaky", flaky, retries=1, retry_backoff_s=10))
    clock = backend.clock
    assert isinstance(clock, Clock)
    job_id = await backend.enqueue("probe.flaky")
    assert job_id is not None
    assert await backend.run_due() == 1
    (job,) = await backend.list_jobs()
    assert (job.status, job.attempts) == ("todo", 1)
    assert await backend.run_due(T0 + 9) == 0  # still backing off
    assert await backend.run_due(T0 + 10) == 1
    (job,) = await backend.list_jobs()
    assert job.status == "failed" and job.error == "RuntimeError: remote refused"
    assert runs == [0, 1]
    await backend.retry(job_id)
    assert await backend.run_due() == 1
    assert runs == [0, 1, 2]


async def test_worker_loop_runs_jobs_and_fan_out_and_stops(sessions: Any, tmp_path: Path) -> None:
    done = asyncio.Event()
    order: list[str] = []

    async def parent(ctx: JobContext, payload: dict[str, Any]) -> None:
        order.append("parent")
        for i in range(3):
            await ctx.enqueue("probe.child", {"i": i}, key=f"child:{i}")

    async def child(ctx: JobContext, payload: dict[str, Any]) -> None:
        order.append(f"child{payload['i']}")
        if len(order) == 4:
            done.set()

    tasks = TaskSet()
    tasks.add(TaskSpec("probe.parent", parent), TaskSpec("probe.child", child))
    backend = LocalBackend(Settings(data_dir=tmp_path), sessions, tasks)  # the real clock
    stop = asyncio.Event()
    runner = asyncio.create_task(backend.run_worker(concurrency=2, stop=stop))
    await backend.enqueue("probe.parent")
    await asyncio.wait_for(done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(runner, timeout=10)
    assert order[0] == "parent" and sorted(order[1:]) == ["child0", "child1", "child2"]
    assert {j.status for j in await backend.list_jobs()} == {"succeeded"}


async def test_same_key_never_runs_twice_at_once(sessions: Any, tmp_path: Path) -> None:
    inside = 0
    most = 0
    gate = asyncio.Event()
    finished = asyncio.Event()
    count = 0

    async def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        nonlocal inside, most, count
        inside += 1
        most = max(most, inside)
        await gate.wait()
        inside -= 1
        count += 1
        if count == 2:
            finished.set()

    tasks = TaskSet()
    tasks.add(TaskSpec("probe.slow", slow))
    backend = LocalBackend(Settings(data_dir=tmp_path), sessions, tasks)
    stop = asyncio.Event()
    runner = asyncio.create_task(backend.run_worker(concurrency=4, stop=stop))
    await backend.enqueue("probe.slow", key="same")
    while not inside:  # the first job is running
        await asyncio.sleep(0)
    assert await backend.enqueue("probe.slow", key="same") is not None  # may wait, not run alongside
    for _ in range(50):
        await asyncio.sleep(0)
    assert most == 1
    gate.set()
    await asyncio.wait_for(finished.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(runner, timeout=10)
    assert most == 1


async def test_two_server_processes_on_postgresql_never_run_one_key_at_once(pg_url: str, tmp_path: Path) -> None:
    """Each `takeback serve` on a shared PostgreSQL has its own in-memory queue; an advisory lock on the key makes
    the second run of a key wait for the first (which then finds its work done)."""
    engine = make_engine(pg_url)
    sessions = session_factory(engine)
    events: list[str] = []
    gate = asyncio.Event()
    first_inside = asyncio.Event()

    def spec(name: str) -> TaskSpec:
        async def run(ctx: JobContext, payload: dict[str, Any]) -> None:
            events.append(f"{name} start")
            if name == "A":
                first_inside.set()
                await gate.wait()
            events.append(f"{name} end")

        return TaskSpec("probe.slow", run)

    backends = []
    for name in ("A", "B"):
        tasks = TaskSet()
        tasks.add(spec(name))
        backends.append(LocalBackend(Settings(data_dir=tmp_path), sessions, tasks))
    try:
        for b in backends:
            await b.enqueue("probe.slow", key="notice-send:1")
        run_a = asyncio.create_task(backends[0].run_due())
        await asyncio.wait_for(first_inside.wait(), timeout=10)
        run_b = asyncio.create_task(backends[1].run_due())

        def b_waits() -> bool:
            with engine.connect() as connection:
                query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                return bool(connection.execute(text(query)).scalar_one())

        for _ in range(500):  # until B's run is queued on the lock A holds
            if await asyncio.to_thread(b_waits):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("B never waited for the key")
        assert events == ["A start"] and not run_b.done()
        gate.set()
        await asyncio.wait_for(asyncio.gather(run_a, run_b), timeout=10)
        assert events == ["A start", "A end", "B start", "B end"]
    finally:
        engine.dispose()


async def test_a_stopped_wait_for_a_key_leaves_no_lock_behind(pg_url: str, tmp_path: Path) -> None:
    """A process stopping while its job waits for a key another process holds gives up the wait (within one lock
    slice), keeps the job due, and leaves no advisory lock on any pooled connection."""
    engine = make_engine(pg_url)
    sessions = session_factory(engine)
    gate, inside = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    def spec(name: str) -> TaskSpec:
        async def run(ctx: JobContext, payload: dict[str, Any]) -> None:
            ran.append(name)
            inside.set()
            await gate.wait()

        return TaskSpec("probe.slow", run)

    backends = []
    for name in ("A", "B"):
        tasks = TaskSet()
        tasks.add(spec(name))
        backends.append(LocalBackend(Settings(data_dir=tmp_path), sessions, tasks))

    def locks(granted: bool) -> int:
        with engine.connect() as connection:
            query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = :g"
            return int(connection.execute(text(query), {"g": granted}).scalar_one())

    try:
        for b in backends:
            await b.enqueue("probe.slow", key="notice-send:2")
        run_a = asyncio.create_task(backends[0].run_due())
        await asyncio.wait_for(inside.wait(), timeout=10)
        run_b = asyncio.create_task(backends[1].run_due())
        for _ in range(500):
            if await asyncio.to_thread(locks, False):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("B never waited for the key")
        run_b.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run_b, timeout=10)
        assert [j.status for j in await backends[1].list_jobs()] == ["todo"]  # still due, never ran
        assert await asyncio.to_thread(locks, False) == 0
        gate.set()
        await asyncio.wait_for(run_a, timeout=10)
        assert ran == ["A"]
        assert await asyncio.to_thread(locks, True) == 0  # A gave its lock back too
    finally:
        engine.dispose()
