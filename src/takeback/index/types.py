"""Plain data that goes in and out of the index."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndexedSignal:
    """A bank signal as the index keeps it. `value` is canonical (see `takeback.signals.validate`)."""

    signal_id: int
    bank_id: int
    signal_type: str
    value: str


@dataclass(frozen=True, slots=True)
class Query:
    signal_type: str
    value: str
    #: Hamming threshold for pdq/vpdq frames; None uses the index default. Ignored for exact types.
    threshold: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    signal_id: int
    bank_id: int
    #: Hamming distance (pdq), 0 for exact types; for vpdq the smallest frame distance seen.
    distance: int
    #: vpdq only: share of the query's frames that matched this video, and of this video's frames that matched.
    query_match_pct: float | None = None
    compared_match_pct: float | None = None
