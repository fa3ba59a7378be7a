"""Extractors on friendly and hostile input: every kind of media reference, links, titles; bounded work on deep,
huge or broken documents; HLS/DASH playlists; sitemaps (gzip, bombs, entities)."""

from __future__ import annotations

import gzip
import time
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.discover.extract import (
    DASH,
    HLS,
    IMAGE,
    VIDEO,
    HtmlLimits,
    Resolver,
    decode_html,
    extract_html,
    parse_srcset,
    resolve,
    same_site,
)
from takeback.discover.extract_playlist import parse_dash, parse_hls
from takeback.discover.extract_sitemap import MAX_SITEMAP_BYTES, gunzip_capped, parse_sitemap, robots_sitemaps

BASE = "https://site.test/dir/page.html"

PAGE = b"""<!doctype html><html><head>
<base href="https://cdn.test/base/">
<title>  Gallery \n of  things </title>
<meta property="og:image" content="/og.jpg"><meta name="twitter:image" content="tw.png">
<meta property="og:video:secure_url" content="https://v.test/clip.mp4">
<link rel="image_src" href="linked.jpg">
<style>.a{background-image:url('bg1.png')} .b{background:url("bg2.webp") no-repeat} .c{background:url(bg3.jpg)}</style>
<script type="application/ld+json">{"@context":"https://schema.org","@graph":[{"@type":"VideoObject",
 "thumbnailUrl":["t1.jpg","t2.jpg"],"contentUrl":"content.mp4","name":"x"},{"@type":"Person","image":"person.jpg"}]}
</script>
<script type="application/ld+json">{ this is not json</script>
</head><body>
<img src="a.jpg" srcset="a-1x.jpg 1x, a,2x.jpg 2x,a-3x.jpg 3x">
<picture><source srcset="p.avif 1x"><img src="p.jpg"></picture>
<img data-src="lazy.jpg" data-srcset="l1.jpg 100w, l2.jpg 200w" data-lazy-src="lazy2.jpg" data-original="orig.jpg">
<div style="background-image: url(&quot;inline.jpg&quot;)">x</div>
<video poster="poster.jpg" preview="prev.webm"><source src="stream.m3u8" type="application/x-mpegURL">
<source src="manifest.mpd" type="application/dash+xml"></video>
<div class="thumb" data-preview="hover.mp4" data-mediabook="mb.mp4"></div>
<a href="/next#frag">next</a><a href="other.html">other</a><a href="mailto:a@b.c">m</a>
<a href="javascript:void(0)">j</a>
<a href="ftp://files.test/x">ftp</a><a href="https://user:secret@site.test/login">creds</a>
<a href="https://site.test:99999/">bad port</a><a href="data:text/html,hi">data</a>
<iframe src="https://embed.test/v/1"></iframe>
<p>Some text about the page.</p>
</body></html>"""


def test_every_reference_kind() -> None:
    page = extract_html(PAGE, BASE)
    media = {m.url.removeprefix("https://cdn.test/base/"): (m.kind, m.source) for m in page.media}
    assert page.title == "Gallery of things"
    assert "Some text about the page." in page.text
    expected = {
        "https://cdn.test/og.jpg": (IMAGE, "og:image"),
        "tw.png": (IMAGE, "twitter:image"),
        "https://v.test/clip.mp4": (VIDEO, "og:video:secure_url"),
        "linked.jpg": (IMAGE, "link"),
        "a.jpg": (IMAGE, "img"),
        "a-1x.jpg": (IMAGE, "srcset"),
        "a,2x.jpg": (IMAGE, "srcset"),
        "a-3x.jpg": (IMAGE, "srcset"),
        "p.avif": (IMAGE, "srcset"),
        "p.jpg": (IMAGE, "img"),
        "lazy.jpg": (IMAGE, "lazy"),
        "l1.jpg": (IMAGE, "lazy"),
        "l2.jpg": (IMAGE, "lazy"),
        "lazy2.jpg": (IMAGE, "lazy"),
        "orig.jpg": (IMAGE, "lazy"),
        "poster.jpg": (IMAGE, "poster"),
        "stream.m3u8": (HLS, "video"),
        "manifest.mpd": (DASH, "video"),
        "prev.webm": (VIDEO, "preview"),
        "hover.mp4": (VIDEO, "preview"),
        "mb.mp4": (VIDEO, "preview"),
        "inline.jpg": (IMAGE, "css"),
        "bg1.png": (IMAGE, "css"),
        "bg2.webp": (IMAGE, "css"),
        "bg3.jpg": (IMAGE, "css"),
        "t1.jpg": (IMAGE, "jsonld"),
        "t2.jpg": (IMAGE, "jsonld"),
        "content.mp4": (VIDEO, "jsonld"),
    }
    assert media == expected
    assert page.links == (
        "https://cdn.test/next",
        "https://cdn.test/base/other.html",
        "https://site.test/login",  # credentials dropped
        "https://embed.test/v/1",
    )
    assert not page.truncated


def test_no_base_resolves_against_the_page() -> None:
    page = extract_html(b'<img src="x.jpg"><a href="../up">u</a>', BASE)
    assert [m.url for m in page.media] == ["https://site.test/dir/x.jpg"]
    assert page.links == ("https://site.test/up",)


@pytest.mark.parametrize(
    ("srcset", "urls"),
    [
        ("a.jpg", ["a.jpg"]),
        ("a.jpg 1x, b.jpg 2x", ["a.jpg", "b.jpg"]),
        ("a.jpg 100w,b.jpg 200w", ["a.jpg", "b.jpg"]),
        ("  a.jpg,  b.jpg  ", ["a.jpg", "b.jpg"]),
        ("img,comma.jpg 1x", ["img,comma.jpg"]),
        ("", []),
    ],
)
def test_srcset(srcset: str, urls: list[str]) -> None:
    assert parse_srcset(srcset) == urls


@given(st.lists(st.from_regex(r"[a-z0-9/_.-]{1,20}\.jpg", fullmatch=True), min_size=1, max_size=6))
def test_srcset_round_trip(urls: list[str]) -> None:
    text = ", ".join(f"{u} {i + 1}x" for i, u in enumerate(urls))
    assert parse_srcset(text) == urls


@given(st.text(max_size=300))
def test_resolve_only_returns_bounded_http_urls(value: str) -> None:
    url = resolve(BASE, value)
    if url is not None:
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.hostname and not parts.fragment
        assert len(url) <= 2048 and "@" not in parts.netloc


def test_deep_nesting_is_cut_quickly() -> None:
    started = time.perf_counter()
    page = extract_html(b"<div>" * 300_000 + b'<img src="deep.jpg">', BASE)
    assert time.perf_counter() - started < 2.0
    assert page.truncated and page.media == ()
    # Moderate nesting is read in full.
    page = extract_html(b"<div>" * 200 + b'<img src="ok.jpg">' + b"</div>" * 200, BASE)
    assert [m.url for m in page.media] == ["https://site.test/dir/ok.jpg"] and not page.truncated


def test_huge_documents_are_capped() -> None:
    many = b"".join(b'<a href="/p%d">x</a><img src="/i%d.jpg">' % (i, i) for i in range(30_000))
    started = time.perf_counter()
    page = extract_html(many, BASE, limits=HtmlLimits(max_links=100, max_media=50))
    assert time.perf_counter() - started < 5.0
    assert len(page.links) == 100 and len(page.media) == 50 and page.truncated
    big_attr = b'<img src="' + b"a" * 1_500_000 + b'"><img src="ok.jpg"><title>' + b"t" * 100_000 + b"</title>"
    page = extract_html(big_attr, BASE)
    assert [m.url for m in page.media] == ["https://site.test/dir/ok.jpg"]
    assert len(page.title) == 1000
    # Beyond max_bytes nothing is read.
    page = extract_html(b"<p>" + b"x" * 3_000_000 + b'<img src="late.jpg">', BASE)
    assert page.media == () and page.truncated


def test_broken_encodings() -> None:
    page = extract_html(b'<title>caf\xe9 \xff\xfe</title><img src="\xe9t\xe9.jpg">', BASE)
    assert page.title.startswith("caf") and len(page.media) == 1
    assert decode_html(b"<meta charset=nonsense-7>caf\xc3\xa9") == "<meta charset=nonsense-7>caf\u00e9"
    assert decode_html("caf\u00e9".encode("latin-1"), "text/html; charset=iso-8859-1") == "caf\u00e9"
    assert decode_html(b"\xef\xbb\xbfhi") == "hi"
    assert extract_html(b"", BASE).media == () and extract_html(b"\x00\x01\x02", BASE).title == ""


def test_same_site() -> None:
    assert same_site("https://www.site.test/x", {"site.test"})
    assert same_site("https://site.test./x", {"site.test"})
    assert not same_site("https://notsite.test/x", {"site.test"})
    assert not same_site("https://site.test.evil.test/", {"site.test"})


# --- playlists -------------------------------------------------------------------------------------------------


def test_hls_master_and_media() -> None:
    master = parse_hls(
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/i.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nhigh/i.m3u8\n",
        "https://s.test/v/master.m3u8",
    )
    assert master.variants == ("https://s.test/v/low/i.m3u8", "https://s.test/v/high/i.m3u8") and not master.segments
    media = parse_hls(
        b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4,\ns1.m4s\n#EXTINF:4,\ns2.m4s\n#EXTINF:4,\ns3.m4s\n'
        b"#EXTINF:4,\ns4.m4s\n",
        "https://s.test/v/low/i.m3u8",
    )
    assert media.init == "https://s.test/v/low/init.mp4"
    assert media.segments == tuple(f"https://s.test/v/low/s{i}.m4s" for i in (1, 2, 3))
    assert parse_hls(b"<html>not a playlist</html>", "https://s.test/").segments == ()
    assert parse_hls(b"#EXTM3U\njavascript:alert(1)\n", "https://s.test/").segments == ()


def test_dash_templates_lists_and_files() -> None:
    numbered = b"""<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period>
      <AdaptationSet contentType="audio"><Representation id="a" bandwidth="1"/></AdaptationSet>
      <AdaptationSet mimeType="video/mp4"><SegmentTemplate initialization="$RepresentationID$/init.mp4"
        media="$RepresentationID$/seg-$Number%05d$.m4s" startNumber="7"/>
        <Representation id="v1" bandwidth="100"/></AdaptationSet></Period></MPD>"""
    playlist = parse_dash(numbered, "https://s.test/d/manifest.mpd")
    assert playlist.init == "https://s.test/d/v1/init.mp4"
    assert playlist.segments == tuple(f"https://s.test/d/v1/seg-{n:05d}.m4s" for n in (7, 8, 9))
    timeline = b"""<MPD><Period><AdaptationSet contentType="video"><Representation id="r" bandwidth="5">
      <SegmentTemplate media="t-$Time$.m4s"><SegmentTimeline><S t="100" d="10" r="5"/></SegmentTimeline>
      </SegmentTemplate></Representation></AdaptationSet></Period></MPD>"""
    assert parse_dash(timeline, "https://s.test/m.mpd").segments == tuple(
        f"https://s.test/t-{t}.m4s" for t in (100, 110, 120)
    )
    listed = b"""<MPD><BaseURL>https://cdn.test/x/</BaseURL><Period><AdaptationSet><Representation id="r">
      <SegmentList><Initialization sourceURL="i.mp4"/><SegmentURL media="1.m4s"/><SegmentURL media="2.m4s"/>
      </SegmentList></Representation></AdaptationSet></Period></MPD>"""
    playlist = parse_dash(listed, "https://s.test/m.mpd")
    assert playlist.init == "https://cdn.test/x/i.mp4" and playlist.segments[0] == "https://cdn.test/x/1.m4s"
    single = b"<MPD><Period><AdaptationSet><Representation><BaseURL>v.mp4</BaseURL></Representation>" \
        b"</AdaptationSet></Period></MPD>"  # fmt: skip
    assert parse_dash(single, "https://s.test/m.mpd").segments == ("https://s.test/v.mp4",)


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<MPD></MPD>",
        b"<html/>",
        b'<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><MPD>&b;</MPD>',
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><MPD><BaseURL>&e;</BaseURL></MPD>',
    ],
)
def test_dash_hostile(body: bytes) -> None:
    assert parse_dash(body, "https://s.test/m.mpd").segments == ()


# --- sitemaps --------------------------------------------------------------------------------------------------

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"
        xmlns:video="http://www.google.com/schemas/sitemap-video/1.1">
  <url><loc>https://site.test/a</loc><image:image><image:loc>https://img.test/a.jpg</image:loc></image:image></url>
  <url><loc> /b </loc><video:video><video:thumbnail_loc>/t.jpg</video:thumbnail_loc>
       <video:content_loc>/v.mp4</video:content_loc></video:video></url>
  <url><loc>javascript:alert(1)</loc></url>
</urlset>"""


def test_sitemap_urlset_with_media() -> None:
    parsed = parse_sitemap(URLSET, "https://site.test/sitemap.xml")
    assert parsed.pages == ("https://site.test/a", "https://site.test/b") and parsed.sitemaps == ()
    assert {(m.url, m.kind) for m in parsed.media} == {
        ("https://img.test/a.jpg", IMAGE),
        ("https://site.test/t.jpg", IMAGE),
        ("https://site.test/v.mp4", VIDEO),
    }
    assert parse_sitemap(gzip.compress(URLSET), "https://site.test/s.xml.gz").pages == parsed.pages


def test_sitemap_index_and_robots() -> None:
    index = b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>/s1.xml</loc>' \
        b"</sitemap><sitemap><loc>https://site.test/s2.xml.gz</loc></sitemap></sitemapindex>"  # fmt: skip
    parsed = parse_sitemap(index, "https://site.test/sitemap.xml")
    assert parsed.sitemaps == ("https://site.test/s1.xml", "https://site.test/s2.xml.gz") and parsed.pages == ()
    robots = b"User-agent: *\nDisallow: /x\nSITEMAP: /one.xml # comment\nsitemap:https://site.test/two.xml\nSitemap:\n"
    assert robots_sitemaps(robots, "https://site.test/robots.txt") == [
        "https://site.test/one.xml",
        "https://site.test/two.xml",
    ]


def test_sitemap_bombs_and_garbage() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_SITEMAP_BYTES * 3) + b"</urlset>")
    started = time.perf_counter()
    assert len(gunzip_capped(bomb)) == MAX_SITEMAP_BYTES
    assert parse_sitemap(bomb, "https://site.test/s.xml.gz").pages == ()
    assert time.perf_counter() - started < 5.0
    billion = b'<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><urlset><url><loc>&b;</loc></url></urlset>'
    assert parse_sitemap(billion, "https://site.test/s.xml").pages == ()
    assert parse_sitemap(b"\x1f\x8bnot gzip", "https://site.test/s.xml.gz").pages == ()
    assert parse_sitemap(b"<<<>>>", "https://site.test/s.xml").pages == ()


# --- the resolver's fast path -----------------------------------------------------------------------------------------

_BASES = (
    "http://example.com/dir/page.html",
    "https://User:pw@Example.COM:8443/a/b/?q=1#frag",
    "http://127.0.0.1:8080",
    "http://[::1]:81/x/y",
    "https://xn--bcher-kva.example/",
    "ftp://example.com/file",
)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(_BASES),
    value=st.one_of(
        st.text(alphabet=st.sampled_from(list("/.?#%;:@=&+ab-_~\\ \t\nAé")), max_size=24).map(lambda v: "/" + v),
        st.text(alphabet=st.sampled_from(list("/.?#%:ab")), max_size=12),
        st.sampled_from(
            ["/", "//cdn.example/x", "/./a", "/a/../b", "/a/..", "/a?", "/a?b", "/a#b", "/a/.?x", "/;", "/a;b?c"]
        ),
    ),
)
def test_resolver_fast_path_agrees_with_resolve(base: str, value: str) -> None:
    assert Resolver(base)(value) == resolve(base, value)
