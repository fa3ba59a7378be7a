"""The back-pressure loop: work items in chunks as Ray tasks, a bounded number in flight, results as they finish.

A backlog can hold far more files than fit in the driver's memory or Ray's object store as pending tasks, so the
driver never submits more than `window` chunks ahead: it reads the next chunk from the (lazy) item source only when a
finished one has been taken back (`ray.wait`). If the consumer of the results stops pulling, nothing more is
submitted.

A chunk whose task dies (a decoder that crashes its worker process, a worker killed for memory, a lost node) is not
retried as a whole: its items are resubmitted one per task, so the item that kills a worker is named and the others
of its chunk still get their results. A single-item task that dies gets the `crashed` result for that item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, Protocol, TypeVar

from takeback.bulk.cluster import require_ray

Item = TypeVar("Item")
Result = TypeVar("Result")


class RemoteChunk(Protocol):
    """A Ray remote function (or a stand-in) taking a list of items and returning one result per item, in order."""

    def remote(self, chunk: list[Any], *args: Any) -> Any: ...


def windowed(
    items: Iterable[Item],
    task: RemoteChunk,
    *,
    args: tuple[Any, ...] = (),
    chunk_size: int,
    window: int,
    crashed: Callable[[Item, str], Result],
) -> Iterator[tuple[int, Result]]:
    """Yield `(position of the item in items, its result)` in order of completion.

    `task.remote(chunk, *args)` runs one chunk; `args` are put in the object store once, not once per task.
    """
    if chunk_size < 1 or window < 1:
        raise ValueError("chunk_size and window must be at least 1")
    ray = require_ray()
    shared = tuple(ray.put(a) for a in args)
    source = iter(enumerate(items))
    retry: deque[list[tuple[int, Item]]] = deque()
    in_flight: dict[Any, list[tuple[int, Item]]] = {}
    exhausted = False
    while True:
        while len(in_flight) < window:
            if retry:
                chunk = retry.popleft()
            elif not exhausted:
                chunk = list(islice(source, chunk_size))
                if not chunk:
                    exhausted = True
                    break
            else:
                break
            in_flight[task.remote([item for _, item in chunk], *shared)] = chunk
        if not in_flight:
            return
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            chunk = in_flight.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayError as exc:
                if len(chunk) > 1:
                    retry.extend([pair] for pair in chunk)
                    continue
                results = [crashed(chunk[0][1], _reason(exc))]
            if len(results) != len(chunk):
                raise RuntimeError(f"a chunk of {len(chunk)} items came back with {len(results)} results")
            for (position, _item), result in zip(chunk, results, strict=True):
                yield position, result


def _reason(exc: BaseException) -> str:
    """A short name for why a task died (the worker crashed, ran out of memory, the node was lost …)."""
    name = type(exc).__name__
    if "OutOfMemory" in name:
        return "out-of-memory"
    return name
