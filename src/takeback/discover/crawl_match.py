"""Matching fetched media against a case's banks: the crawl's view of ``takeback.index.SignalIndex``.

An image is looked up by its PDQ hash (within ``pdq_threshold``) and by its MD5/SHA-256 (exact copies).  A video
clip or stream segment is looked up frame by frame (a preview frame can be a banked photo) and as a vPDQ query
against banked videos.  Frames of too low PDQ quality (flat, nearly blank pictures, whose hashes collide with
anything) are not used for PDQ lookups, as in the reference matchers.  The media's query variants (the picture
inside a letterbox, the smoothed picture, the crop grid: ``MediaHashes.variants``) are looked up too; a match found
best through one says which (``"via"`` in the evidence).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from takeback.discover.media_hash import MediaHashes
from takeback.index import IndexedSignal, Query, SignalIndex
from takeback.index.video import VideoRule
from takeback.signals.validate import VpdqFrame, format_vpdq

#: PDQ hashes below this quality are not matched (ThreatExchange's recommended floor).
MIN_PDQ_QUALITY = 50
_HEX = re.compile(r"[0-9a-f]+")
_HEX_LENGTH = {"pdq": 64, "md5": 32, "sha256": 64, "video_md5": 32, "video_sha256": 64}


@dataclass(frozen=True, slots=True)
class MediaMatch:
    signal_id: int
    bank_id: int
    bank: str
    signal_type: str
    distance: int
    #: The matched frame's time in a clip (seconds), None for images and exact digests.
    frame_s: float | None = None
    #: The query variant that found it (e.g. "border", "grid_t02b00l10r00"), None for the media's own hashes.
    via: str | None = None

    def as_evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal_id": self.signal_id,
            "bank_id": self.bank_id,
            "bank": self.bank,
            "signal_type": self.signal_type,
            "distance": self.distance,
        }
        if self.frame_s is not None:
            out["frame_s"] = self.frame_s
        if self.via is not None:
            out["via"] = self.via
        return out


class MediaMatcher:
    """The banks of one case, indexed; ``match`` is thread-safe (index reads take no lock)."""

    def __init__(
        self,
        signals: Iterable[IndexedSignal],
        bank_names: Mapping[int, str],
        *,
        pdq_threshold: int = 31,
        vpdq_rule: VideoRule | None = None,
        min_quality: int = MIN_PDQ_QUALITY,
    ) -> None:
        self.index = SignalIndex(pdq_threshold=pdq_threshold, vpdq_rule=vpdq_rule)
        self.index.add(signals, trusted=True)
        self.bank_names = dict(bank_names)
        self.min_quality = min_quality
        self._types: dict[int, str] = {}

    @classmethod
    def from_index(cls, index: SignalIndex, bank_names: Mapping[int, str]) -> MediaMatcher:
        matcher = cls((), bank_names)
        matcher.index = index
        return matcher

    def __len__(self) -> int:
        return len(self.index)

    def match(self, hashes: MediaHashes) -> list[MediaMatch]:
        """Matches, best (smallest distance) first, one per bank signal."""
        return self.match_many([hashes])[0]

    def match_many(self, many: Sequence[MediaHashes]) -> list[list[MediaMatch]]:
        """``match`` for several media in one index lookup (a lookup's fixed cost dwarfs a small bank's search)."""
        if not len(self.index) or not many:
            return [[] for _ in many]
        queries: list[tuple[Query, str, float | None, str | None]] = []
        owners: list[int] = []
        for n, hashes in enumerate(many):
            mine = self._queries(hashes)
            queries += mine
            owners += [n] * len(mine)
        # Hashes computed by media_hash are already in canonical form (lower-case hex, vPDQ from format_vpdq); the
        # index then skips re-validating each value, which is most of the cost of a lookup in a small bank.
        canonical = all(
            len(q.value) == _HEX_LENGTH[kind] and _HEX.fullmatch(q.value) for q, kind, _, _ in queries if kind != "vpdq"
        )
        results = self.index.match([q for q, _, _, _ in queries], canonical=canonical)
        best: list[dict[int, MediaMatch]] = [{} for _ in many]
        for owner, (_, signal_type, frame_s, via), matches in zip(owners, queries, results, strict=True):
            mine_best = best[owner]
            for m in matches:
                current = mine_best.get(m.signal_id)
                if current is None or m.distance < current.distance:
                    name = self.bank_names.get(m.bank_id, "")
                    mine_best[m.signal_id] = MediaMatch(
                        m.signal_id, m.bank_id, name, signal_type, m.distance, frame_s, via
                    )
        return [sorted(b.values(), key=lambda m: (m.distance, m.signal_id)) for b in best]

    def _queries(self, hashes: MediaHashes) -> list[tuple[Query, str, float | None, str | None]]:
        queries: list[tuple[Query, str, float | None, str | None]] = [
            (Query("md5", hashes.md5), "md5", None, None),
            (Query("sha256", hashes.sha256), "sha256", None, None),
        ]
        if hashes.kind == "video":
            queries.append((Query("video_md5", hashes.md5), "video_md5", None, None))
            queries.append((Query("video_sha256", hashes.sha256), "video_sha256", None, None))
        for via, frame_list in ((None, hashes.frames), *hashes.variants):
            usable = [f for f in frame_list if f.quality >= self.min_quality]
            for frame in usable:
                when = frame.timestamp if hashes.kind == "video" else None
                queries.append((Query("pdq", frame.pdq), "pdq", when, via))
            if hashes.kind == "video" and usable:
                frames = [VpdqFrame(f.pdq, f.quality, f.timestamp) for f in usable]
                queries.append((Query("vpdq", format_vpdq(frames)), "vpdq", None, via))
        return queries


class MatchBatcher:
    """Collects the matches asked for in one turn of the event loop and answers them with one ``match_many``:
    hashes come back from the worker pool a batch at a time, and their tasks all ask within the same turn."""

    def __init__(self, matcher: MediaMatcher) -> None:
        self.matcher = matcher
        self._waiting: list[tuple[MediaHashes, asyncio.Future[list[MediaMatch]]]] = []

    async def match(self, hashes: MediaHashes) -> list[MediaMatch]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[MediaMatch]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append((hashes, future))
        return await future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        live = [(h, f) for h, f in waiting if not f.done()]
        try:
            results = self.matcher.match_many([h for h, _ in live])
        except Exception as exc:  # one bad value must not strand the others: each gets the error
            for _, future in live:
                future.set_exception(exc)
            return
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)
