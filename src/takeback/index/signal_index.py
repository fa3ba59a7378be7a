"""One index over every signal type: PDQ range search, exact digests, and vPDQ videos.

Writers are serialised by a lock; readers never take it. Each part publishes new immutable state by swapping one
reference, so a match running during an update sees the index either before or after it, never half of it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np

from takeback.index import hamming
from takeback.index.pdq_index import PdqIndex
from takeback.index.types import IndexedSignal, Match, Query
from takeback.index.video import VideoRule
from takeback.signals.types import SignalType
from takeback.signals.validate import canonical_value, parse_vpdq

#: vPDQ frames are stored under key (signal_id << FRAME_BITS) | frame_number so each frame is distinct.
FRAME_BITS = 20
_SNAPSHOT_VERSION = 1


class SignalIndex:
    def __init__(
        self,
        *,
        pdq_threshold: int = 31,
        vpdq_rule: VideoRule | None = None,
    ) -> None:
        self.pdq_threshold = pdq_threshold
        self.vpdq_rule = vpdq_rule or VideoRule()
        self._lock = threading.Lock()
        self._pdq = PdqIndex()
        self._frames = PdqIndex()
        #: exact digests: (type, value) -> {signal_id: bank_id}; swapped as a whole dict on change is too costly,
        #: so entries are replaced one key at a time with fresh dicts (readers see old or new, never partial).
        self._exact: dict[tuple[str, str], dict[int, int]] = {}
        self._exact_key: dict[int, tuple[str, str]] = {}
        #: vpdq: signal_id -> (bank_id, usable frame count)
        self._videos: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._pdq) + len(self._exact_key) + len(self._videos)

    # --- writes ------------------------------------------------------------------------------------------------
    def add(self, signals: Iterable[IndexedSignal], *, trusted: bool = False) -> None:
        """Add signals under new signal ids. A bad value raises InvalidSignal before anything is added.

        `trusted` skips re-validating values that already passed `canonical_value` (rows read back from the store),
        which is most of the time spent loading millions of signals.
        """
        pdq_ids: list[int] = []
        pdq_hex: list[str] = []
        pdq_banks: list[int] = []
        frame_keys: list[int] = []
        frame_hex: list[str] = []
        frame_banks: list[int] = []
        exact: list[IndexedSignal] = []
        videos: dict[int, tuple[int, int]] = {}
        for signal in signals:
            if trusted and signal.signal_type != SignalType.VPDQ:
                stype, value = SignalType(signal.signal_type), signal.value
            else:
                stype, value = canonical_value(signal.signal_type, signal.value)
            if stype == SignalType.PDQ:
                pdq_ids.append(signal.signal_id)
                pdq_hex.append(value)
                pdq_banks.append(signal.bank_id)
            elif stype == SignalType.VPDQ:
                usable = self.vpdq_rule.usable(parse_vpdq(value))
                base = signal.signal_id << FRAME_BITS
                frame_keys.extend(base | k for k in range(len(usable)))
                frame_hex.extend(usable)
                frame_banks.extend([signal.bank_id] * len(usable))
                videos[signal.signal_id] = (signal.bank_id, len(usable))
            else:
                exact.append(IndexedSignal(signal.signal_id, signal.bank_id, stype.value, value))
        with self._lock:
            if pdq_ids:
                self._pdq.add(np.array(pdq_ids, dtype=np.int64), hamming.from_hex(pdq_hex), np.array(pdq_banks))
            if videos:
                self._remove_videos([sid for sid in videos if sid in self._videos])
                self._frames.add(
                    np.array(frame_keys, dtype=np.int64), hamming.from_hex(frame_hex), np.array(frame_banks)
                )
                self._videos.update(videos)
            for signal in exact:
                self._remove_exact([signal.signal_id])
                key = (signal.signal_type, signal.value)
                holders = dict(self._exact.get(key, {}))
                holders[signal.signal_id] = signal.bank_id
                self._exact[key] = holders
                self._exact_key[signal.signal_id] = key

    def remove(self, signal_ids: Iterable[int]) -> None:
        ids = list(signal_ids)
        if not ids:
            return
        with self._lock:
            self._pdq.remove(np.array(ids, dtype=np.int64))
            self._remove_videos([sid for sid in ids if sid in self._videos])
            self._remove_exact(ids)

    def remove_bank(self, bank_id: int) -> None:
        with self._lock:
            self._pdq.remove_bank(bank_id)
            self._frames.remove_bank(bank_id)
            for sid in [sid for sid, (bank, _) in self._videos.items() if bank == bank_id]:
                del self._videos[sid]
            gone = [sid for sid, key in self._exact_key.items() if self._exact[key].get(sid) == bank_id]
            self._remove_exact(gone)

    def _remove_videos(self, signal_ids: list[int]) -> None:
        keys: list[int] = []
        for sid in signal_ids:
            _, count = self._videos.pop(sid)
            keys.extend((sid << FRAME_BITS) | k for k in range(count))
        if keys:
            self._frames.remove(np.array(keys, dtype=np.int64))

    def _remove_exact(self, signal_ids: Iterable[int]) -> None:
        for sid in signal_ids:
            key = self._exact_key.pop(sid, None)
            if key is None:
                continue
            holders = {k: v for k, v in self._exact[key].items() if k != sid}
            if holders:
                self._exact[key] = holders
            else:
                del self._exact[key]

    # --- reads -------------------------------------------------------------------------------------------------
    def warm(self) -> None:
        """Prepare the compiled search before traffic arrives (see PdqIndex.warm)."""
        self._pdq.warm(self.pdq_threshold)
        self._frames.warm(self.vpdq_rule.threshold)

    def match(
        self, queries: Sequence[Query], bank_ids: Collection[int] | None = None, *, canonical: bool = False
    ) -> list[list[Match]]:
        """For each query, its matches (best first). A bad value raises InvalidSignal; `canonical` says the values
        already passed `canonical_value` (the API checks them to name the bad query), so they are not re-checked."""
        results: list[list[Match]] = [[] for _ in queries]
        allowed = None if bank_ids is None else np.fromiter(bank_ids, dtype=np.int64)
        by_threshold: dict[int, list[int]] = {}
        for i, query in enumerate(queries):
            if canonical:
                stype, value = SignalType(query.signal_type), query.value
            else:
                stype, value = canonical_value(query.signal_type, query.value)
            if stype == SignalType.PDQ:
                threshold = self.pdq_threshold if query.threshold is None else query.threshold
                by_threshold.setdefault(threshold, []).append(i)
            elif stype == SignalType.VPDQ:
                results[i] = self._match_video(value, query.threshold, allowed)
            else:
                holders = self._exact.get((stype.value, value), {})
                results[i] = [
                    Match(sid, bank, 0)
                    for sid, bank in sorted(holders.items())
                    if allowed is None or bank in bank_ids  # type: ignore[operator]
                ]
        for threshold, rows in by_threshold.items():
            values = [queries[i].value for i in rows]
            words = hamming.from_hex(values if canonical else [canonical_value(SignalType.PDQ, v)[1] for v in values])
            qi, ids, banks, dist = self._pdq.search(words, threshold, allowed)
            order = np.lexsort((ids, dist, qi))
            for q, sid, bank, d in zip(qi[order], ids[order], banks[order], dist[order], strict=True):
                results[rows[q]].append(Match(int(sid), int(bank), int(d)))
        return results

    def match_pdq(
        self, values: Sequence[str], bank_ids: Collection[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query row, signal id, bank id, distance) of every stored PDQ hash within the default threshold of one
        of `values` (canonical hex), ordered by query row, then distance, then signal id.

        The batch lane of `match`: the same answers as arrays, without a Query or Match object per row, which is
        most of a 1,000-hash batch's time outside the search."""
        allowed = None if bank_ids is None else np.fromiter(bank_ids, dtype=np.int64)
        return self._pdq.search(hamming.from_hex(values), self.pdq_threshold, allowed)

    def _match_video(self, value: str, threshold: int | None, allowed: np.ndarray | None) -> list[Match]:
        rule = self.vpdq_rule
        usable = rule.usable(parse_vpdq(value))
        if not usable:
            return []
        qi, keys, banks, dist = self._frames.search(
            hamming.from_hex(usable), rule.threshold if threshold is None else threshold, allowed
        )
        owners = keys >> FRAME_BITS
        matches: list[Match] = []
        videos = self._videos
        for sid in np.unique(owners):
            mine = owners == sid
            info = videos.get(int(sid))
            if info is None:
                continue
            query_pct = 100.0 * len(np.unique(qi[mine])) / len(usable)
            compared_pct = 100.0 * len(np.unique(keys[mine])) / max(1, info[1])
            if rule.accepts(query_pct, compared_pct):
                nearest = int(dist[mine].min())
                matches.append(
                    Match(int(sid), int(banks[mine][0]), nearest, round(query_pct, 2), round(compared_pct, 2))
                )
        matches.sort(key=lambda m: (-(m.query_match_pct or 0), m.distance, m.signal_id))
        return matches

    # --- snapshot ----------------------------------------------------------------------------------------------
    def save(self, directory: Path, sequence: int | dict[str, int]) -> None:
        """Write a snapshot that `load` restores; `sequence` says which store changes it already contains
        (opaque here: an int or a small dict of ints, returned by `load` as given)."""
        # Unique scratch names: several server processes may snapshot into the same directory at once.
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent))
        with self._lock:
            self._pdq.save(tmp / "pdq")
            self._frames.save(tmp / "frames")
            meta = {
                "version": _SNAPSHOT_VERSION,
                "sequence": sequence,
                "pdq_threshold": self.pdq_threshold,
                "videos": [[sid, bank, n] for sid, (bank, n) in self._videos.items()],
                "exact": [[sid, key[0], key[1], self._exact[key][sid]] for sid, key in self._exact_key.items()],
            }
        (tmp / "meta.json").write_text(json.dumps(meta))
        old = directory.with_name(f"{directory.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it first
            directory.rename(old)
        try:
            tmp.rename(directory)
        except OSError:  # another process put its snapshot there in between: that one is as good
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(
        cls, directory: Path, *, vpdq_rule: VideoRule | None = None
    ) -> tuple[SignalIndex, int | dict[str, int]] | None:
        """(index, sequence) from a snapshot, or None when there is no usable one."""
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != _SNAPSHOT_VERSION:
            return None
        index = cls(pdq_threshold=meta["pdq_threshold"], vpdq_rule=vpdq_rule)
        index._pdq = PdqIndex.load(directory / "pdq")
        index._frames = PdqIndex.load(directory / "frames")
        index._videos = {sid: (bank, n) for sid, bank, n in meta["videos"]}
        for sid, stype, value, bank in meta["exact"]:
            key = (stype, value)
            index._exact.setdefault(key, {})[sid] = bank
            index._exact_key[sid] = key
        return index, meta["sequence"]
