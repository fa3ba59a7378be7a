"""The vPDQ video rule: how much of the query video matched a bank video, and how much of the bank video matched.

Follows vpdq's brute matcher: frames below the quality floor are dropped, duplicate frame hashes count once, a frame
matches when some frame of the other video is within the distance threshold.

Why this rule needs no change for trimmed, re-timed, mirrored or letterboxed copies (docs/robustness.md): it compares
frame *sets*, not sequences, so a trimmed copy or one played faster or slower matches as soon as each of its frames
lands near a banked frame.  That is arranged where the hashes are made (`signals.vpdq`): the bank samples frames
every quarter second (`dense`), a mirrored video is one more bank signal (`dihedral`), and a letterboxed copy is
queried with its frames trimmed as one more query (`borders`); each query or bank signal is judged by this rule on
its own and the best counts.  One consequence: against a dense bank a full-length copy matches at most ~25% of the
bank video's frames, so `compared_match_pct` must stay low (vpdq's and takeback's default is 0).
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
