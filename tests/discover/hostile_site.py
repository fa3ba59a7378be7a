"""A loopback site that does everything a hostile or broken web server does, for fetcher and crawler tests.

`HostileSite` is a `WebServer` whose routes are the cases below; `/index.html` links to every one of them (and to
the hostile URLs that need no server) so a crawl seeded there meets them all.  `CASES` says what the fetcher must
make of each path under `TEST_POLICY` (1 MiB cap, 3 s deadline): a FetchError code, or "ok" with the content type it
must report.  `hostile_urls(port)` lists URLs that must be refused before any connection is made (credentials,
non-HTTP schemes, IDN and numeric spellings of private addresses).

Bodies are built once per process and kept small on the wire: the bombs are a few hundred kilobytes that inflate
to 64 MiB.
"""

from __future__ import annotations

import functools
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from takeback.discover.fetch import FetchPolicy
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, Request, Route, WebServer, redirect

TEST_POLICY = FetchPolicy(max_bytes=1024 * 1024, timeout_s=3.0, connect_timeout_s=1.0, max_redirects=5)
BOMB_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    path: str
    expect: str  # a FetchError code, or "ok"
    content_type: str = ""  # for "ok": what the fetcher must report
    status: int = 200
    what: str = ""
    #: Other FetchError codes that are also right.  Broken chunk framing is usually `http_error` at once, but in the
    #: full suite on a 2-core CI runner aiohttp sat on it until the deadline (`timeout`) three times; never when the
    #: hostile tests run alone.  Either way the fetch is bounded and the crawl goes on, which is what must hold.
    also: tuple[str, ...] = ()

    @property
    def codes(self) -> frozenset[str]:
        """Every outcome code that is right for this path (`expect` and `also`)."""
        return frozenset((self.expect, *self.also))


CASES: tuple[Case, ...] = (
    Case("/ok.html", "ok", "text/html", what="a plain page"),
    Case("/deep-nesting.html", "ok", "text/html", what="80,000 nested divs"),
    Case("/huge-attribute.html", "ok", "text/html", what="an 800 KB attribute (under the cap)"),
    Case("/enormous-attribute.html", "too_large", what="a 5 MB attribute"),
    Case("/broken-encoding.html", "ok", "text/html", what="declared UTF-8, invalid bytes, bogus meta charset"),
    Case("/utf16.html", "ok", "text/html", what="UTF-16 with a BOM, declared as latin-1"),
    Case("/redirect/0", "too_many_redirects", what="an endless redirect chain"),
    Case("/loop-a", "too_many_redirects", what="a two-step redirect loop"),
    Case("/to-metadata", "unsafe_url", what="redirect to the cloud metadata service"),
    Case("/to-mapped-metadata", "unsafe_url", what="redirect to metadata spelled as IPv4-mapped IPv6"),
    Case("/to-private", "unsafe_url", what="redirect to a private address"),
    Case("/to-other-loopback", "unsafe_url", what="redirect to 127.0.0.2 (outside the test allow-list)"),
    Case("/to-ipv6-loopback", "unsafe_url", what="redirect to [::1]"),
    Case("/to-decimal-ip", "unsafe_url", what="redirect to 127.0.0.2 written as one decimal number"),
    Case("/to-idn-dots", "unsafe_url", what="redirect to 127。0。0。2 (ideographic full stops)"),
    Case("/to-credentials", "unsafe_url", what="redirect to a URL with user:password@"),
    Case("/to-file", "bad_scheme", what="redirect to file:///etc/passwd"),
    Case("/to-gopher", "bad_scheme", what="redirect to gopher:// (smuggling into Redis and friends)"),
    Case("/slow-headers", "timeout", what="accepts, then never answers"),
    Case("/slow-loris", "timeout", what="a body trickling one byte at a time"),
    Case("/endless", "too_large", what="a chunked page that never ends"),
    Case("/gzip-bomb", "too_large", what="64 MiB of zeros as gzip"),
    Case("/deflate-bomb", "too_large", what="64 MiB of zeros as deflate"),
    Case("/brotli", "decode_error", what="a coding we did not offer"),
    Case("/bad-gzip", "decode_error", what="Content-Encoding: gzip over bytes that are not gzip"),
    Case("/lying-length", "too_large", what="Content-Length of a terabyte"),
    Case("/broken-chunked", "http_error", what="chunk framing that is not hex", also=("timeout",)),
    Case("/cut-body", "http_error", what="connection closed halfway through the Content-Length"),
    Case("/images/fake.jpg", "ok", "text/html", what="an HTML page served as image/jpeg"),
    Case("/images/random.png", "ok", "", what="random bytes served as image/png"),
    Case("/images/truncated.jpg", "ok", "image/jpeg", what="a JPEG header and then garbage"),
    Case("/images/real.png", "ok", "image/png", what="a real PNG served as text/plain"),
    Case("/server-error", "ok", "text/html", status=500, what="a 500 is a result, not an error"),
    Case("/private/secret.html", "robots_disallowed", what="disallowed by robots.txt"),
)

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n\nUser-agent: someone-else\nDisallow: /\n"


def hostile_urls(port: int) -> list[tuple[str, str]]:
    """(url, FetchError code) pairs refused before any connection; `port` is the hostile site's."""
    return [
        (f"http://user:pass@127.0.0.1:{port}/ok.html", "unsafe_url"),
        (f"http://user@127.0.0.1:{port}/ok.html", "unsafe_url"),
        ("file:///etc/passwd", "bad_scheme"),
        ("ftp://127.0.0.1/", "bad_scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "bad_scheme"),
        ("javascript:alert(1)", "bad_scheme"),
        ("data:text/html,<h1>hi</h1>", "bad_scheme"),
        ("//127.0.0.1/no-scheme", "bad_scheme"),
        ("http://169.254.169.254/latest/meta-data/", "unsafe_url"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "unsafe_url"),
        ("http://[::ffff:10.0.0.1]/", "unsafe_url"),
        ("http://127。0。0。2/", "unsafe_url"),
        ("http://１２７.０.０.２/", "unsafe_url"),  # fullwidth digits
        ("http://0x7f.0.0.2/", "unsafe_url"),  # hex
        ("http://0177.0.0.02/", "unsafe_url"),  # octal
        ("http://2130706434/", "unsafe_url"),  # 127.0.0.2 as one number
        ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "unsafe_url"),  # circled letters that NFKC-map to "localhost"
        ("http://localhost./", "unsafe_url"),
        ("http://exa\u200bmple.com/", "unsafe_url"),  # zero-width space inside the name
        ("http://example.com\\@127.0.0.2/", "unsafe_url"),  # parser confusion: backslash before @
        ("http://" + "a" * 3000 + ".com/", "unsafe_url"),
    ]


@functools.cache
def _bodies() -> dict[str, bytes]:
    rng = random.Random(4)
    zeros = bytes(1024 * 1024)
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    df = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    gzip_parts, deflate_parts = [], []
    for _ in range(BOMB_SIZE // len(zeros)):
        gzip_parts.append(gz.compress(zeros))
        deflate_parts.append(df.compress(zeros))
    gzip_parts.append(gz.flush())
    deflate_parts.append(df.flush())
    png = _tiny_png()
    return {
        "deep": b"<!doctype html><html><body>" + b"<div>" * 80_000 + b"deep" + b"</div>" * 80_000 + b"</body></html>",
        "huge_attr": b'<!doctype html><html><body><img src="/images/real.png" alt="'
        + b"x" * 800_000
        + b'"></body></html>',
        "enormous_attr": b'<!doctype html><html><body><a href="' + b"/a" * 2_500_000 + b'">x</a></body></html>',
        "broken": b'<!doctype html><html><head><meta charset="x-bogus-8"><title>caf\xe9 \xff\xfe\xc3</title>'
        b"</head><body>\xed\xa0\x80 surrogate \xf4\x90\x80\x80 too high \xc0\xaf overlong</body></html>",
        "utf16": "\ufeff<!doctype html><html><body>UTF-16 page</body></html>".encode("utf-16-le"),
        "gzip_bomb": b"".join(gzip_parts),
        "deflate_bomb": b"".join(deflate_parts),
        "random": rng.randbytes(20_000),
        "truncated_jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(5_000),
        "png": png,
    }


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _trickle(request: Request) -> Iterator[bytes]:
    """One byte every 50 ms, for up to a minute, stopping with the server."""
    for _ in range(1200):
        if request.stopping.wait(0.05):
            return
        yield b"x"


def _endless(request: Request) -> Iterator[bytes]:
    chunk = b"<p>" + b"more " * 13_000 + b"</p>\n"
    while not request.stopping.is_set():
        yield chunk


def _redirect_chain(request: Request) -> Reply:
    step = int(request.path.rsplit("/", 1)[1] or 0)
    return redirect(f"/redirect/{step + 1}")


def _index(port: int) -> bytes:
    links = [case.path for case in CASES] + [url for url, _ in hostile_urls(port)]
    items = "".join(f'<li><a href="{link}">{link[:80]}</a></li>' for link in links)
    images = '<img src="/images/fake.jpg"><img src="/images/random.png"><img src="/images/truncated.jpg">'
    return (
        f"<!doctype html><html><head><title>hostile</title></head><body><ul>{items}</ul>{images}</body></html>".encode()
    )


class HostileSite(WebServer):
    """The hostile site on 127.0.0.1 (allow it with `allow_networks=ALLOW_LOOPBACK`)."""

    allow_networks = ALLOW_LOOPBACK

    def __init__(self) -> None:
        super().__init__()
        self.routes.update(self._routes())

    def start(self) -> HostileSite:
        super().start()
        self.routes["/index.html"] = Reply(body=_index(self.port))
        port = self.port
        self.routes["/to-ipv6-loopback"] = redirect(f"http://[::1]:{port}/ok.html")
        self.routes["/to-other-loopback"] = redirect(f"http://127.0.0.2:{port}/ok.html")
        self.routes["/to-decimal-ip"] = redirect(f"http://2130706434:{port}/ok.html")
        self.routes["/to-idn-dots"] = redirect(f"http://127。0。0。2:{port}/ok.html")
        self.routes["/to-credentials"] = redirect(f"http://admin:admin@127.0.0.1:{port}/ok.html")
        return self

    def _routes(self) -> dict[str, Route]:
        b = _bodies()
        html = "text/html; charset=utf-8"
        return {
            "/robots.txt": Reply(body=ROBOTS_TXT, content_type="text/plain"),
            "/ok.html": Reply(body=b"<!doctype html><html><head><title>ok</title></head><body>fine</body></html>"),
            "/deep-nesting.html": Reply(body=b["deep"]),
            "/huge-attribute.html": Reply(body=b["huge_attr"]),
            "/enormous-attribute.html": Reply(body=b["enormous_attr"]),
            "/broken-encoding.html": Reply(body=b["broken"], content_type=html),
            "/utf16.html": Reply(body=b["utf16"], content_type="text/html; charset=iso-8859-1"),
            **{f"/redirect/{i}": _redirect_chain for i in range(100)},
            "/loop-a": redirect("/loop-b"),
            "/loop-b": redirect("/loop-a"),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
            "/to-mapped-metadata": redirect("http://[::ffff:169.254.169.254]/latest/meta-data/"),
            "/to-private": redirect("http://10.0.0.1/admin"),
            "/to-file": redirect("file:///etc/passwd"),
            "/to-gopher": redirect("gopher://127.0.0.1:6379/_FLUSHALL"),
            "/slow-headers": Reply(body=b"late", delay_s=60.0),
            "/slow-loris": lambda request: Reply(body=_trickle(request), headers={"Content-Length": "1200"}),
            "/endless": lambda request: Reply(body=_endless(request)),
            "/gzip-bomb": Reply(body=b["gzip_bomb"], headers={"Content-Encoding": "gzip"}),
            "/deflate-bomb": Reply(body=b["deflate_bomb"], headers={"Content-Encoding": "deflate"}),
            "/brotli": Reply(body=b"\x1b\x03\x00\xf8\xa5\x02", headers={"Content-Encoding": "br"}),
            "/bad-gzip": Reply(body=b"\x1f\x8b" + b["random"][:500], headers={"Content-Encoding": "gzip"}),
            "/lying-length": Reply(body=iter([b"x" * 1000]), headers={"Content-Length": str(10**12)}),
            "/broken-chunked": Reply(
                body=iter([b"zz\r\nnot hex\r\n"]), headers={"Transfer-Encoding": "chunked"}, raw=True
            ),
            "/cut-body": Reply(body=iter([b"<html>only the start"]), headers={"Content-Length": "100000"}),
            "/images/fake.jpg": Reply(
                body=b"<!doctype html><html><body>not an image</body></html>", content_type="image/jpeg"
            ),
            "/images/random.png": Reply(body=b["random"], content_type="image/png"),
            "/images/truncated.jpg": Reply(body=b["truncated_jpeg"], content_type="image/jpeg"),
            "/images/real.png": Reply(body=b["png"], content_type="text/plain"),
            "/server-error": Reply(status=500, body=b"<html><body>oops</body></html>"),
            "/private/secret.html": Reply(body=b"<html>secret</html>"),
        }
