"""The byte format between the crawl and its hashing worker processes (``hash_pool`` ↔ ``hash_worker``).

A request is a batch of media bodies: ``u32 count`` then, per body, ``u32 length`` and the bytes.  An answer is
``u32 length`` and a JSON list with one object per body, in order.  JSON rather than pickle on the way back: a
worker decodes bytes chosen by strangers, and if a decoder bug ever handed such bytes control of a worker, the
parent must still only ever *parse data* from it, never run it; every field is type-checked when it is read back.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from takeback.discover.media_hash import FrameHash, HashFailure, MediaHashes

_U32 = struct.Struct("<I")
_HEX = re.compile(r"[0-9a-f]*")
#: Largest answer a worker may send for one batch (hashes are small; this only bounds a broken worker).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Most query variants one medium may carry (``MediaHashes.variants``: letterbox, smoothing, crop grid...).
MAX_VARIANTS = 10_000


class WireError(ValueError):
    """An answer that does not have the agreed shape (a broken or hostile worker)."""


def pack_u32(value: int) -> bytes:
    return _U32.pack(value)


def unpack_u32(data: bytes) -> int:
    return int(_U32.unpack(data)[0])


def encode_batch(bodies: Sequence[bytes]) -> bytes:
    parts = [_U32.pack(len(bodies))]
    for body in bodies:
        parts.append(_U32.pack(len(body)))
        parts.append(body)
    return b"".join(parts)


def encode_answer(results: Iterable[MediaHashes | HashFailure]) -> bytes:
    payload = json.dumps([_as_json(r) for r in results], separators=(",", ":")).encode()
    return _U32.pack(len(payload)) + payload


def _as_json(result: MediaHashes | HashFailure) -> dict[str, Any]:
    if isinstance(result, HashFailure):
        return {"ok": 0, "code": result.code, "reason": result.reason, "size": result.size, "md5": result.md5,
                "sha256": result.sha256}  # fmt: skip
    return {
        "ok": 1,
        "kind": result.kind,
        "size": result.size,
        "md5": result.md5,
        "sha256": result.sha256,
        "frames": _frames_json(result.frames),
        "width": result.width,
        "height": result.height,
        "format": result.format,
        "variants": [[name, _frames_json(frames)] for name, frames in getattr(result, "variants", ())],
    }


def _frames_json(frames: Iterable[FrameHash]) -> list[list[Any]]:
    return [[f.pdq, f.quality, f.timestamp] for f in frames]


def decode_answer(payload: bytes, expected: int) -> list[MediaHashes | HashFailure]:
    """The results of one batch of ``expected`` bodies; raises ``WireError`` on anything malformed."""
    try:
        items = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"answer is not JSON: {exc}") from None
    if not isinstance(items, list) or len(items) != expected:
        raise WireError(f"expected a list of {expected} results")
    return [_from_json(item) for item in items]


def _str(item: dict[str, Any], key: str, limit: int = 1000) -> str:
    value = item.get(key)
    if not isinstance(value, str) or len(value) > limit:
        raise WireError(f"field {key!r} is not a short string")
    return value


def _hex(item: dict[str, Any], key: str, length: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value):
        raise WireError(f"field {key!r} is not {length} lower-case hex digits")
    return value


def _int(item: dict[str, Any], key: str) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError(f"field {key!r} is not a non-negative integer")
    return value


def _from_json(item: Any) -> MediaHashes | HashFailure:
    if not isinstance(item, dict):
        raise WireError("a result is not an object")
    if item.get("ok") == 0:
        return HashFailure(_str(item, "code"), _str(item, "reason"), _int(item, "size"), _hex(item, "md5", 32),
                           _hex(item, "sha256", 64))  # fmt: skip
    if item.get("ok") != 1:
        raise WireError("a result is neither a hash nor a failure")
    frames = _frames(item.get("frames"))
    variants_in = item.get("variants", [])
    if not isinstance(variants_in, list) or len(variants_in) > MAX_VARIANTS:
        raise WireError("variants is not a short list")
    variants = []
    for entry in variants_in:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and len(entry[0]) <= 100):
            raise WireError("a variant is not [name, frames]")
        variants.append((entry[0], _frames(entry[1])))
    kind = _str(item, "kind")
    if kind not in ("image", "video"):
        raise WireError(f"unknown media kind {kind!r}")
    extra: dict[str, Any] = {"variants": tuple(variants)} if variants else {}
    return MediaHashes(
        kind=kind,
        size=_int(item, "size"),
        md5=_hex(item, "md5", 32),
        sha256=_hex(item, "sha256", 64),
        frames=tuple(frames),
        width=_int(item, "width"),
        height=_int(item, "height"),
        format=_str(item, "format"),
        **extra,
    )


def _frames(frames_in: Any) -> tuple[FrameHash, ...]:
    if not isinstance(frames_in, list) or len(frames_in) > 1000:
        raise WireError("frames is not a list")
    frames = []
    for frame in frames_in:
        if not (isinstance(frame, list) and len(frame) == 3):
            raise WireError("a frame is not [pdq, quality, t]")
        pdq, quality, when = frame
        if not (isinstance(pdq, str) and len(pdq) == 64 and _HEX.fullmatch(pdq)):
            raise WireError("a frame's PDQ is not 64 lower-case hex digits")
        if not (isinstance(quality, int) and isinstance(when, int | float)):
            raise WireError("a frame has the wrong types")
        frames.append(FrameHash(pdq, quality, float(when)))
    return tuple(frames)
