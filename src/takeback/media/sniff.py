"""Tell images from videos by their first bytes, not by their file names.

Extensions lie (a JPEG saved as `.png`, a video renamed `.jpg`); magic numbers
rarely do.  Extensions are only used to decide whether an unrecognised file was
*meant* to be media (then it is reported as a failure) or is simply something
else in the folder (then it is skipped quietly).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

HEAD_BYTES = 64


class Kind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    UNKNOWN = "unknown"


IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".apng",
        ".webp",
        ".gif",
        ".tif",
        ".tiff",
        ".bmp",
        ".dib",
        ".heic",
        ".heif",
        ".hif",
        ".avif",
    ]
)
VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".qt",
        ".webm",
        ".mkv",
        ".avi",
        ".wmv",
        ".asf",
        ".flv",
        ".mpg",
        ".mpeg",
        ".m2ts",
        ".mts",
        ".ts",
        ".3gp",
        ".3g2",
        ".ogv",
    ]
)

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})
_IMAGE_ONLY_HEIF = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"avif"})


def kind_of_bytes(head: bytes) -> Kind:
    """Classify content from its first bytes (at least 12 are needed)."""
    if head.startswith(b"\xff\xd8\xff"):
        return Kind.IMAGE  # JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind.IMAGE
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Kind.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Kind.IMAGE
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Kind.IMAGE  # TIFF
    if head[:2] == b"BM" and len(head) >= 14:
        return Kind.IMAGE
    if head[4:8] == b"ftyp":
        major = head[8:12]
        if major in _IMAGE_ONLY_HEIF:
            return Kind.IMAGE
        if major in _HEIF_BRANDS:
            # hevc/msf1/avis are image *sequences*; Live Photos store a still.
            return Kind.IMAGE
        return Kind.VIDEO  # isom, mp41, mp42, qt, M4V, 3gp…, dash
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return Kind.VIDEO  # old QuickTime without ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Kind.VIDEO  # Matroska / WebM
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return Kind.VIDEO
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return Kind.VIDEO  # ASF / WMV
    if head.startswith(b"FLV\x01"):
        return Kind.VIDEO
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return Kind.VIDEO  # MPEG program stream / elementary video
    if head.startswith(b"OggS"):
        return Kind.VIDEO  # may be audio-only; the decoder will say so
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return Kind.VIDEO  # MPEG transport stream
    return Kind.UNKNOWN


def kind_of_file(path: Path) -> Kind:
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES * 4)
    return kind_of_bytes(head)


def expected_kind(path: Path) -> Kind:
    """What the file name claims to be."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return Kind.IMAGE
    if suffix in VIDEO_EXTENSIONS:
        return Kind.VIDEO
    return Kind.UNKNOWN
