"""The server's index, kept equal to the store.

The database is the source of truth: a signal is acknowledged once committed, and a restart rebuilds the index
from the store. Rebuilding 10 million hashes from rows takes a while, so the index is also snapshotted to disk with
a marker of the store changes it contains (highest signal id, highest removal sequence); a restart loads the
snapshot and replays only what came after.

Several server processes may share one database (PostgreSQL). Each keeps its own index, and the index follows the
store, not the process's own requests: the matcher remembers the position in the store it reflects (highest signal
id, highest removal sequence) and `sync` reads what was committed after it, whoever wrote it. A write in this
process (`apply`) commits and then syncs at once, so a client reads its own writes; a background thread syncs every
`index_sync_interval_s` to pick up the other processes' writes. Reading "after id N" is only safe because signal
writers take turns (``serialise_signal_writes``), which makes commit order equal id order, and because ids are
never reused (SQLite AUTOINCREMENT, PostgreSQL identity).

Index changes happen only under one lock, and a snapshot is taken under it with the matcher's position, so a
snapshot never claims a change the index lacks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from takeback.config import Settings
from takeback.index import IndexedSignal, Match, Query, SignalIndex
from takeback.index.video import VideoRule
from takeback.store import signals as signal_repo

log = logging.getLogger(__name__)

#: Take a new snapshot at most this often, and only after this many changes.
SNAPSHOT_EVERY_S = 300.0
SNAPSHOT_AFTER_CHANGES = 10_000
_LOAD_CHUNK = 50_000


def video_rule(settings: Settings) -> VideoRule:
    return VideoRule(
        threshold=settings.vpdq_threshold,
        quality=settings.vpdq_quality,
        query_match_pct=settings.vpdq_query_match_pct,
        compared_match_pct=settings.vpdq_compared_match_pct,
    )


def _consistent_reads(session: Session) -> None:
    """Make the session's reads see one snapshot of the database.

    The removals and the rows must be read from the same moment: otherwise a whole-bank removal committed between
    the two reads could be missed by the first and the reused bank's new rows seen by the second, and the next sync
    would remove those new rows with the old bank. SQLite's plain BEGIN (read-only sessions) already holds one WAL
    snapshot for the transaction; PostgreSQL's default READ COMMITTED takes one per statement, so ask for
    REPEATABLE READ.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _replay(index: SignalIndex, session: Session, marker: dict[str, int]) -> int:
    """Apply the store's changes after `marker` to `index` and move `marker` past them; returns how many changes
    there were. `session` must read one snapshot (`_consistent_reads`).

    Removals first: they can only concern signals the index holds or rows the later read no longer returns, since
    the signals table keeps only live rows. Adding the later rows afterwards means a removal can never hit a signal
    that arrived after it (not even when a deleted bank's id is reused).
    """
    removals, marker["removal_seq"] = signal_repo.removals_since(session, marker["removal_seq"])
    index.remove([signal_id for signal_id, _bank in removals if signal_id is not None])
    for signal_id, bank_id in removals:
        if signal_id is None:
            index.remove_bank(bank_id)
    changes = len(removals)
    for rows in signal_repo.iter_signal_rows(session, after_id=marker["signal_id"], chunk=_LOAD_CHUNK):
        index.add((IndexedSignal(*row) for row in rows), trusted=True)
        changes += len(rows)
        marker["signal_id"] = rows[-1][0]
    return changes


class Matcher:
    """The index plus the bookkeeping that keeps it equal to the store; shared by all request handlers."""

    def __init__(
        self,
        index: SignalIndex,
        session_factory: Callable[[], Session],
        snapshot_dir: Path | None,
        marker: dict[str, int] | None = None,
        sync_interval_s: float = 0.0,
    ) -> None:
        """`session_factory` is only read from (a read-only factory suits SQLite best); `marker` is the store
        position `index` already reflects."""
        self.index = index
        self._sessions = session_factory
        self._snapshot_dir = snapshot_dir
        self._marker = dict(marker or {"signal_id": 0, "removal_seq": 0})
        self._sync_interval_s = sync_interval_s
        self._write = threading.RLock()
        self._changes = 0
        self._last_snapshot = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def open(cls, session_factory: Callable[[], Session], settings: Settings, *, snapshots: bool = True) -> Matcher:
        """Load the snapshot if there is one, replay the store's later changes, and start periodic snapshots."""
        snapshot_dir = settings.snapshot_dir if snapshots else None
        rule = video_rule(settings)
        marker = {"signal_id": 0, "removal_seq": 0}
        index = None
        if snapshot_dir is not None:
            try:
                loaded = SignalIndex.load(snapshot_dir, vpdq_rule=rule)
            except (OSError, ValueError, KeyError) as exc:  # a damaged snapshot costs a rebuild, nothing else
                log.warning("ignoring unreadable index snapshot %s: %s", snapshot_dir, exc)
                loaded = None
            if loaded is not None and isinstance(loaded[1], dict):
                index, marker = loaded[0], {k: int(v) for k, v in loaded[1].items()}
                index.pdq_threshold = settings.pdq_threshold
        if index is None:
            index = SignalIndex(pdq_threshold=settings.pdq_threshold, vpdq_rule=rule)
        matcher = cls(index, session_factory, snapshot_dir, marker, settings.index_sync_interval_s)
        replayed = matcher.sync()
        index.warm()
        matcher._changes = replayed
        log.info("index ready: %d signals (%d changes replayed from the store)", len(index), replayed)
        if snapshot_dir is not None:
            if replayed >= SNAPSHOT_AFTER_CHANGES:
                matcher.snapshot()
            matcher._start(matcher._snapshot_loop, "index-snapshots")
        if settings.index_sync_interval_s > 0:
            matcher._start(matcher._sync_loop, "index-sync")
        return matcher

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def __len__(self) -> int:
        return len(self.index)

    # --- writes: commit and index together ---------------------------------------------------------------------
    def apply(
        self,
        session: Session,
        *,
        added: Iterable[IndexedSignal] = (),
        removed: Collection[int] = (),
        removed_banks: Collection[int] = (),
    ) -> None:
        """Commit `session`, then bring the index up to the store, so the writer's next match sees its change.

        The index takes the change from the store, not from `added`/`removed`/`removed_banks` (kept for the
        callers' clarity): between this commit and the read another process may have removed what was just added,
        and only the store knows the order. If the commit fails nothing touches the index; the commit is what
        acknowledges a signal, so a crash after it loses nothing (the restart replays it from the store).
        """
        with self._write:
            session.commit()
            self.sync()

    def sync(self) -> int:
        """Apply what the store committed since the index's position (by any process); returns how many changes."""
        with self._write, self._sessions() as session:
            _consistent_reads(session)
            changes = _replay(self.index, session, self._marker)
            self._changes += changes
            return changes

    @property
    def position(self) -> dict[str, int]:
        """The store position the index reflects: highest signal id and removal sequence applied."""
        with self._write:
            return dict(self._marker)

    # --- reads -------------------------------------------------------------------------------------------------
    def match(
        self, queries: Sequence[Query], bank_ids: Collection[int] | None = None, *, canonical: bool = False
    ) -> list[list[Match]]:
        return self.index.match(queries, bank_ids, canonical=canonical)

    def match_pdq(
        self, values: Sequence[str], bank_ids: Collection[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.index.match_pdq(values, bank_ids)

    # --- snapshots ---------------------------------------------------------------------------------------------
    def snapshot(self) -> bool:
        """Write a snapshot now; False when snapshots are off."""
        if self._snapshot_dir is None:
            return False
        with self._write:
            self.index.save(self._snapshot_dir, dict(self._marker))
            self._changes = 0
            self._last_snapshot = time.monotonic()
        return True

    def _snapshot_loop(self) -> None:
        while not self._stop.wait(timeout=30.0):
            due = time.monotonic() - self._last_snapshot >= SNAPSHOT_EVERY_S
            if self._changes and (due or self._changes >= SNAPSHOT_AFTER_CHANGES):
                try:
                    self.snapshot()
                except Exception:  # a failed snapshot only slows the next start; keep serving
                    log.exception("index snapshot failed")

    def _sync_loop(self) -> None:
        while not self._stop.wait(timeout=self._sync_interval_s):
            try:
                self.sync()
            except Exception:  # the database may be briefly unreachable; matching goes on with what the index has
                log.exception("index sync failed")

    def close(self) -> None:
        """Stop the background threads and write a final snapshot if anything changed."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._changes:
            try:
                self.snapshot()
            except Exception:
                log.exception("final index snapshot failed")
