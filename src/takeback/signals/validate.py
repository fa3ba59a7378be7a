"""Check and canonicalise signal values arriving from outside (API bodies, imported lists).

One place decides what a valid value is, so the API, the importers and the index agree, and a bad value is named
precisely (which rule it broke) instead of surfacing later as a crash deep in the index.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from takeback.signals.types import SignalType

_HEX = frozenset(string.hexdigits)
#: Values already in canonical form (the common case: every takeback client sends them so) pass one regex match
#: instead of strip, lower and a character check; anything else takes the full path, which names what is wrong.
_CANONICAL_HEX = {
    length: re.compile(f"[0-9a-f]{{{length}}}") for length in {t.hex_length for t in SignalType} if length
}
_CANONICAL_ANY_HEX = re.compile("[0-9a-f]*")
#: Exact type names, so the hot path skips strip/lower/enum lookup; other spellings take `signal_type`.
_TYPES = {t.value: t for t in SignalType}
#: A video's frame list is bounded so one signal cannot exhaust the server (10 h at 1 frame/s).
MAX_VPDQ_FRAMES = 36_000


class InvalidSignal(ValueError):
    """A signal value that cannot be used; `code` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    hash: str
    quality: int
    timestamp: float


def signal_type(name: str) -> SignalType:
    try:
        return SignalType(name.strip().lower())
    except (ValueError, AttributeError):
        known = ", ".join(t.value for t in SignalType)
        raise InvalidSignal("unknown_signal_type", f"unknown signal type {name!r}; known: {known}") from None


def canonical_hex(value: str, length: int, what: str = "value") -> str:
    fast = _CANONICAL_HEX.get(length)
    if fast is not None and isinstance(value, str) and fast.fullmatch(value):
        return value
    if not isinstance(value, str):
        raise InvalidSignal("invalid_hex", f"{what} must be a hex string")
    text = value.strip().lower()
    if len(text) != length:
        raise InvalidSignal("wrong_length", f"{what} must be {length} hex digits, got {len(text)}")
    if not _HEX.issuperset(text):
        raise InvalidSignal("invalid_hex", f"{what} contains characters that are not hex digits")
    return text


def all_canonical(stype: SignalType, values: Sequence[str]) -> bool:
    """True when every value is already canonical hex of the type's length (one regex over the joined values):
    the batch API then skips checking them one by one. False says nothing about which is wrong, or whether any is:
    the per-value check decides and names the culprit."""
    length = stype.hex_length
    if not length or not all(isinstance(v, str) and len(v) == length for v in values):
        return False
    return _CANONICAL_ANY_HEX.fullmatch("".join(values)) is not None


def parse_vpdq(value: str) -> list[VpdqFrame]:
    """Frames from the HMA-style JSON list `[{"hash": hex, "quality": int, "timestamp": float}, …]`.

    The compact ThreatExchange text form (one `hex,quality,timestamp` per line or separated by spaces) is also read.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidSignal("invalid_vpdq", "a vpdq value must be a non-empty list of frames")
    text = value.strip()
    frames: list[VpdqFrame] = []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise InvalidSignal("invalid_vpdq", f"vpdq value is not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise InvalidSignal("invalid_vpdq", "vpdq value must be a JSON list of frames")
        raw = items
    else:
        raw = []
        for part in text.split():
            fields = part.split(",")
            if len(fields) != 3:
                raise InvalidSignal("invalid_vpdq", "compact vpdq frames are 'hex,quality,timestamp'")
            raw.append({"hash": fields[0], "quality": fields[1], "timestamp": fields[2]})
    if not raw:
        raise InvalidSignal("invalid_vpdq", "a vpdq value must have at least one frame")
    if len(raw) > MAX_VPDQ_FRAMES:
        raise InvalidSignal("too_many_frames", f"a vpdq value may have at most {MAX_VPDQ_FRAMES} frames")
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidSignal("invalid_vpdq", f"frame {i} must be an object with hash, quality, timestamp")
        hex_value = canonical_hex(item.get("hash", ""), 64, f"frame {i} hash")
        try:
            quality = int(item.get("quality", 100))
            timestamp = float(item.get("timestamp", i))
        except (TypeError, ValueError):
            raise InvalidSignal("invalid_vpdq", f"frame {i} quality/timestamp must be numbers") from None
        if not 0 <= quality <= 100 or not math.isfinite(timestamp):
            raise InvalidSignal("invalid_vpdq", f"frame {i} quality must be 0-100 and timestamp finite")
        frames.append(VpdqFrame(hex_value, quality, timestamp))
    return frames


def format_vpdq(frames: list[VpdqFrame]) -> str:
    return json.dumps(
        [{"hash": f.hash, "quality": f.quality, "timestamp": round(f.timestamp, 3)} for f in frames],
        separators=(",", ":"),
    )


def canonical_value(kind: str | SignalType, value: str) -> tuple[SignalType, str]:
    """(type, canonical value) or InvalidSignal: lower-case hex; vPDQ as compact JSON."""
    stype = kind if isinstance(kind, SignalType) else _TYPES.get(kind) or signal_type(kind)
    length = stype.hex_length
    if length is not None:
        return stype, canonical_hex(value, length)
    return stype, format_vpdq(parse_vpdq(value))
