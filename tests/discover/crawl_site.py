"""Benign media and a small loopback site for the crawl, scan and re-check tests.

Everything is made here from scikit-image's bundled photos: a "banked" photo, a transformed copy of it (resized,
re-encoded), unrelated photos, a short clip and a stream segment showing the banked photo, a fragmented-MP4 free
playlist.  ``site_routes`` lays them out as pages with every kind of media reference the extractor knows.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from takeback import samples, store
from takeback.discover.media_hash import hash_image_bytes
from tests.discover.webserver import Reply, redirect

BANKED = samples.PHOTO_NAMES[0]
OTHERS = samples.PHOTO_NAMES[1:4]


@cache
def photo(name: str, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    return np.asarray(Image.fromarray(samples.photo(name)).convert("RGB").resize(size))


def jpeg(name: str, size: tuple[int, int] = (320, 240), quality: int = 85) -> bytes:
    out = io.BytesIO()
    Image.fromarray(photo(name, size)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(name: str, size: tuple[int, int] = (200, 150)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(photo(name, size)).save(out, "PNG")
    return out.getvalue()


@cache
def clip(name: str = BANKED, fmt: str = "mp4", frames: int = 12, size: tuple[int, int] = (160, 120)) -> bytes:
    """A short still clip of a photo (H.264 in MP4 or MPEG-TS), like a preview loop or a stream segment."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        still = photo(name, size)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(still), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def bank_case(sessions: sessionmaker[Session], names: tuple[str, ...] = ("Mia Khalifa",)) -> tuple[int, int]:
    """A case with a bank holding the banked photo's PDQ (as `takeback hash` would compute it); (case, signal)."""
    banked = hash_image_bytes(jpeg(BANKED, (640, 480), 92))
    with sessions.begin() as session:
        case = store.create_case(session, "Case of A.")
        bank = store.create_bank(session, f"photos-{case.id}", case_id=case.id)
        frame = banked.frames[0]
        added = store.add_signals(session, bank.id, [("pdq", frame.pdq, frame.quality, "banked photo")])
        for name in names:
            store.add_case_name(session, case.id, name)
    return case.id, added.added[0].id


def html(body: str, title: str = "Gallery") -> Reply:
    return Reply(body=f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode())


@dataclass
class Site:
    """Planted things, by path."""

    copies: tuple[str, ...] = (
        "/img/copy.jpg",  # <img src> on a linked page (resized, re-encoded)
        "/lazy/copy2.jpg",  # data-src, found through the sitemap's page
        "/og/cover.png",  # og:image (PNG)
        "/css/bg.jpg",  # CSS background in a <style> block
        "/clips/preview.mp4",  # hover preview (data-preview)
        "/hls/master.m3u8",  # HLS master → variant → first TS segment
    )
    name_pages: tuple[str, ...] = ("/mia-khalifa-leaked",)


def site_routes(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    copy = jpeg(BANKED, (300, 225), 60)
    routes: dict[str, Any] = {
        "/robots.txt": Reply(
            body=b"User-agent: *\nDisallow: /private/\nSitemap: /sitemap_index.xml\n", content_type="text/plain"
        ),
        "/sitemap_index.xml": Reply(
            body=b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<sitemap><loc>/sitemap1.xml.gz</loc></sitemap></sitemapindex>",
            content_type="application/xml",
        ),
        "/sitemap1.xml.gz": Reply(
            body=gzip.compress(
                b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                b"<url><loc>/orphan</loc></url></urlset>"
            ),
            content_type="application/gzip",
        ),
        "/": html(
            '<a href="/page1">one</a> <a href="/page2#top">two</a> <a href="/mia-khalifa-leaked">x</a>'
            '<a href="https://elsewhere.example/">off site</a> <a href="/private/secret">private</a>'
            '<a href="/broken">broken</a> <a href="/loop">loop</a>'
            '<img src="/img/other0.jpg" srcset="/img/other1.jpg 1x, /img/other2.png 2x">'
        ),
        "/page1": Reply(
            body=b'<html><head><meta property="og:image" content="/og/cover.png">'
            b"<style>.hero{background-image:url('/css/bg.jpg')}</style></head>"
            b'<body><img src="/img/copy.jpg"><img src="/img/fake.jpg"><img src="/img/huge.jpg">'
            b'<div class="thumb" data-preview="/clips/preview.mp4"></div>'
            b'<video poster="/img/other0.jpg"><source src="/hls/master.m3u8" type="application/x-mpegURL"></video>'
            b'<a href="/page3">deeper</a></body></html>'
        ),
        "/page2": html('<img src="/img/other1.jpg"><a href="/">home</a>'),
        "/page3": html('<a href="/page4">deeper still</a>'),
        "/page4": html('<img src="/img/too-deep.jpg">'),
        "/orphan": html('<img data-src="/lazy/copy2.jpg" class="lazy">'),
        "/mia-khalifa-leaked": html("<p>new videos every day</p>", title="Watch now"),
        "/private/secret": html('<img src="/img/copy.jpg">'),
        "/broken": Reply(status=500, body=b"oops"),
        "/loop": redirect("/loop2"),
        "/loop2": redirect("/loop"),
        "/img/copy.jpg": Reply(body=copy, content_type="image/jpeg"),
        "/lazy/copy2.jpg": Reply(body=jpeg(BANKED, (256, 192), 70), content_type="image/jpeg"),
        "/og/cover.png": Reply(body=png(BANKED), content_type="image/png"),
        "/css/bg.jpg": Reply(body=jpeg(BANKED, (400, 300), 50), content_type="image/jpeg"),
        "/img/other0.jpg": Reply(body=jpeg(OTHERS[0]), content_type="image/jpeg"),
        "/img/other1.jpg": Reply(body=jpeg(OTHERS[1]), content_type="image/jpeg"),
        "/img/other2.png": Reply(body=png(OTHERS[2]), content_type="image/png"),
        "/img/too-deep.jpg": Reply(body=jpeg(BANKED), content_type="image/jpeg"),
        "/img/fake.jpg": html("not an image at all"),
        "/img/huge.jpg": Reply(body=b"\xff\xd8\xff" + b"\x00" * (300 * 1024), content_type="image/jpeg"),
        "/clips/preview.mp4": Reply(body=clip(BANKED, "mp4"), content_type="video/mp4"),
        "/hls/master.m3u8": Reply(
            body=b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=200000\nlow/index.m3u8\n",
            content_type="application/vnd.apple.mpegurl",
        ),
        "/hls/low/index.m3u8": Reply(
            body=b"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\nseg0.ts\n#EXTINF:3.0,\nseg1.ts\n#EXT-X-ENDLIST\n",
            content_type="application/vnd.apple.mpegurl",
        ),
        "/hls/low/seg0.ts": Reply(body=clip(BANKED, "mpegts"), content_type="video/mp2t"),
        "/hls/low/seg1.ts": Reply(body=clip(BANKED, "mpegts"), content_type="video/mp2t"),
    }
    routes.update(extra or {})
    return routes


def swap(routes: dict[str, Any], path: str, reply: Reply | Callable[..., Reply]) -> None:
    routes[path] = reply
