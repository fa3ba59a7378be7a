"""The back-pressure loop on the real cluster: never more than `window` tasks in flight, every result back once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ray
import ray.cloudpickle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from takeback.bulk.cluster import connect
from takeback.bulk.window import windowed
from tests.bulk import stand_ins

ray.cloudpickle.register_pickle_by_value(stand_ins)


class Counting:
    """Wraps a remote function and counts submissions, so the test sees in-flight work without trusting the loop."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.submitted = 0
        self.chunks: list[list[int]] = []

    def remote(self, chunk: list[int], *args: Any) -> Any:
        self.submitted += 1
        self.chunks.append(chunk)
        return self.fn.remote(chunk, *args)


@pytest.fixture(scope="module")
def cluster(ray_head) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with connect(ray_head.address) as cpus:
        yield cpus


def run(items: list[int], task: Counting, chunk: int, window: int) -> tuple[dict[int, int], int]:
    """Consume the results, measuring in flight = submitted - completed whenever a chunk's results arrive.

    Items go into chunks in order, so position // chunk names the chunk; its results all arrive together.
    """
    results: dict[int, int] = {}
    completed: set[int] = set()
    worst = 0
    for position, result in windowed(items, task, chunk_size=chunk, window=window, crashed=lambda i, r: -1):
        if position // chunk not in completed:
            worst = max(worst, task.submitted - len(completed))
            completed.add(position // chunk)
        results[position] = result
    return results, worst


def test_in_flight_never_exceeds_the_window_and_reaches_it(cluster: int) -> None:
    task = Counting(ray.remote(num_cpus=1, max_retries=0)(stand_ins.double))
    items = list(range(40))
    results, worst = run(items, task, chunk=2, window=3)
    assert results == {i: 2 * i for i in items}
    assert worst == 3  # bounded, and the window is actually used (work runs in parallel)
    assert task.submitted == 20


def test_a_consumer_that_stops_pulling_stops_submissions(cluster: int) -> None:
    task = Counting(ray.remote(num_cpus=1, max_retries=0)(stand_ins.double))
    stream = windowed(range(1000), task, chunk_size=1, window=4, crashed=lambda i, r: -1)
    first = next(stream)
    assert first[1] == 2 * first[0]
    assert task.submitted == 4  # the window, not the thousand items
    stream.close()


def test_a_dying_chunk_is_split_and_only_the_culprit_fails(cluster: int) -> None:
    task = Counting(ray.remote(num_cpus=1, max_retries=0)(stand_ins.die_on_seven))
    results = dict(windowed(range(12), task, chunk_size=4, window=2, crashed=lambda item, reason: -item))
    assert results == {i: (-7 if i == 7 else 2 * i) for i in range(12)}
    assert [4, 5, 6, 7] in task.chunks and [7] in task.chunks and [4] in task.chunks


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 30), chunk=st.integers(1, 7), window=st.integers(1, 5))
def test_every_item_comes_back_exactly_once(cluster: int, n: int, chunk: int, window: int) -> None:
    task = Counting(ray.remote(num_cpus=1, max_retries=0)(stand_ins.double))
    positions = [p for p, _ in windowed(range(n), task, chunk_size=chunk, window=window, crashed=lambda i, r: -1)]
    assert sorted(positions) == list(range(n))


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        next(windowed([1], Counting(None), chunk_size=0, window=1, crashed=lambda i, r: -1))
