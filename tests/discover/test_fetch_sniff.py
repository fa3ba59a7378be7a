"""Content-type sniffing: the bytes decide; a media type the bytes do not confirm becomes unknown."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from takeback.discover import sniff


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", sniff.JPEG),
        ("PNG", sniff.PNG),
        ("GIF", sniff.GIF),
        ("WEBP", sniff.WEBP),
        ("TIFF", sniff.TIFF),
        ("BMP", sniff.BMP),
    ],
)
def test_real_images(fmt: str, mime: str) -> None:
    data = _image(fmt)
    assert sniff.sniff_bytes(data[: sniff.HEAD_BYTES]) == mime
    assert sniff.content_type(data, "text/html") == mime  # the declaration lies; the bytes win


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", sniff.MP4),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", sniff.QUICKTIME),
        (b"\x00\x00\x00\x08moov", sniff.QUICKTIME),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", sniff.WEBM),
        (b"\x00\x00\x00\x1cftypavif", sniff.AVIF),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n", sniff.HLS),
        (b'\xef\xbb\xbf<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">', sniff.DASH),
        (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">', sniff.XML),
        (b"<sitemapindex>", sniff.XML),
        (b"  \n<!DOCTYPE html><html>", sniff.HTML),
        (b"<html><body>", sniff.HTML),
        (b"\xef\xbb\xbf<!doctype html>", sniff.HTML),
        ("\ufeff<html>".encode("utf-16-le"), sniff.HTML),
        (b'{"@context": "https://schema.org"}', sniff.JSON),
        (b"[1, 2, 3]", sniff.JSON),
        (b"[", sniff.JSON),
        (b"body { color: red }", ""),
        (b"plain text", ""),
        (b"", ""),
    ],
)
def test_heads(head: bytes, mime: str) -> None:
    assert sniff.sniff_bytes(head) == mime


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("image/jpeg", ""),  # claims media, bytes are not: a lie
        ("video/mp4", ""),
        ("application/octet-stream", ""),
        ("application/vnd.apple.mpegurl", ""),
        ("text/plain; charset=utf-8", "text/plain"),
        ("TEXT/CSS", "text/css"),
        (None, ""),
        ("", ""),
    ],
)
def test_declared_type_used_only_when_bytes_say_nothing(declared: str | None, expected: str) -> None:
    assert sniff.content_type(b"just some text", declared) == expected


def test_html_served_as_image_is_html() -> None:
    assert sniff.content_type(b"<!doctype html><html><body>not an image</body></html>", "image/jpeg") == sniff.HTML


@given(st.binary(max_size=600), st.text(max_size=40))
def test_never_fails_and_answers_a_known_or_declared_type(head: bytes, declared: str) -> None:
    result = sniff.content_type(head, declared)
    assert isinstance(result, str)
    assert result == "" or "/" in result or result == declared.split(";", 1)[0].strip().lower()
