"""The crawler: from seed URLs (and the sites' sitemaps) through same-site links, fetching each page's media,
hashing it in a worker pool and matching it against a case's banks; pages and URLs are also checked for the case's
names.  What it sees is handed to a callback as ``Observation``s (the scan turns them into findings).

Bounded everywhere: pages (``max_pages``) and link depth (``max_depth``), media fetched (``max_media``), bytes per
page and per media file (media get smaller caps), playlists expanded to their first segments only.  The crawl stays
on the seeds' sites for pages (subdomains included) but fetches media wherever the pages point (CDNs).  A fetch or
decode error is logged (``CrawlStats.error_log``) and the crawl goes on; all network access goes through the
``Fetcher`` (SSRF guard, robots.txt, per-host politeness).

Concurrency: page and media fetches are asyncio tasks; HTML extraction and media hashing, which are CPU-bound, run
off the event loop so the fetches keep flowing meanwhile: extraction in a thread pool, hashing in worker processes
(``hash_pool``, when ``hash_processes`` > 0: hashing holds the GIL, so only processes put a second core to work)
or else in the thread pool.  Matching against a small bank is cheaper than a hand-off and runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from takeback.discover import sniff
from takeback.discover.crawl_match import MatchBatcher, MediaMatcher
from takeback.discover.extract import (
    DASH,
    HLS,
    IMAGE,
    VIDEO,
    MediaRef,
    PageExtract,
    extract_html,
    media_kind,
    same_site,
)
from takeback.discover.extract_playlist import Playlist, parse_dash, parse_hls
from takeback.discover.extract_sitemap import Sitemap, parse_sitemap, robots_sitemaps
from takeback.discover.fetch import FetchError, FetchResult
from takeback.discover.hash_pool import HashPool
from takeback.discover.media_hash import HashFailure, MediaHashes, hash_media
from takeback.signals.variants import CRAWL_QUERY_MODES, Mode
from takeback.store.findings import url_key

#: Entries kept in the crawl's error log (the count keeps going).
ERROR_LOG_MAX = 200
#: Name-hit fields kept as evidence.
_HIT_FIELDS = ("name", "name_kind", "variant", "matched", "where", "score", "match")
_HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
_MEDIA_ACCEPT = "image/*,video/*,application/vnd.apple.mpegurl,application/dash+xml;q=0.9,*/*;q=0.5"
_XML_ACCEPT = "application/xml,text/xml,*/*;q=0.5"
_GONE = frozenset({404, 410, 451})
#: Banks up to this many signals are matched on the event loop, the lookups of one loop turn together (a lookup's
#: fixed cost is most of it for a small bank); bigger banks are matched one by one in the executor.
_INLINE_MATCH_SIGNALS = 2000
#: Pages up to this size are parsed on the event loop (~0.3 ms for 10 kB, less than a hand-off to a thread costs in
#: GIL traffic); bigger ones, which can take far longer, in the executor so fetches keep flowing.
_INLINE_PARSE_BYTES = 64 * 1024


class FetcherLike(Protocol):
    async def fetch(self, url: str, *, max_bytes: int | None = None, accept: str | None = None) -> FetchResult: ...


class NameMatching(Protocol):
    def match_url(self, url: str, title: str | None = None) -> Sequence[Any]: ...
    def match_text(self, text: str, where: str = "text") -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    max_pages: int = 200
    max_depth: int = 3
    max_media: int = 2000
    page_max_bytes: int = 2 * 1024 * 1024
    image_max_bytes: int = 8 * 1024 * 1024
    #: Clips and segments: enough for a preview loop or a stream's first segments, never a whole film.
    video_max_bytes: int = 16 * 1024 * 1024
    playlist_max_bytes: int = 1024 * 1024
    sitemap_max_bytes: int = 10 * 1024 * 1024
    #: Sitemap files read per site (an index can list thousands).
    max_sitemaps: int = 10
    use_sitemaps: bool = True
    page_workers: int = 8
    media_workers: int = 16
    #: Threads for HTML extraction and hashing (ignored when the caller passes an executor).
    hash_workers: int = 2
    #: Worker processes for hashing (``hash_pool``); 0 hashes in the thread pool instead (no start-up cost, one core).
    hash_processes: int = 0
    #: Query variants computed for each fetched medium besides its plain hashes (``signals.variants``).  They find
    #: letterboxed, framed and cropped copies but cost more than the plain PDQ (on a 160x120 thumbnail: plain
    #: 0.4 ms, borders+smooth 0.8 ms, with the crop grid 8 ms or more), so a crawl adds the cheap two by default
    #: and the grid only when asked (docs/robustness.md).
    query_modes: frozenset[Mode] = CRAWL_QUERY_MODES
    #: Segments of a stream hashed (after its initialisation segment).
    stream_segments: int = 2


@dataclass(slots=True)
class CrawlStats:
    pages: int = 0
    media_fetched: int = 0
    media_hashed: int = 0
    media_matched: int = 0
    name_hits: int = 0
    errors: int = 0
    bytes: int = 0
    queued_pages: int = 0
    queued_media: int = 0
    error_log: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "media_fetched": self.media_fetched,
            "media_hashed": self.media_hashed,
            "media_matched": self.media_matched,
            "name_hits": self.name_hits,
            "errors": self.errors,
            "bytes": self.bytes,
            "error_log": list(self.error_log),
        }


@dataclass(frozen=True, slots=True)
class Observation:
    """Something worth a finding: protected media at ``url`` (kind "media") or a name on a page/URL ("name")."""

    url: str
    kind: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaOutcome:
    """What fetching and matching one media URL gave.  ``state``: "matched", "no_match", "gone" (404/410/451),
    "not_media" (the bytes are no image or video, e.g. a placeholder page), or "error" (could not tell)."""

    url: str
    state: str
    http_status: int | None
    evidence: dict[str, Any]


_clock: list[Any] = [-1, ""]


def now_iso() -> str:
    """The current UTC time to the second, as ISO 8601 (formatted once per second: every fetch is stamped)."""
    second = int(time.time())
    if second != _clock[0]:
        _clock[0], _clock[1] = second, datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
    return str(_clock[1])


def fetch_evidence(result: FetchResult) -> dict[str, Any]:
    """The HTTP facts of a fetch that a notice can cite."""
    return {
        "http_status": result.status,
        "final_url": result.final_url,
        "redirects": list(result.redirects[:10]),
        "server_ip": result.server_ip,
        "content_type": result.content_type or result.headers.get("content-type", "")[:100],
        "fetched_at": now_iso(),
    }


def hit_evidence(hit: Any) -> dict[str, Any]:
    return {name: getattr(hit, name) for name in _HIT_FIELDS if hasattr(hit, name)}


def hashes_evidence(hashes: MediaHashes) -> dict[str, Any]:
    return {
        "kind": hashes.kind,
        "size": hashes.size,
        "md5": hashes.md5,
        "sha256": hashes.sha256,
        "width": hashes.width,
        "height": hashes.height,
        "format": hashes.format,
        "pdq": [{"hash": f.pdq, "quality": f.quality, "t": f.timestamp} for f in hashes.frames[:8]],
    }


def _strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


class Crawler:
    """One crawl (or re-check) of one case.  ``on_observation`` is called from the event loop thread."""

    def __init__(
        self,
        fetcher: FetcherLike,
        matcher: MediaMatcher | None,
        *,
        names: NameMatching | None = None,
        options: CrawlOptions | None = None,
        on_observation: Callable[[Observation], Awaitable[None] | None] | None = None,
        on_progress: Callable[[CrawlStats], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.matcher = matcher
        self.names = names
        self.options = options or CrawlOptions()
        self.on_observation = on_observation
        self.on_progress = on_progress
        self.stats = CrawlStats()
        self._executor = executor
        self._own_executor = executor is None
        self._hash_pool: HashPool | None = None
        self._batcher: MatchBatcher | None = None
        self._seen_pages: set[str] = set()
        self._seen_media: set[str] = set()
        #: Exact URL texts whose key is already in the seen sets: a repeat is dropped without computing its key.
        self._known_pages: set[str] = set()
        self._known_media: set[str] = set()
        self._hosts: set[str] = set()
        self._pages: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._media: asyncio.Queue[tuple[MediaRef, dict[str, Any]]] = asyncio.Queue()

    # --- bookkeeping -----------------------------------------------------------------------------------------------

    def _error(self, url: str, code: str, message: str, what: str) -> None:
        self.stats.errors += 1
        if len(self.stats.error_log) < ERROR_LOG_MAX:
            self.stats.error_log.append(
                {"url": url[:500], "code": code, "message": message[:300], "what": what, "at": now_iso()}
            )

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)

    async def _observe(self, observation: Observation) -> None:
        if self.on_observation is not None:
            outcome = self.on_observation(observation)
            if asyncio.iscoroutine(outcome):
                await outcome

    async def _cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _fetch(self, url: str, max_bytes: int, accept: str, what: str) -> FetchResult | None:
        result = await self._try_fetch(url, max_bytes, accept, what)
        return result if isinstance(result, FetchResult) else None

    async def _try_fetch(self, url: str, max_bytes: int, accept: str, what: str) -> FetchResult | dict[str, Any]:
        """The result, or the error (logged) as evidence: {"code", "message"}."""
        try:
            result = await self.fetcher.fetch(url, max_bytes=max_bytes, accept=accept)
        except FetchError as exc:
            self._error(url, exc.code, exc.message, what)
            return {"code": exc.code, "message": exc.message[:300]}
        self.stats.bytes += len(result.body)
        return result

    def _queue_page(self, url: str, depth: int) -> None:
        if url in self._known_pages:  # this very text was queued already (every page links home, next, up...)
            return
        key = url_key(_strip_fragment(url))
        if key in self._seen_pages:
            self._known_pages.add(url)
            return
        if len(self._seen_pages) >= self.options.max_pages:
            return
        if depth > self.options.max_depth or not same_site(url, self._hosts):
            return
        self._seen_pages.add(key)
        self._known_pages.add(url)
        self.stats.queued_pages += 1
        self._pages.put_nowait((_strip_fragment(url), depth))

    def _queue_media(self, ref: MediaRef, context: dict[str, Any]) -> None:
        if ref.url in self._known_media:
            return
        key = url_key(ref.url)
        if key in self._seen_media:
            self._known_media.add(ref.url)
            return
        if len(self._seen_media) >= self.options.max_media:
            return
        self._seen_media.add(key)
        self._known_media.add(ref.url)
        self.stats.queued_media += 1
        self._media.put_nowait((ref, context))

    # --- the crawl -------------------------------------------------------------------------------------------------

    async def run(self, seeds: Sequence[str]) -> CrawlStats:
        """Crawl from ``seeds`` until the frontier is empty or the budgets are spent."""
        if self._own_executor:
            self._executor = ThreadPoolExecutor(max_workers=max(1, self.options.hash_workers))
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.options.hash_processes > 0:
                    pool = HashPool(self.options.hash_processes, query_modes=self.options.query_modes)
                    self._hash_pool = await stack.enter_async_context(pool)
                await self._run(seeds)
        finally:
            self._hash_pool = None
            if self._own_executor and self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
        self._progress()
        return self.stats

    async def _run(self, seeds: Sequence[str]) -> None:
        """Queue the seeds, run the page and media workers until both queues are drained."""
        for seed in seeds:
            host = (urlsplit(seed).hostname or "").rstrip(".").lower()
            if host:
                self._hosts.add(host)
        for seed in seeds:
            self._queue_page(seed, 0)
        workers = [asyncio.create_task(self._page_worker()) for _ in range(max(1, self.options.page_workers))]
        workers += [asyncio.create_task(self._media_worker()) for _ in range(max(1, self.options.media_workers))]
        try:
            if self.options.use_sitemaps:
                await self._sitemaps(seeds)
            await self._pages.join()
            await self._media.join()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _sitemaps(self, seeds: Sequence[str]) -> None:
        origins: dict[str, None] = {}
        for seed in seeds:
            parts = urlsplit(seed)
            if parts.scheme in ("http", "https") and parts.netloc:
                origins[f"{parts.scheme}://{parts.netloc}"] = None
        for origin in origins:
            maps: list[str] = []
            robots = await self._fetch(origin + "/robots.txt", 512 * 1024, "text/plain", "robots")
            if robots is not None and robots.status == 200:
                maps = robots_sitemaps(robots.body, robots.final_url)
            if not maps:
                maps = [origin + "/sitemap.xml"]
            done = 0
            pending = list(maps)
            while pending and done < self.options.max_sitemaps:
                url = pending.pop(0)
                done += 1
                result = await self._fetch(url, self.options.sitemap_max_bytes, _XML_ACCEPT, "sitemap")
                if result is None or result.status != 200:
                    continue
                parsed: Sitemap = await self._cpu(parse_sitemap, result.body, result.final_url)
                pending.extend(parsed.sitemaps)
                for page in parsed.pages:
                    self._queue_page(page, 1)
                context = {"url": result.final_url, "source": "sitemap"}
                for ref in parsed.media:
                    self._queue_media(ref, context)

    async def _page_worker(self) -> None:
        while True:
            url, depth = await self._pages.get()
            try:
                await self._crawl_page(url, depth)
            except Exception as exc:  # one page's surprise must not end the crawl
                self._error(url, "internal", f"{type(exc).__name__}: {exc}", "page")
            finally:
                self._pages.task_done()
                self._progress()

    async def _media_worker(self) -> None:
        while True:
            ref, context = await self._media.get()
            try:
                outcome = await self.check_media(ref, context)
                if outcome.state == "matched":
                    self.stats.media_matched += 1
                    await self._observe(Observation(ref.url, "media", outcome.evidence))
            except Exception as exc:
                self._error(ref.url, "internal", f"{type(exc).__name__}: {exc}", "media")
            finally:
                self._media.task_done()
                self._progress()

    async def _crawl_page(self, url: str, depth: int) -> None:
        result = await self._fetch(url, self.options.page_max_bytes, _HTML_ACCEPT, "page")
        if result is None:
            return
        self.stats.pages += 1
        kind = result.content_type
        if kind in sniff.IMAGE_TYPES or kind in sniff.VIDEO_TYPES or kind in sniff.PLAYLIST_TYPES:
            # A seed or link that is itself media: hash what we already have.
            ref = MediaRef(url, media_kind(url, VIDEO if kind in sniff.VIDEO_TYPES else IMAGE), "link")
            if kind == sniff.HLS:
                ref = MediaRef(url, HLS, "link")
            elif kind == sniff.DASH:
                ref = MediaRef(url, DASH, "link")
            self._seen_media.add(url_key(url))
            outcome = await self.check_media(ref, {"url": url, "source": "link"}, fetched=result)
            if outcome.state == "matched":
                self.stats.media_matched += 1
                await self._observe(Observation(url, "media", outcome.evidence))
            return
        if result.status >= 400 or (kind and kind != sniff.HTML and not kind.startswith("text/")):
            return
        declared = result.headers.get("content-type", "")
        if len(result.body) <= _INLINE_PARSE_BYTES:
            page: PageExtract = extract_html(result.body, result.final_url, content_type=declared)
        else:
            page = await self._cpu(lambda: extract_html(result.body, result.final_url, content_type=declared))
        html_sha256 = hashlib.sha256(result.body).hexdigest()
        context = {
            "url": url,
            "final_url": result.final_url,
            "title": page.title[:300],
            "html_sha256": html_sha256,
            "http_status": result.status,
            "server_ip": result.server_ip,
        }
        if self.names is not None:
            hits = [*self.names.match_url(result.final_url, page.title or None)]
            if url != result.final_url:
                hits += self.names.match_url(url)
            if page.text:
                hits += self.names.match_text(page.text, "text")
            if hits:
                self.stats.name_hits += 1
                best: dict[tuple[str, str], Any] = {}
                for hit in hits:
                    key = (str(getattr(hit, "name", "")), str(getattr(hit, "where", "")))
                    if key not in best or getattr(hit, "score", 0) > getattr(best[key], "score", 0):
                        best[key] = hit
                ordered = sorted(best.values(), key=lambda h: -int(getattr(h, "score", 0)))
                evidence = {
                    **fetch_evidence(result),
                    "title": page.title[:300],
                    "html_sha256": html_sha256,
                    "html_size": len(result.body),
                    "names": [hit_evidence(h) for h in ordered[:20]],
                }
                await self._observe(Observation(url, "name", evidence))
        for ref in page.media:
            self._queue_media(ref, context)
        for link in page.links:
            self._queue_page(link, depth + 1)

    # --- media -----------------------------------------------------------------------------------------------------

    async def check_media(
        self, ref: MediaRef, context: dict[str, Any] | None = None, *, fetched: FetchResult | None = None
    ) -> MediaOutcome:
        """Fetch (unless ``fetched``), hash and match one media URL; playlists are expanded to their first
        segments.  Used by the crawl and by re-checks."""
        context = context or {}
        outcome = await self._check_media(ref, context, fetched)
        outcome.evidence.setdefault("media_kind", ref.kind)
        return outcome

    async def _check_media(self, ref: MediaRef, context: dict[str, Any], fetched: FetchResult | None) -> MediaOutcome:
        if ref.kind in (HLS, DASH):
            return await self._check_stream(ref, context, fetched)
        cap = self.options.image_max_bytes if ref.kind == IMAGE else self.options.video_max_bytes
        result = fetched or await self._try_fetch(ref.url, cap, _MEDIA_ACCEPT, "media")
        if not isinstance(result, FetchResult):
            return MediaOutcome(ref.url, "error", None, {"fetch_error": result, "page": context})
        self.stats.media_fetched += 1
        evidence: dict[str, Any] = {**fetch_evidence(result), "found_via": ref.source, "page": context}
        if result.status in _GONE:
            return MediaOutcome(ref.url, "gone", result.status, evidence)
        if result.status >= 400:
            self._error(ref.url, "http_status", f"HTTP {result.status}", "media")
            return MediaOutcome(ref.url, "error", result.status, evidence)
        if result.content_type in sniff.PLAYLIST_TYPES:
            kind = HLS if result.content_type == sniff.HLS else DASH
            result_ref = MediaRef(ref.url, kind, ref.source)
            outcome = await self._check_stream(result_ref, context, result)
            outcome.evidence["media_kind"] = kind
            return outcome
        return await self._hash_and_match(ref.url, result.body, result.status, evidence)

    async def _hash_and_match(self, url: str, body: bytes, status: int, evidence: dict[str, Any]) -> MediaOutcome:
        if self._hash_pool is not None:
            hashed: MediaHashes | HashFailure = await self._hash_pool.hash(body)
        else:
            hashed = await self._cpu(partial(hash_media, query_modes=self.options.query_modes), body)
        if isinstance(hashed, HashFailure):
            evidence["hash_error"] = {"code": hashed.code, "reason": hashed.reason}
            evidence.update(size=hashed.size, md5=hashed.md5, sha256=hashed.sha256)
            if hashed.code == "not-media":
                return MediaOutcome(url, "not_media", status, evidence)
            self._error(url, hashed.code, hashed.reason, "hash")
            return MediaOutcome(url, "error", status, evidence)
        self.stats.media_hashed += 1
        evidence["media"] = hashes_evidence(hashed)
        if self.matcher is None:
            matches = []
        elif len(self.matcher) <= _INLINE_MATCH_SIGNALS:
            if self._batcher is None:
                self._batcher = MatchBatcher(self.matcher)
            matches = await self._batcher.match(hashed)
        else:
            matches = await self._cpu(self.matcher.match, hashed)
        if not matches:
            return MediaOutcome(url, "no_match", status, evidence)
        evidence["matches"] = [m.as_evidence() for m in matches[:20]]
        return MediaOutcome(url, "matched", status, evidence)

    async def _check_stream(self, ref: MediaRef, context: dict[str, Any], fetched: FetchResult | None) -> MediaOutcome:
        result = fetched or await self._try_fetch(ref.url, self.options.playlist_max_bytes, _MEDIA_ACCEPT, "playlist")
        if not isinstance(result, FetchResult):
            return MediaOutcome(ref.url, "error", None, {"fetch_error": result, "page": context})
        evidence: dict[str, Any] = {**fetch_evidence(result), "found_via": ref.source, "page": context}
        if result.status in _GONE:
            return MediaOutcome(ref.url, "gone", result.status, evidence)
        if result.status >= 400:
            self._error(ref.url, "http_status", f"HTTP {result.status}", "playlist")
            return MediaOutcome(ref.url, "error", result.status, evidence)
        parse = parse_hls if ref.kind == HLS else parse_dash
        playlist: Playlist = parse(result.body, result.final_url)
        if playlist.variants and not playlist.segments:
            cap = self.options.playlist_max_bytes
            variant = await self._fetch(playlist.variants[0], cap, _MEDIA_ACCEPT, "playlist")
            if variant is None or variant.status >= 400:
                return MediaOutcome(ref.url, "error", result.status, evidence)
            playlist = parse_hls(variant.body, variant.final_url)
            evidence["variant"] = variant.final_url
        if not playlist.segments:
            return MediaOutcome(ref.url, "not_media", result.status, evidence)
        init = b""
        if playlist.init:
            fetched_init = await self._fetch(playlist.init, self.options.video_max_bytes, _MEDIA_ACCEPT, "segment")
            if fetched_init is None or fetched_init.status >= 400:
                return MediaOutcome(ref.url, "error", result.status, evidence)
            init = fetched_init.body
        last = MediaOutcome(ref.url, "no_match", result.status, evidence)
        for segment_url in playlist.segments[: self.options.stream_segments]:
            segment = await self._fetch(segment_url, self.options.video_max_bytes, _MEDIA_ACCEPT, "segment")
            if segment is None or segment.status >= 400:
                continue
            self.stats.media_fetched += 1
            seg_evidence = {**evidence, "segment": segment.final_url, "segment_status": segment.status}
            outcome = await self._hash_and_match(ref.url, init + segment.body, result.status, seg_evidence)
            if outcome.state == "matched":
                return outcome
            if outcome.state == "no_match":
                last = outcome
        return last


async def crawl(
    fetcher: FetcherLike,
    seeds: Sequence[str],
    matcher: MediaMatcher | None,
    *,
    names: NameMatching | None = None,
    options: CrawlOptions | None = None,
    on_observation: Callable[[Observation], Awaitable[None] | None] | None = None,
    on_progress: Callable[[CrawlStats], None] | None = None,
    executor: Executor | None = None,
) -> CrawlStats:
    crawler = Crawler(
        fetcher,
        matcher,
        names=names,
        options=options,
        on_observation=on_observation,
        on_progress=on_progress,
        executor=executor,
    )
    return await crawler.run(seeds)
