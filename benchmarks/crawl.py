"""Crawl throughput and recall: takeback's crawler against a plain Scrapy crawl of the same loopback site.

The site (generated deterministically, cached under --cache-dir) has one index page, --hubs hub pages and --pages
article pages (index -> hubs -> articles, plus previous/next links between articles), each article showing
--images-per-page thumbnail JPEGs (160x120 and thereabouts).  A few dozen of the thumbnails are planted copies of
"banked" scikit-image photos, transformed: thumbnail resize, JPEG re-encode at quality 40, a 1 % crop, a 1 % black
border, a 240-pixel-wide copy.  Whether a planted copy is "within PDQ's reach" is decided independently of takeback,
by Meta's reference ``pdqhash`` (distance to the original <= 31); recall is reported for those and, separately, for
all planted copies.

The site is served from memory by a minimal asyncio HTTP/1.1 server (keep-alive, precomputed responses) in its own
process, so both crawlers see the same fast server.  Both crawl the same URLs: robots.txt, every HTML page and every
image, once.

* anchor: Scrapy (``CrawlerProcess`` in a subprocess, robots.txt obeyed, cookies off), following ``a[href]`` and
  ``img[src]``, doing nothing with the images (no hashing);
* takeback: ``takeback.discover.crawl.crawl`` with the guarded ``Fetcher`` (SSRF guard with the loopback test
  allow-list, robots.txt, size caps, sniffing) and a ``MediaMatcher`` over the banked photos' PDQ hashes: every
  image is fetched, hashed (PDQ, MD5, SHA-256) and matched; planted copies must come back as observations.

Both use the same concurrency per host (--concurrency).  Figures are wall-clock over the whole crawl (start-up of
Scrapy's process excluded: it reports its own time from its first request to its last response).

Run:

    /work/venv/bin/pip install -e ".[dev,bench]"
    /work/venv/bin/python benchmarks/crawl.py                 # 5,000 pages, 20,000 images
    /work/venv/bin/python benchmarks/crawl.py --pages 500     # quick look
"""

from __future__ import annotations

import os

# One BLAS thread: PDQ's small matrix products are slower multi-threaded, and the cores are shared with the server.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import pickle  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_lines  # noqa: E402

BANKED = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera", "moon", "coins", "cell",
          "logo", "horse", "text")  # fmt: skip
TRANSFORMS = ("thumb", "thumb_q40", "crop1", "border1", "wide240")
THUMB_W = 160
PDQ_REACH = 31
ALLOW = ("127.0.0.1/32",)


# --- the site ------------------------------------------------------------------------------------------------------


@dataclass
class Site:
    #: path -> (content type, body)
    files: dict[str, tuple[str, bytes]]
    pages: list[str]
    images: list[str]
    #: image path -> (banked photo, transform, reference pdqhash distance to the original)
    planted: dict[str, tuple[str, str, int]]
    #: banked photo -> PNG bytes of the original (what the person would have hashed)
    originals: dict[str, bytes] = field(default_factory=dict)


def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def _thumb(img: Image.Image, width: int = THUMB_W) -> Image.Image:
    return img.resize((width, max(1, round(width * img.size[1] / img.size[0]))), Image.Resampling.LANCZOS)


def _transform(img: Image.Image, how: str) -> bytes:
    w, h = img.size
    if how == "thumb":
        return _jpeg(_thumb(img))
    if how == "thumb_q40":
        return _jpeg(_thumb(img), 40)
    if how == "crop1":
        dx, dy = max(1, w // 100), max(1, h // 100)
        return _jpeg(_thumb(img.crop((dx, dy, w - dx, h - dy))))
    if how == "border1":
        return _jpeg(_thumb(ImageOps.expand(img, border=max(1, w // 100), fill=(0, 0, 0))))
    if how == "wide240":
        return _jpeg(_thumb(img, 240))
    raise ValueError(how)


def _filler(rng: np.random.Generator) -> bytes:
    """A thumbnail that is nobody's photo: a smooth random colour field with a little grain."""
    small = Image.fromarray(rng.integers(0, 256, (3 + int(rng.integers(0, 4)), 4 + int(rng.integers(0, 4)), 3),
                                         dtype=np.uint8))  # fmt: skip
    height = int(rng.integers(100, 140))
    img = np.asarray(small.resize((THUMB_W, height), Image.Resampling.BICUBIC), dtype=np.int16)
    img = img + rng.normal(0, 3, img.shape).astype(np.int16)
    return _jpeg(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), 80)


def _reference_pdq(data: bytes) -> str:
    import pdqhash

    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    bits, _quality = pdqhash.compute(rgb)
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _hex_distance(a: str, b: str) -> int:
    return int(bin(int(a, 16) ^ int(b, 16)).count("1"))


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width"></head><body>{body}</body></html>'
    ).encode()


def build_site(pages: int, hubs: int, images_per_page: int, seed: int = 7) -> Site:
    from takeback import samples

    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    files: dict[str, tuple[str, bytes]] = {}
    image_paths = [f"/img/{i // 1000:03d}/{i}.jpg" for i in range(pages * images_per_page)]
    slots = pick.sample(range(len(image_paths)), len(BANKED) * len(TRANSFORMS))
    planted: dict[str, tuple[str, str, int]] = {}
    originals: dict[str, bytes] = {}
    planted_bytes: dict[str, bytes] = {}
    slot = iter(slots)
    for name in BANKED:
        img = Image.fromarray(samples.photo(name))
        originals[name] = _png(img)
        reference = _reference_pdq(originals[name])
        for how in TRANSFORMS:
            data = _transform(img, how)
            path = image_paths[next(slot)]
            planted_bytes[path] = data
            planted[path] = (name, how, _hex_distance(reference, _reference_pdq(data)))
    for path in image_paths:
        files[path] = ("image/jpeg", planted_bytes.get(path) or _filler(rng))
    page_paths = [f"/articles/{i}.html" for i in range(pages)]
    per_hub = -(-pages // hubs)
    hub_paths = [f"/hub/{h}.html" for h in range(hubs)]
    files["/"] = (
        "text/html; charset=utf-8",
        _page("bench site", "".join(f'<a href="{p}">hub {p}</a> ' for p in hub_paths)),
    )
    for h, hub in enumerate(hub_paths):
        links = "".join(f'<li><a href="{p}">article</a></li>' for p in page_paths[h * per_hub : (h + 1) * per_hub])
        files[hub] = ("text/html; charset=utf-8", _page(f"hub {h}", f'<a href="/">home</a><ul>{links}</ul>'))
    words = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do")
    for i, path in enumerate(page_paths):
        text = " ".join(pick.choice(words) for _ in range(200))
        imgs = "".join(
            f'<figure><img src="{image_paths[i * images_per_page + k]}" alt="picture {k}" width="160" height="120">'
            f"</figure>"
            for k in range(images_per_page)
        )
        nav = f'<a href="/">home</a> <a href="{page_paths[(i + 1) % pages]}">next</a> '
        nav += f'<a href="{page_paths[i - 1]}">previous</a> <a href="{hub_paths[i // per_hub]}">up</a>'
        files[path] = ("text/html; charset=utf-8", _page(f"article {i}", f"<nav>{nav}</nav><p>{text}</p>{imgs}"))
    files["/robots.txt"] = ("text/plain", b"User-agent: *\nDisallow: /admin/\n")
    return Site(files, ["/", *hub_paths, *page_paths], image_paths, planted, originals)


def load_site(cache_dir: Path, pages: int, hubs: int, images_per_page: int) -> tuple[Site, Path, float]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"site-{pages}-{hubs}-{images_per_page}-v1.pickle"
    start = time.perf_counter()
    if path.exists():
        with path.open("rb") as fh:
            site = Site(**pickle.load(fh))
    else:
        site = build_site(pages, hubs, images_per_page)
        with path.open("wb") as fh:  # plain data only, so any process can load it
            pickle.dump(dataclasses.asdict(site), fh, protocol=pickle.HIGHEST_PROTOCOL)
    return site, path, time.perf_counter() - start


# --- the server (own process) ------------------------------------------------------------------------------------


def _serve(site_file: str, conn: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with open(site_file, "rb") as fh:
        files: dict[str, tuple[str, bytes]] = pickle.load(fh)["files"]
    responses: dict[bytes, bytes] = {}
    for path, (ctype, body) in files.items():
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
        responses[path.encode()] = head.encode() + body
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"
    served = [0]

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > 65536:
                        self.transport.close()
                    return
                line = self.buffer[: self.buffer.find(b"\r\n")]
                self.buffer = self.buffer[end + 4 :]
                parts = line.split(b" ")
                target = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b"/"
                served[0] += 1
                self.transport.write(responses.get(target, not_found))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=1024)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # any message: stop
        server.close()

    asyncio.run(main())


class SiteServer:
    def __init__(self, site_file: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(str(site_file), child), daemon=True)
        self.process.start()
        self.port = int(self._conn.recv())
        self.root = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self._conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


# --- Scrapy (anchor, own process) ----------------------------------------------------------------------------------


def scrapy_worker(root: str, concurrency: int) -> None:
    """Runs in a subprocess; prints one JSON line with what it fetched and how long it took."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    counts = {"pages": 0, "images": 0, "bytes": 0, "other": 0}
    times: dict[str, float] = {}

    class Bench(scrapy.Spider):
        name = "bench"
        start_urls = (root,)

        async def start(self) -> Any:
            times["start"] = time.perf_counter()
            yield scrapy.Request(root, callback=self.parse)

        def parse(self, response: Any) -> Any:
            times["end"] = time.perf_counter()
            counts["pages"] += 1
            counts["bytes"] += len(response.body)
            for href in response.css("a::attr(href)").getall():
                yield response.follow(href, self.parse)
            for src in response.css("img::attr(src)").getall():
                yield response.follow(src, self.image)

        def image(self, response: Any) -> None:
            times["end"] = time.perf_counter()
            counts["images"] += 1
            counts["bytes"] += len(response.body)

    process = CrawlerProcess(
        settings={
            "LOG_LEVEL": "ERROR",
            "ROBOTSTXT_OBEY": True,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "DOWNLOAD_DELAY": 0,
            "RETRY_ENABLED": False,
            "REDIRECT_ENABLED": True,
            "DEPTH_LIMIT": 0,
            "USER_AGENT": "scrapy-bench",
            "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        }
    )
    process.crawl(Bench)
    process.start()
    print(json.dumps({**counts, "seconds": max(times.get("end", 0.0) - times.get("start", 0.0), 1e-9)}))


def run_scrapy(root: str, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--scrapy-worker", root, "--concurrency", str(concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"scrapy failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


# --- takeback ------------------------------------------------------------------------------------------------------


def crawl_query_modes(text: str) -> frozenset[Any]:
    """--query-modes: 'default' is the crawler's own default (CrawlOptions), anything else a list of modes."""
    from takeback.discover.crawl import CrawlOptions
    from takeback.signals.variants import parse_modes

    return CrawlOptions().query_modes if text.strip().lower() == "default" else parse_modes(text)


async def takeback_crawl(
    root: str, site: Site, concurrency: int, hash_workers: int, hash_processes: int, query_modes: str = "default"
) -> dict[str, Any]:
    from takeback.discover.crawl import CrawlOptions, Observation, crawl
    from takeback.discover.crawl_match import MediaMatcher
    from takeback.discover.fetch import Fetcher, FetchPolicy
    from takeback.discover.media_hash import MediaHashes, hash_media
    from takeback.index import IndexedSignal
    signals = []
    source: dict[int, str] = {}
    for i, (name, png) in enumerate(sorted(site.originals.items()), start=1):
        hashed = hash_media(png, query_modes=frozenset())  # the bank holds the plain PDQ of each original
        assert isinstance(hashed, MediaHashes), name
        signals.append(IndexedSignal(i, 1, "pdq", hashed.frames[0].pdq))
        source[i] = name
    matcher = MediaMatcher(signals, {1: "banked"})
    found: dict[str, set[str]] = {}

    def observe(observation: Observation) -> None:
        if observation.kind == "media":
            names = {
                source[m["signal_id"]] for m in observation.evidence.get("matches", []) if m["signal_id"] in source
            }
            found[observation.url] = names

    options = CrawlOptions(
        max_pages=len(site.pages) + 10,
        max_depth=10,
        max_media=len(site.images) + 10,
        use_sitemaps=False,
        page_workers=max(1, concurrency // 2),
        media_workers=concurrency,
        hash_workers=hash_workers,
        hash_processes=hash_processes,
        query_modes=crawl_query_modes(query_modes),
    )
    policy = FetchPolicy(per_host_concurrency=concurrency, timeout_s=30.0, max_connections=concurrency + 4)
    start = time.perf_counter()
    async with Fetcher(policy, allow_networks=ALLOW) as fetcher:
        stats = await crawl(fetcher, [root], matcher, options=options, on_observation=observe)
    seconds = time.perf_counter() - start
    origin = root.rstrip("/")
    hits = {url.removeprefix(origin): names for url, names in found.items()}
    right = {p for p, (name, _, _) in site.planted.items() if name in hits.get(p, set())}
    reach = {p for p, (_, _, d) in site.planted.items() if d <= PDQ_REACH}
    false_positives = sorted(p for p in hits if p not in site.planted)
    missed = sorted((p, *site.planted[p]) for p in reach - right)
    return {
        "seconds": seconds,
        "pages": stats.pages,
        "images_fetched": stats.media_fetched,
        "images_hashed": stats.media_hashed,
        "errors": stats.errors,
        "error_sample": stats.error_log[:5],
        "planted": len(site.planted),
        "in_reach": len(reach),
        "found_in_reach": len(reach & right),
        "found_all": len(right),
        "false_positives": false_positives[:10],
        "false_positive_count": len(false_positives),
        "missed_in_reach": missed[:10],
    }


# --- main ----------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--hubs", type=int, default=50)
    parser.add_argument("--images-per-page", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight per host, both crawlers")
    parser.add_argument("--hash-workers", type=int, default=2, help="takeback's extraction threads")
    parser.add_argument("--hash-processes", type=int, default=2, help="takeback's hashing worker processes")
    parser.add_argument(
        "--query-modes",
        default="default",
        help="query variants per image besides the plain PDQ: 'default' (the crawler's default), 'none', or a list",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/takeback-crawl-bench"))
    parser.add_argument("--skip-scrapy", action="store_true")
    parser.add_argument("--scrapy-worker", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scrapy_worker:
        scrapy_worker(args.scrapy_worker, args.concurrency)
        return

    for line in machine_lines(["aiohttp", "yarl", "scrapy", "twisted", "selectolax", "pillow", "numpy", "uvloop"]):
        print(line)
    print(f"load average before: {os.getloadavg()[0]:.2f} (machine shared with other work: figures are noisy)")
    site, site_file, load_s = load_site(args.cache_dir, args.pages, args.hubs, args.images_per_page)
    html = len(site.pages)
    print(
        f"site: {html} HTML pages ({args.pages} articles + {args.hubs} hubs + index), {len(site.images)} images, "
        f"{sum(len(b) for _, b in site.files.values()) / 1e6:.1f} MB; {len(site.planted)} planted copies of "
        f"{len(BANKED)} banked photos ({', '.join(TRANSFORMS)}); built/loaded in {load_s:.1f} s"
    )
    reach = sum(1 for _, _, d in site.planted.values() if d <= PDQ_REACH)
    print(f"planted copies within PDQ's reach (reference pdqhash distance <= {PDQ_REACH}): {reach}/{len(site.planted)}")
    from takeback.signals.variants import modes_text

    print(
        f"takeback query variants per image: {modes_text(crawl_query_modes(args.query_modes)) or 'none'} "
        f"(--query-modes {args.query_modes}); hashing processes: {args.hash_processes}"
    )
    server = SiteServer(site_file)
    try:
        anchor: dict[str, Any] | None = None
        if not args.skip_scrapy:
            anchor = run_scrapy(server.root, args.concurrency)
            print(
                f"scrapy:   {anchor['pages']} pages, {anchor['images']} images in {anchor['seconds']:.2f} s: "
                f"{anchor['pages'] / anchor['seconds']:.0f} pages/s, {anchor['images'] / anchor['seconds']:.0f} "
                f"images/s (fetched, not hashed)"
            )
        ours = asyncio.run(
            takeback_crawl(
                server.root, site, args.concurrency, args.hash_workers, args.hash_processes, args.query_modes
            )
        )
    finally:
        server.stop()
    seconds = ours["seconds"]
    print(
        f"takeback: {ours['pages']} pages, {ours['images_fetched']} images fetched, {ours['images_hashed']} hashed "
        f"in {seconds:.2f} s: {ours['pages'] / seconds:.0f} pages/s, {ours['images_hashed'] / seconds:.0f} "
        f"images hashed/s; errors {ours['errors']}"
    )
    if ours["errors"]:
        print(f"  first errors: {ours['error_sample']}")
    print(
        f"recall: {ours['found_in_reach']}/{ours['in_reach']} planted copies within reach "
        f"({100 * ours['found_in_reach'] / max(1, ours['in_reach']):.0f} %), {ours['found_all']}/{ours['planted']} "
        f"of all planted; false positives: {ours['false_positive_count']} {ours['false_positives']}"
    )
    if ours["missed_in_reach"]:
        print(f"  missed within reach: {ours['missed_in_reach']}")
    if anchor:
        same = anchor["pages"] == ours["pages"] and anchor["images"] == ours["images_fetched"]
        print(
            f"ratio takeback/scrapy: pages/s {(ours['pages'] / seconds) / (anchor['pages'] / anchor['seconds']):.2f}, "
            f"images/s {(ours['images_hashed'] / seconds) / (anchor['images'] / anchor['seconds']):.2f} "
            f"(same URL set: {'yes' if same else 'NO'})"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
