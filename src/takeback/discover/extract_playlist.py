"""Streaming playlists (HLS ``.m3u8``, DASH ``.mpd``): which few segments to fetch to hash a video.

Only the start of a stream is looked at: the master playlist's first variant, then its first segments (plus the
initialisation segment fragmented MP4 needs before any media segment decodes).  Pure functions over bytes; the
input is capped and a malformed playlist gives an empty result, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from takeback.discover.extract import resolve

MAX_PLAYLIST_BYTES = 1024 * 1024
FIRST_SEGMENTS = 3


@dataclass(frozen=True, slots=True)
class Playlist:
    #: Variant playlists to follow (an HLS master lists these; empty for a media playlist).
    variants: tuple[str, ...] = ()
    #: Initialisation segment (fMP4 ``#EXT-X-MAP`` / DASH ``initialization``) to prepend to each media segment.
    init: str | None = None
    #: The first media segments, in order.
    segments: tuple[str, ...] = field(default_factory=tuple)


_ATTR_URI = re.compile(r'URI="([^"]{1,2048})"')


def parse_hls(body: bytes, url: str, *, first: int = FIRST_SEGMENTS) -> Playlist:
    """A master playlist gives its variants (the first is followed); a media playlist its first segments."""
    text = body[:MAX_PLAYLIST_BYTES].decode("utf-8", "replace")
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        return Playlist()
    variants: list[str] = []
    segments: list[str] = []
    init: str | None = None
    expect_variant = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#EXT-X-STREAM-INF"):
                expect_variant = True
            elif line.startswith("#EXT-X-MAP") and init is None:
                m = _ATTR_URI.search(line)
                init = resolve(url, m.group(1)) if m else None
            continue
        target = resolve(url, line)
        if target is None:
            expect_variant = False
            continue
        if expect_variant:
            variants.append(target)
            expect_variant = False
        elif len(segments) < first:
            segments.append(target)
        if len(variants) >= 16 or len(segments) >= first:
            break
    return Playlist(variants=tuple(variants), init=init, segments=tuple(segments))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: Element, name: str) -> list[Element]:
    return [child for child in node if _local(child.tag) == name]


def _template(pattern: str, rep_id: str, bandwidth: str, number: int | None = None, time: int | None = None) -> str:
    def sub(m: re.Match[str]) -> str:
        key, fmt = m.group(1), m.group(2)
        if key == "":
            return "$"
        value: object = {"RepresentationID": rep_id, "Bandwidth": bandwidth, "Number": number, "Time": time}.get(
            key, m.group(0)
        )
        if fmt and isinstance(value, int) and re.fullmatch(r"%0\d{1,2}d", fmt):
            return fmt % value
        return str(value)

    return re.sub(r"\$(RepresentationID|Bandwidth|Number|Time|)(%0\d{1,2}d)?\$", sub, pattern)


def parse_dash(body: bytes, url: str, *, first: int = FIRST_SEGMENTS) -> Playlist:
    """The first video representation's initialisation and first segments (SegmentTemplate with numbers or a
    timeline, SegmentList, or a single BaseURL file)."""
    try:
        root = SafeET.fromstring(body[:MAX_PLAYLIST_BYTES], forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return Playlist()
    if _local(root.tag) != "MPD":
        return Playlist()
    base = url
    for node in _children(root, "BaseURL")[:1]:
        base = resolve(base, (node.text or "").strip()) or base
    periods = _children(root, "Period")
    if not periods:
        return Playlist()
    period = periods[0]
    for node in _children(period, "BaseURL")[:1]:
        base = resolve(base, (node.text or "").strip()) or base
    sets = _children(period, "AdaptationSet")

    def is_video(s: Element) -> bool:
        kind = (s.get("contentType") or s.get("mimeType") or "").lower()
        reps = _children(s, "Representation")
        return "video" in kind or any("video" in (r.get("mimeType") or "") for r in reps)

    chosen = next((s for s in sets if is_video(s)), sets[0] if sets else None)
    if chosen is None:
        return Playlist()
    reps = _children(chosen, "Representation")
    if not reps:
        return Playlist()
    rep = reps[0]
    for holder in (chosen, rep):
        for node in _children(holder, "BaseURL")[:1]:
            base = resolve(base, (node.text or "").strip()) or base
    rep_id, bandwidth = rep.get("id", ""), rep.get("bandwidth", "")
    template = next(iter(_children(rep, "SegmentTemplate") or _children(chosen, "SegmentTemplate")), None)
    seg_list = next(iter(_children(rep, "SegmentList") or _children(chosen, "SegmentList")), None)
    init: str | None = None
    segments: list[str] = []
    if template is not None:
        if template.get("initialization"):
            init = resolve(base, _template(template.get("initialization", ""), rep_id, bandwidth))
        media = template.get("media")
        if media:
            timeline = next(iter(_children(template, "SegmentTimeline")), None)
            try:
                start = int(template.get("startNumber", "1"))
            except ValueError:
                start = 1
            times = _timeline_times(timeline, first) if timeline is not None else []
            for i in range(first):
                t = times[i] if i < len(times) else None
                if timeline is not None and t is None:
                    break
                segments.append(_template(media, rep_id, bandwidth, number=start + i, time=t))
    elif seg_list is not None:
        for node in _children(seg_list, "Initialization")[:1]:
            init = resolve(base, node.get("sourceURL"))
        segments = [n.get("media", "") for n in _children(seg_list, "SegmentURL")[:first]]
    else:
        segments = [base]  # one file; the fetcher's size cap keeps it to its start
    resolved = tuple(u for u in (resolve(base, s) for s in segments) if u is not None)
    return Playlist(init=init, segments=resolved)


def _timeline_times(timeline: Element, first: int) -> list[int]:
    times: list[int] = []
    current = 0
    for s in _children(timeline, "S"):
        try:
            if s.get("t") is not None:
                current = int(s.get("t", "0"))
            duration = int(s.get("d", "0"))
            repeat = int(s.get("r", "0"))
        except ValueError:
            break
        for _ in range(max(0, min(repeat, first)) + 1):
            times.append(current)
            current += duration
            if len(times) >= first:
                return times
    return times
