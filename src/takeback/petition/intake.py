"""Durable, fast signature intake: a write queue with group commit.

Why: one transaction per signature costs one fsync per signature (SQLite WAL with synchronous=FULL, or a
PostgreSQL commit); a burst of thousands per second would queue behind the disk.  Here one writer thread takes
whatever is waiting (up to ``max_batch``), stores it in one transaction (``store.signatures.add_signatures``,
which also maintains the counters) and commits once; only then is each waiting request answered.  Under light load
a batch is a single signature and nothing waits for company; under a burst the batches grow by themselves, because
everything that arrives during one commit goes into the next.

Acknowledged means committed: ``submit`` returns a future that completes after the commit, with the outcome, or
with the exception that stopped the batch (then nothing of that batch was stored and every caller hears so).

Each acknowledgement carries the petition's counts read in the batch's own transaction (one read per petition per
batch, not per signature), so the signer is shown a count that includes their signature, and the process's count
cache is refreshed with it instead of being emptied on every signature of a burst.

Waiters in an event loop (``accept``) are answered with one ``call_soon_threadsafe`` per loop and batch, not one
per signature: under a burst that is one wake-up of the server's loop for a whole group commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from takeback.petition.counts import CountsCache
from takeback.store import petitions, signatures
from takeback.store.petitions import Counts
from takeback.store.signatures import NewSignature, SignOutcome

log = logging.getLogger("takeback.petition")


class IntakeClosed(RuntimeError):
    """The intake was stopped; the signature was not stored."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A committed signature (or the existing one it resolved to) and its petition's counts as of that commit."""

    outcome: SignOutcome
    counts: Counts


#: Where an answer goes: a thread's future (``submit``) or an event loop's (``accept``).
Waiter = Future[Accepted] | asyncio.Future[Accepted]
#: An answer: the acknowledgement, or the exception that kept the signature from being stored.
Answer = Accepted | BaseException


def _settle(pairs: list[tuple[asyncio.Future[Accepted], Answer]]) -> None:
    """In the waiters' event loop: complete each future (a waiter that gave up, e.g. a client that went away, is
    skipped; its signature is stored all the same, as it would be had the answer been lost on the wire)."""
    for future, answer in pairs:
        if future.done():
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)


def _answer(batch: Sequence[tuple[NewSignature, Waiter]], answers: Sequence[Answer]) -> None:
    """Hand each waiter its answer: thread futures directly, loop futures grouped into one callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Accepted], Answer]]] = {}
    for (_, waiter), answer in zip(batch, answers, strict=True):
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append((waiter, answer))
        elif isinstance(answer, BaseException):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, pairs)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            log.debug("petition intake: %d answers for a closed event loop dropped", len(pairs))


class Intake:
    def __init__(
        self,
        session_factory: Callable[[], Any],
        *,
        max_batch: int = 1000,
        on_commit: Callable[[Sequence[NewSignature], Sequence[SignOutcome]], None] | None = None,
        counts_cache: CountsCache | None = None,
    ) -> None:
        self._sessions = session_factory
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._cache = counts_cache
        self._queue: queue.SimpleQueue[tuple[NewSignature, Waiter] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.largest_batch = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="petition-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Store what is queued, then stop (later submits fail with IntakeClosed)."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, item: NewSignature) -> Future[Accepted]:
        """Queue one signature (validated first: a bad one fails alone, here).  The future completes after commit."""
        signatures.validate(item)
        future: Future[Accepted] = Future()
        if self._closed:
            future.set_exception(IntakeClosed("the petition intake is shutting down"))
            return future
        self._queue.put((item, future))
        return future

    async def accept(self, item: NewSignature) -> Accepted:
        """``submit`` for a caller in an event loop: returns after the commit (or raises what stopped it)."""
        signatures.validate(item)
        if self._closed:
            raise IntakeClosed("the petition intake is shutting down")
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.put((item, future))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                stopping = True
                batch: list[tuple[NewSignature, Waiter]] = []
            else:
                batch = [first]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    continue
                batch.append(nxt)
            if batch:
                self._store(batch)
        # Anything submitted after the stop marker (a race with stop()) is refused, never silently dropped.
        late: list[tuple[NewSignature, Waiter]] = []
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not None:
                late.append(entry)
        _answer(late, [IntakeClosed("the petition intake is shutting down") for _ in late])

    def _store(self, batch: list[tuple[NewSignature, Waiter]]) -> None:
        items = [item for item, _ in batch]
        petition_ids = sorted({item.petition_id for item in items})
        tokens = {pid: self._cache.token(pid) for pid in petition_ids} if self._cache is not None else {}
        try:
            with self._sessions() as session, session.begin():
                outcomes = signatures.add_signatures(session, items)
                # In the batch's transaction, after its counter updates: exact, and includes this batch.
                totals = {pid: petitions.get_counts(session, pid) for pid in petition_ids}
        except Exception as exc:  # the whole batch is rolled back: every caller hears it, none is acknowledged
            log.warning("petition intake: a batch of %d signatures was not stored: %s", len(batch), exc)
            _answer(batch, [exc] * len(batch))
            return
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        if self._cache is not None:
            for pid, counts in totals.items():
                self._cache.offer(pid, tokens[pid], counts)
        _answer(batch, [Accepted(o, totals[i.petition_id]) for i, o in zip(items, outcomes, strict=True)])
        if self._on_commit is not None:
            try:
                self._on_commit(items, outcomes)
            except Exception:
                log.exception("petition intake: after-commit hook failed")
