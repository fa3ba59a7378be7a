"""The vPDQ video rule: how much of the query video matched a bank video, and how much of the bank video matched.

Follows vpdq's brute matcher: frames below the quality floor are dropped, duplicate frame hashes count once, a frame
matches when some frame of the other video is within the distance threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from takeback.signals.validate import VpdqFrame


@dataclass(frozen=True, slots=True)
class VideoRule:
    threshold: int = 31
    quality: int = 50
    query_match_pct: float = 80.0
    compared_match_pct: float = 0.0

    def usable(self, frames: list[VpdqFrame]) -> list[str]:
        """Distinct frame hashes at or above the quality floor, in first-seen order."""
        seen: dict[str, None] = {}
        for frame in frames:
            if frame.quality >= self.quality:
                seen.setdefault(frame.hash, None)
        return list(seen)

    def accepts(self, query_pct: float, compared_pct: float) -> bool:
        return query_pct >= self.query_match_pct and compared_pct >= self.compared_match_pct
