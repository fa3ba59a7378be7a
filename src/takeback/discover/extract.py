"""What a fetched HTML page points to: media to hash, same-site links to follow, its title and text.

Pure functions over bytes: no network, no state, so they can be tested on hostile input and run anywhere.  Every
page is hostile: the input is cut to ``HtmlLimits.max_bytes``, cut again where tag nesting gets deeper than
``max_depth`` (the HTML parser's work grows with the square of the depth: 200,000 nested ``<div>`` take minutes),
attribute values longer than a URL can be are ignored, and the number of URLs returned is capped.  Only absolute
http(s) URLs come out, resolved against the page (or its ``<base href>``), without fragments, de-duplicated in
document order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

URL_MAX = 2048

#: Media kinds: "image" (hash as a picture), "video" (a clip or file: hash a few frames), "hls"/"dash" (a playlist
#: to expand into its first segments).
IMAGE, VIDEO, HLS, DASH = "image", "video", "hls", "dash"


@dataclass(frozen=True, slots=True)
class HtmlLimits:
    max_bytes: int = 2 * 1024 * 1024
    max_depth: int = 512
    max_links: int = 2000
    max_media: int = 1000
    max_text_chars: int = 100_000
    max_jsonld_chars: int = 200_000
    #: Elements looked at per kind (links, images, ...): a page of 100,000 links is not read to the end.
    max_nodes: int = 20_000


@dataclass(frozen=True, slots=True)
class MediaRef:
    url: str
    #: IMAGE, VIDEO, HLS or DASH (from the element, attribute or file extension).
    kind: str
    #: Where it was found: "img", "srcset", "lazy", "og:image", "poster", "jsonld", "css", "preview", ...
    source: str


@dataclass(frozen=True, slots=True)
class PageExtract:
    url: str
    title: str
    #: The page's visible-ish text (body text, capped): for name matching.
    text: str
    links: tuple[str, ...]
    media: tuple[MediaRef, ...]
    #: True when a limit cut something (bytes, depth, counts): the page was bigger or deeper than we read.
    truncated: bool = False


# --- URL helpers -----------------------------------------------------------------------------------------------

_STRIP = re.compile(r"[\t\n\r]")


def resolve(base: str, value: str | None) -> str | None:
    """``value`` as an absolute http(s) URL without fragment, or None (other schemes, too long, unparsable)."""
    if not value or len(value) > URL_MAX:
        return None
    value = _STRIP.sub("", value.strip())
    if not value or value.startswith(("data:", "javascript:", "mailto:", "blob:", "#")):
        return None
    try:
        joined = urljoin(base, value)
        parts = urlsplit(joined)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            return None
        port = parts.port
    except ValueError:
        return None
    # User info is dropped: credentials in a found URL are never sent anywhere.
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return url if len(url) <= URL_MAX else None


#: Site-absolute references ("/img/1.jpg", "/a?b=c") that resolve by prefixing the page's origin: plain ASCII,
#: no scheme-relative "//", no fragment, backslash, ";" (urljoin drops empty path parameters), empty query or
#: dot segment (all of which urljoin would rewrite).
_PLAIN_ABSOLUTE = re.compile(r"/(?!/)[A-Za-z0-9\-._~/!$&'()*+,=:@%]*(?:\?[A-Za-z0-9\-._~/!$&'()*+,=:@%?]+)?")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|\?|$)")


class Resolver:
    """``resolve`` against one base, with a fast path for site-absolute references, which are most of a page's:
    for those, urljoin and the re-assembly give exactly the origin followed by the reference."""

    def __init__(self, base: str) -> None:
        self.base = base
        root = resolve(base, "/")
        self._origin = root[:-1] if root is not None else None

    def __call__(self, value: str | None) -> str | None:
        if self._origin is not None and value and len(value) <= URL_MAX:
            plain = _STRIP.sub("", value.strip())
            if _PLAIN_ABSOLUTE.fullmatch(plain) and not _DOT_SEGMENT.search(plain):
                url = self._origin + plain
                return url if len(url) <= URL_MAX else None
        return resolve(self.base, value)


def parse_srcset(value: str) -> list[str]:
    """The URLs of a ``srcset`` (all candidates): "a.jpg 1x, b.jpg 2x" → [a.jpg, b.jpg].  URLs may contain commas
    (the split is on a comma after a descriptor or after whitespace, as browsers do)."""
    urls: list[str] = []
    i, n = 0, len(value)
    while i < n and len(urls) < 64:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            while i < n and value[i] != ",":  # skip the descriptor ("2x", "640w")
                i += 1
        if url:
            urls.append(url)
    return urls


def media_kind(url: str, default: str = IMAGE) -> str:
    path = urlsplit(url).path.lower()
    if path.endswith(".m3u8"):
        return HLS
    if path.endswith(".mpd"):
        return DASH
    if path.endswith((".mp4", ".webm", ".m4v", ".mov", ".mkv", ".ts", ".m4s", ".ogv", ".gifv")):
        return VIDEO
    if path.endswith((".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".bmp", ".heic", ".jfif")):
        return IMAGE
    return default


# --- depth guard -----------------------------------------------------------------------------------------------

_TAG = re.compile(rb"<(/?)([a-zA-Z][a-zA-Z0-9-]{0,31})[^>]{0,4096}?(/?)>")
#: Elements that never nest (void) or that the parser closes implicitly when a sibling starts: not depth.
_FLAT = frozenset(
    b"area base br col embed hr img input link meta source track wbr p li dt dd option optgroup tr td th "
    b"thead tbody tfoot colgroup rb rt rp".split()
)


def _depth_cut(data: bytes, max_depth: int) -> int | None:
    """Where nesting first exceeds ``max_depth`` (an over-estimate: unclosed elements count as open), or None."""
    depth = 0
    for m in _TAG.finditer(data):
        name = m.group(2).lower()
        if name in _FLAT:
            continue
        if m.group(1):
            depth = max(0, depth - 1)
        elif not m.group(3):
            depth += 1
            if depth > max_depth:
                return m.start()
    return None


#: Public name for other modules that parse hostile HTML themselves (takedown's contact reader).
depth_cut = _depth_cut


# --- decoding --------------------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.IGNORECASE)


def decode_html(body: bytes, content_type: str = "") -> str:
    """Text from bytes: BOM, then the declared charset (header, then ``<meta>``), then UTF-8, then Windows-1252
    (which decodes any byte): a broken encoding never fails, it only garbles."""
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", "replace")
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return body.decode("utf-16", "replace")
    candidates: list[str] = []
    m = re.search(r"charset\s*=\s*[\"']?([a-zA-Z0-9_.:-]{1,40})", content_type or "")
    if m:
        candidates.append(m.group(1))
    m2 = _META_CHARSET.search(body[:4096])
    if m2:
        candidates.append(m2.group(1).decode("ascii"))
    for name in candidates:
        try:
            return body.decode(name, "replace")
        except LookupError:
            continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


# --- extraction ------------------------------------------------------------------------------------------------

_LAZY_IMAGE = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-thumb", "data-thumbnail",
               "data-image", "data-img", "data-bg", "data-background", "data-background-image", "data-poster",
               "data-hi-res-src", "data-full-src", "data-echo")  # fmt: skip
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset", "data-original-set")
#: Hover previews and preview clips (video thumbnails that play on hover).
_PREVIEW = ("data-preview", "data-mediabook", "data-video-preview", "data-preview-url", "data-trailer",
            "data-webm", "data-mp4", "data-video", "data-gif", "preview")  # fmt: skip
_META_IMAGE = frozenset(
    ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src", "thumbnail")
)
_META_VIDEO = frozenset(("og:video", "og:video:url", "og:video:secure_url", "twitter:player:stream"))
_SELECTOR_LAZY = ", ".join(f"[{a}]" for a in (*_LAZY_IMAGE, *_LAZY_SRCSET, *_PREVIEW))
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')\s]{1,2048})\1\s*\)""", re.IGNORECASE)
_JSONLD_URL_KEYS = {"thumbnailUrl": IMAGE, "contentUrl": VIDEO, "thumbnail": IMAGE, "image": IMAGE}


class _Collector:
    def __init__(self, base: str, limits: HtmlLimits) -> None:
        self.base = base
        self.resolve = Resolver(base)
        self.limits = limits
        self.links: dict[str, None] = {}
        self.media: dict[str, MediaRef] = {}
        self.truncated = False
        self._raw: set[tuple[str, str]] = set()

    def _new(self, value: str | None, what: str) -> bool:
        """Whether this raw value is new (repeated values are not resolved again)."""
        if not value:
            return False
        key = (what, value)
        if key in self._raw:
            return False
        self._raw.add(key)
        return True

    def nodes(self, tree: LexborHTMLParser, selector: str) -> list[LexborNode]:
        found = tree.css(selector)
        if len(found) > self.limits.max_nodes:
            self.truncated = True
            return found[: self.limits.max_nodes]
        return found

    def link(self, value: str | None) -> None:
        if not self._new(value, "link"):
            return
        url = self.resolve(value)
        if url is None or url in self.links:
            return
        if len(self.links) >= self.limits.max_links:
            self.truncated = True
            return
        self.links[url] = None

    def add_media(self, value: str | None, kind: str, source: str) -> None:
        if not self._new(value, "media"):
            return
        url = self.resolve(value)
        if url is None or url in self.media:
            return
        if len(self.media) >= self.limits.max_media:
            self.truncated = True
            return
        self.media[url] = MediaRef(url, media_kind(url, kind), source)


def _attrs(node: LexborNode) -> dict[str, str]:
    # Attribute values longer than any URL cannot be one: ignore them instead of copying megabytes around.
    return {k: v for k, v in node.attributes.items() if v is not None and len(v) <= 64 * 1024}


def extract_html(body: bytes, url: str, *, content_type: str = "", limits: HtmlLimits | None = None) -> PageExtract:
    """Media, links, title and text of one page.  Never raises on bad HTML; an empty page gives an empty result."""
    limits = limits or HtmlLimits()
    truncated = len(body) > limits.max_bytes
    data = body[: limits.max_bytes]
    cut = _depth_cut(data, limits.max_depth)
    if cut is not None:
        data, truncated = data[:cut], True
    tree = LexborHTMLParser(decode_html(data, content_type))
    base = url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = resolve(url, base_node.attributes.get("href")) or url
    out = _Collector(base, limits)

    title_node = tree.css_first("title")
    title = " ".join((title_node.text() if title_node else "").split())[:1000]

    for node in out.nodes(tree, "meta[property], meta[name], meta[itemprop]"):
        attrs = _attrs(node)
        key = (attrs.get("property") or attrs.get("name") or attrs.get("itemprop") or "").strip().lower()
        if key in _META_IMAGE:
            out.add_media(attrs.get("content"), IMAGE, key)
        elif key in _META_VIDEO:
            out.add_media(attrs.get("content"), VIDEO, key)
        elif key in ("thumbnailurl", "contenturl"):
            out.add_media(attrs.get("content"), IMAGE if key == "thumbnailurl" else VIDEO, "itemprop")
    for node in out.nodes(tree, 'link[rel~="image_src"], link[as="image"]'):
        out.add_media(_attrs(node).get("href"), IMAGE, "link")

    for node in out.nodes(tree, "img, picture source, input[type=image]"):
        attrs = _attrs(node)
        out.add_media(attrs.get("src"), IMAGE, "img")
        for candidate in parse_srcset(attrs.get("srcset", "")):
            out.add_media(candidate, IMAGE, "srcset")
    for node in out.nodes(tree, "video, video source"):
        attrs = _attrs(node)
        if node.tag == "video":
            out.add_media(attrs.get("poster"), IMAGE, "poster")
        out.add_media(attrs.get("src"), _type_kind(attrs.get("type", "")), "video")
    for node in out.nodes(tree, _SELECTOR_LAZY):
        attrs = _attrs(node)
        for name in _LAZY_IMAGE:
            out.add_media(attrs.get(name), IMAGE, "lazy")
        for name in _LAZY_SRCSET:
            for candidate in parse_srcset(attrs.get(name, "")):
                out.add_media(candidate, IMAGE, "lazy")
        for name in _PREVIEW:
            out.add_media(attrs.get(name), VIDEO, "preview")

    for node in out.nodes(tree, "[style]"):
        for value in _css_urls(_attrs(node).get("style", "")):
            out.add_media(value, IMAGE, "css")
    for node in out.nodes(tree, "style"):
        for value in _css_urls(node.text()[:1_000_000]):
            out.add_media(value, IMAGE, "css")

    budget = limits.max_jsonld_chars
    for node in out.nodes(tree, 'script[type="application/ld+json"]'):
        text = node.text()
        if len(text) > budget:
            out.truncated = True
            break
        budget -= len(text)
        for value, kind in _jsonld_media(text):
            out.add_media(value, kind, "jsonld")

    for node in out.nodes(tree, "a[href], area[href], iframe[src], frame[src]"):
        attrs = _attrs(node)
        out.link(attrs.get("href") or attrs.get("src"))

    text = ""
    if tree.body is not None:
        text = " ".join(tree.body.text(separator=" ", strip=True)[: limits.max_text_chars * 2].split())
        text = text[: limits.max_text_chars]
    return PageExtract(
        url=url,
        title=title,
        text=text,
        links=tuple(out.links),
        media=tuple(out.media.values()),
        truncated=truncated or out.truncated,
    )


def _type_kind(mime: str) -> str:
    mime = mime.lower()
    if "mpegurl" in mime:
        return HLS
    if "dash" in mime:
        return DASH
    return VIDEO


def _css_urls(css: str) -> Iterator[str]:
    for count, m in enumerate(_CSS_URL.finditer(css)):
        if count >= 200:
            return
        yield m.group(2)


def _jsonld_media(text: str) -> list[tuple[str, str]]:
    """URLs of VideoObject/ImageObject thumbnails and content in one JSON-LD block; malformed JSON gives []."""
    try:
        data = json.loads(text.strip().rstrip(";"))
    except (ValueError, RecursionError):
        return []
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, int]] = [(data, 0)]
    visited = 0
    while stack and visited < 10_000:
        value, depth = stack.pop()
        visited += 1
        if depth > 32:
            continue
        if isinstance(value, list):
            stack.extend((v, depth + 1) for v in reversed(value[:1000]))
        elif isinstance(value, dict):
            kind = value.get("@type")
            types = set(kind) if isinstance(kind, list) else {kind}
            relevant = bool(types & {"VideoObject", "ImageObject", "Clip", "MediaObject"})
            for key, item in value.items():
                if relevant and key in _JSONLD_URL_KEYS:
                    default = IMAGE if "ImageObject" in types else _JSONLD_URL_KEYS[key]
                    found.extend((u, default) for u in _strings(item))
                elif isinstance(item, (dict, list)):
                    stack.append((item, depth + 1))
    return found[:1000]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value[:100]:
            if isinstance(item, str):
                yield item
            elif isinstance(item, dict) and isinstance(item.get("url") or item.get("contentUrl"), str):
                yield item.get("url") or item["contentUrl"]
    elif isinstance(value, dict) and isinstance(value.get("url") or value.get("contentUrl"), str):
        yield value.get("url") or value["contentUrl"]


def same_site(url: str, hosts: Iterable[str]) -> bool:
    """Whether ``url``'s host is one of ``hosts`` or a subdomain of one (the crawl stays on the seeds' sites)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in hosts)
