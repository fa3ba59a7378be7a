"""What a fetched body really is, from its first bytes: the declared Content-Type is only a hint.

Hostile or careless sites label HTML as ``image/jpeg``, serve JPEGs as ``text/plain`` and playlists as
``application/octet-stream``.  The crawler decides what to parse or hash from the type returned here, so a body that
claims to be media but does not start like one is reported as unknown (``""``) rather than trusted.
"""

from __future__ import annotations

HEAD_BYTES = 512

HTML = "text/html"
JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
TIFF = "image/tiff"
BMP = "image/bmp"
AVIF = "image/avif"
HEIC = "image/heic"
MP4 = "video/mp4"
QUICKTIME = "video/quicktime"
WEBM = "video/webm"
HLS = "application/vnd.apple.mpegurl"
DASH = "application/dash+xml"
JSON = "application/json"
XML = "application/xml"

IMAGE_TYPES = frozenset({JPEG, PNG, GIF, WEBP, TIFF, BMP, AVIF, HEIC})
VIDEO_TYPES = frozenset({MP4, QUICKTIME, WEBM})
PLAYLIST_TYPES = frozenset({HLS, DASH})

#: Declared types that promise binary media: when the bytes do not confirm them the declaration is a lie.
_MEDIA_PREFIXES = ("image/", "video/", "audio/")
_MEDIA_DECLARED = frozenset({"application/octet-stream", HLS, "application/x-mpegurl", "audio/mpegurl", DASH})
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<title", b"<div", b"<a ")
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def sniff_bytes(head: bytes) -> str:
    """The MIME type the first bytes prove, or "" when they prove nothing (plain text, CSS, unknown binary)."""
    binary = _sniff_binary(head)
    if binary:
        return binary
    return _sniff_text(_text_head(head))


def content_type(head: bytes, declared: str | None) -> str:
    """The type to act on: the sniffed one when the bytes say something, otherwise the declared base type.

    A declared media type (image/*, video/*, playlists, octet-stream) that the bytes do not confirm gives "".
    """
    sniffed = sniff_bytes(head)
    if sniffed:
        return sniffed
    base = (declared or "").split(";", 1)[0].strip().lower()
    if not base or base.startswith(_MEDIA_PREFIXES) or base in _MEDIA_DECLARED:
        return ""
    return base


def _sniff_binary(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return BMP
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return AVIF
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return HEIC
        if brand == b"qt  ":
            return QUICKTIME
        return MP4  # isom, mp41, mp42, M4V, dash, 3gp...
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"pnot"):
        return QUICKTIME
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return WEBM  # Matroska and WebM share EBML; decoders handle both
    return ""


def _text_head(head: bytes) -> bytes:
    """The head as lower-case ASCII-ish bytes with any BOM and leading whitespace removed."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            if encoding != "utf-8":
                head = head[len(bom) :].decode(encoding, "ignore").encode("utf-8", "ignore")
            else:
                head = head[len(bom) :]
            break
    return head.lstrip(b" \t\r\n\x0c").lower()


def _sniff_text(text: bytes) -> str:
    if text.startswith(b"#extm3u"):
        return HLS
    if text.startswith((b"{", b"[")):
        return JSON if _looks_like_json(text) else ""
    if text.startswith(b"<"):
        if b"<mpd" in text:
            return DASH
        if text.startswith(b"<?xml") and not any(m in text for m in (b"<html", b"<!doctype html")):
            return XML
        if any(m in text for m in _HTML_MARKERS) or text.startswith(b"<!--"):
            return HTML
        if text.startswith((b"<urlset", b"<sitemapindex", b"<rss", b"<feed")):
            return XML
    return ""


def _looks_like_json(text: bytes) -> bool:
    """Cheap check on the head only: JSON text after the opening bracket, not e.g. a CSS rule or a JS array."""
    rest = text[1:].lstrip(b" \t\r\n")
    return not rest or rest[:1] in b'"{[]}-0123456789tfn'
