"""The server's index, kept equal to the store.

The database is the source of truth: a signal is acknowledged once committed, and a restart rebuilds the index
from the store. Rebuilding 10 million hashes from rows takes a while, so the index is also snapshotted to disk with
a marker of the store changes it contains (highest signal id, highest removal sequence); a restart loads the
snapshot and replays only what came after.

Every write in this process goes through `apply`, which commits the session and updates the index under one lock,
so a snapshot (taken under the same lock) never claims a change the index lacks. That needs the signals table's
ids never to be reused (SQLite AUTOINCREMENT, PostgreSQL identity), which the store guarantees.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

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


def _store_marker(session: Session) -> dict[str, int]:
    return {"signal_id": signal_repo.max_signal_id(session), "removal_seq": signal_repo.last_removal_seq(session)}


def _replay(index: SignalIndex, session: Session, marker: dict[str, int]) -> int:
    """Apply the store's changes after `marker` to `index`; returns how many changes there were.

    Removals first: they can only concern signals the snapshot holds, since the signals table keeps only live
    rows. Adding the later rows afterwards means a removal can never hit a signal that arrived after it (not even
    when a deleted bank's id is reused).
    """
    removals, _ = signal_repo.removals_since(session, marker["removal_seq"])
    index.remove([signal_id for signal_id, _bank in removals if signal_id is not None])
    for signal_id, bank_id in removals:
        if signal_id is None:
            index.remove_bank(bank_id)
    changes = len(removals)
    for rows in signal_repo.iter_signal_rows(session, after_id=marker["signal_id"], chunk=_LOAD_CHUNK):
        index.add((IndexedSignal(*row) for row in rows), trusted=True)
        changes += len(rows)
    return changes


class Matcher:
    """The index plus the bookkeeping that keeps it equal to the store; shared by all request handlers."""

    def __init__(
        self,
        index: SignalIndex,
        session_factory: Callable[[], Session],
        snapshot_dir: Path | None,
    ) -> None:
        self.index = index
        self._sessions = session_factory
        self._snapshot_dir = snapshot_dir
        self._write = threading.RLock()
        self._changes = 0
        self._last_snapshot = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        matcher = cls(index, session_factory, snapshot_dir)
        with session_factory() as session:
            replayed = _replay(index, session, marker)
        log.info("index ready: %d signals (%d changes replayed from the store)", len(index), replayed)
        if snapshot_dir is not None:
            if replayed >= SNAPSHOT_AFTER_CHANGES:
                matcher.snapshot()
            matcher._thread = threading.Thread(target=matcher._snapshot_loop, name="index-snapshots", daemon=True)
            matcher._thread.start()
        return matcher

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
        """Commit `session`, then make the same change to the index, as one step for snapshots.

        `added` must carry the ids the flush assigned. If the commit fails nothing touches the index; the commit is
        what acknowledges a signal, so a crash after it loses nothing (the restart replays it from the store).
        """
        added = list(added)
        with self._write:
            session.commit()
            self.index.add(added, trusted=True)
            self.index.remove(removed)
            for bank_id in removed_banks:
                self.index.remove_bank(bank_id)
            self._changes += len(added) + len(removed) + len(removed_banks)

    # --- reads -------------------------------------------------------------------------------------------------
    def match(
        self, queries: Sequence[Query], bank_ids: Collection[int] | None = None, *, canonical: bool = False
    ) -> list[list[Match]]:
        return self.index.match(queries, bank_ids, canonical=canonical)

    # --- snapshots ---------------------------------------------------------------------------------------------
    def snapshot(self) -> bool:
        """Write a snapshot now; False when snapshots are off."""
        if self._snapshot_dir is None:
            return False
        with self._write:
            with self._sessions() as session:
                marker = _store_marker(session)
            self.index.save(self._snapshot_dir, marker)
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

    def close(self) -> None:
        """Stop the snapshot thread and write a final snapshot if anything changed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._changes:
            try:
                self.snapshot()
            except Exception:
                log.exception("final index snapshot failed")
