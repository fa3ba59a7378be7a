"""Signal type names, spelled as ThreatExchange and HMA spell them so that hash
lists move between systems unchanged."""

from __future__ import annotations

from enum import StrEnum


class SignalType(StrEnum):
    PDQ = "pdq"
    VPDQ = "vpdq"
    MD5 = "md5"
    SHA256 = "sha256"
    VIDEO_MD5 = "video_md5"
    VIDEO_SHA256 = "video_sha256"

    @property
    def hex_length(self) -> int | None:
        """Length of a valid value in hex digits (None: not a single hex value)."""
        return _HEX_LENGTHS.get(self)


#: Built once: `hex_length` sits on the path of every signal the API checks.
_HEX_LENGTHS = {
    SignalType.PDQ: 64,
    SignalType.MD5: 32,
    SignalType.VIDEO_MD5: 32,
    SignalType.SHA256: 64,
    SignalType.VIDEO_SHA256: 64,
}
