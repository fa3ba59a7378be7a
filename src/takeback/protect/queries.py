"""The extra query signals of a file hashed to be matched, and folding their matches back onto the file.

When takeback itself checks a found copy (`takeback match`, `takeback sweep`), the copy is hashed with query modes
(`HashOptions.query_modes`): besides its plain PDQ, the picture inside its letterbox, the smoothed picture and the
query half of the crop grid (`signals.variants.query_variants`); for a video, its frames inside their letterbox as
a second frame list.  Each is sent as one more query.  A person asked "does this file match?", not "which of its
1,100 crops matched", so the answers are folded back: one row per file and signal type, each bank signal once, at
its best distance, with `via` naming the variant that found it (absent when the file's own hash did).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from takeback.protect.results import FileResult

Matches = list[dict[str, Any]]


class QuerySignal(Protocol):
    @property
    def source(self) -> str: ...

    @property
    def signal_type(self) -> str: ...

    @property
    def variant(self) -> str | None: ...


Q = TypeVar("Q", bound=QuerySignal)


def vpdq_value(rows: Sequence[Sequence[Any]]) -> str:
    """A frame list [(frame_number, timestamp, quality, hex), ...] as the vPDQ JSON the API takes."""
    frames = [{"hash": r[3], "quality": int(r[2]), "timestamp": round(float(r[1]), 3)} for r in rows]
    return json.dumps(frames, separators=(",", ":"))


def query_signals(result: FileResult) -> list[tuple[str, str, int | None, str]]:
    """(signal type, value, quality, variant name) of each extra query signal of a hashed file."""
    if not result.ok:
        return []
    out: list[tuple[str, str, int | None, str]] = [("pdq", h, q, name) for name, h, q in result.query_variants]
    out += [("vpdq", vpdq_value(rows), None, name) for name, rows in result.query_video_variants if rows]
    return out


def bank_variant_signals(result: FileResult) -> list[tuple[str, str, int | None, str]]:
    """(signal type, value, quality, variant name) of each extra *bank* signal of a hashed file (its mirrored,
    trimmed, cropped… hashes), as a hash-list import banks them: what `takeback bank add` sends for media."""
    if not result.ok:
        return []
    out: list[tuple[str, str, int | None, str]] = [("pdq", h, q, name) for name, h, q in result.variants]
    out += [("vpdq", vpdq_value(rows), None, name) for name, rows in result.video_variants if rows]
    return out


def fold(queries: Sequence[Q], found: Sequence[Matches]) -> tuple[list[Q], list[Matches]]:
    """Drop the variant queries, merging their matches into the first plain query of the same source and type.

    Each bank signal appears once per row, with its smallest distance (for vPDQ: the highest share of query frames
    matched); a match found only through a variant carries ``"via": <variant name>``.
    """
    rows: list[Q] = []
    merged: list[dict[int | str, dict[str, Any]]] = []
    home: dict[tuple[str, str], int] = {}
    pending: list[tuple[Q, Matches]] = []
    for query, matches in zip(queries, found, strict=True):
        if query.variant is None:
            home.setdefault((query.source, query.signal_type), len(rows))
            rows.append(query)
            merged.append({_key(m): dict(m) for m in matches})
        else:
            pending.append((query, matches))
    for query, matches in pending:
        slot = home.get((query.source, query.signal_type))
        if slot is None:  # no plain query of that type (cannot happen for hashed files): keep the variant as a row
            home[(query.source, query.signal_type)] = slot = len(rows)
            rows.append(query)
            merged.append({})
        best = merged[slot]
        for match in matches:
            key = _key(match)
            if key not in best or _better(match, best[key]):
                best[key] = {**match, "via": query.variant}
    out = [sorted(m.values(), key=_rank) for m in merged]
    return rows, out


def _key(match: dict[str, Any]) -> int | str:
    sid = match.get("signal_id")
    return sid if isinstance(sid, int) else json.dumps(match, sort_keys=True)


def _rank(match: dict[str, Any]) -> tuple[float, int]:
    return (-(match.get("query_match_pct") or 0.0), int(match.get("distance") or 0))


def _better(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _rank(a) < _rank(b)
