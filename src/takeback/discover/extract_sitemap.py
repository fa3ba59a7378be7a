"""Sitemaps: the page (and image/video) URLs a site lists about itself, and the ``Sitemap:`` lines of robots.txt.

Parsed without entity expansion or DTDs (defusedxml); gzip is inflated with a hard cap on the output, so a
compressed bomb stops at ``MAX_SITEMAP_BYTES``; anything malformed gives an empty result.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from takeback.discover.extract import IMAGE, VIDEO, MediaRef, media_kind, resolve

#: The sitemap protocol's own limit is 50 MB uncompressed; a crawl budget is far smaller.
MAX_SITEMAP_BYTES = 10 * 1024 * 1024
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Sitemap:
    #: Pages (``<urlset><url><loc>``).
    pages: tuple[str, ...] = ()
    #: Further sitemaps (``<sitemapindex><sitemap><loc>``).
    sitemaps: tuple[str, ...] = ()
    #: Image and video sitemap extensions: thumbnails and content.
    media: tuple[MediaRef, ...] = ()


def gunzip_capped(data: bytes, limit: int = MAX_SITEMAP_BYTES) -> bytes:
    """Inflate gzip data to at most ``limit`` bytes (what fits is kept; a bomb is cut, not expanded)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(data, limit)
    except zlib.error:
        return b""


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse_sitemap(body: bytes, url: str) -> Sitemap:
    if body[:2] == b"\x1f\x8b":
        body = gunzip_capped(body)
    body = body[:MAX_SITEMAP_BYTES]
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return Sitemap()
    kind = _local(root.tag)
    pages: dict[str, None] = {}
    maps: dict[str, None] = {}
    media: dict[str, MediaRef] = {}
    for count, entry in enumerate(root):
        if count >= MAX_ENTRIES:
            break
        name = _local(entry.tag)
        direct = list(entry)
        for child in direct:
            if _local(child.tag) == "loc":
                target = resolve(url, (child.text or "").strip())
                if target is not None:
                    (maps if kind == "sitemapindex" and name == "sitemap" else pages)[target] = None
        for holder in direct:  # <image:image><image:loc>, <video:video><video:thumbnail_loc>
            for child in holder:
                local = _local(child.tag)
                if local not in ("loc", "thumbnail_loc", "content_loc") or len(media) >= MAX_ENTRIES:
                    continue
                target = resolve(url, (child.text or "").strip())
                if target is not None and target not in media:
                    default = VIDEO if local == "content_loc" else IMAGE
                    media[target] = MediaRef(target, media_kind(target, default), "sitemap")
    return Sitemap(pages=tuple(pages), sitemaps=tuple(maps), media=tuple(media.values()))


def robots_sitemaps(body: bytes, url: str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt (any case, anywhere in the file)."""
    found: dict[str, None] = {}
    for line in body[: 512 * 1024].decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "sitemap":
            target = resolve(url, value.split("#", 1)[0].strip())
            if target is not None:
                found[target] = None
        if len(found) >= 1000:
            break
    return list(found)
