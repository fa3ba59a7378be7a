"""What the demo web site holds: a small image board with planted copies of the person's protected photos, pages
whose titles and addresses carry her names, unrelated pictures that must not match, robots.txt and a sitemap.

``layout()`` returns every path with its content type and bytes; the server (``site``) only serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape

from takeback.demo import media

FOOTER = (
    "<footer><p>This is takeback's demo site. Every picture is a public-domain sample photo from scikit-image; "
    "the person and her names are made up.</p></footer>"
)


@dataclass(frozen=True, slots=True)
class Resource:
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    #: Planted copies shown on the page: (photo, transform, how it is referenced).
    copies: tuple[tuple[str, str, str], ...] = ()
    unrelated: tuple[str, ...] = ()
    text: str = ""


#: How a picture is referenced in the HTML: the crawler must find each kind.
_REFERENCES = {
    "img": '<img src="{src}" alt="">',
    "lazy": '<img data-src="{src}" class="lazy" alt="">',
    "og": "",  # in <head>, see _html
}

PAGES: tuple[Page, ...] = (
    Page("/gallery/beach", "Beach day gallery", copies=(("astronaut", "resized", "img"),
                                                        ("coffee", "thumbnail", "lazy")),
         unrelated=("camera", "moon")),
    Page("/gallery/city", "City lights gallery", copies=(("coffee", "cropped", "img"), ("chelsea", "resized", "og")),
         unrelated=("coins", "clock")),
    Page("/ada-demoulin-leaked", "Ada Demoulin leaked pics", copies=(("rocket", "mirrored", "img"),
                                                                     ("chelsea", "recoloured", "img"))),
    Page("/u/adademoulin", "adademoulin's uploads", copies=(("astronaut", "thumbnail", "img"),
                                                            ("rocket", "resized", "img")),
         unrelated=("brick",)),
    Page("/forum/thread-42", "Anyone know Ada Rosewood?", unrelated=("gravel",),
         text="Saw new pictures of Ada Rosewood yesterday, does anyone have the link?"),
    Page("/about", "About PicDump", text="PicDump: share your pictures. (Not a real site.)"),
)


def media_path(photo: str, transform: str | None = None) -> str:
    return f"/media/{photo}-{transform}.jpg" if transform else f"/media/{photo}.jpg"


def planted() -> list[media.Planted]:
    """Every planted copy, with its path (what a scan should find)."""
    return [media.Planted(media_path(p, t), p, t) for page in PAGES for p, t, _ in page.copies]


def _html(title: str, body: str, head: str = "") -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width">{head}</head><body>'
        f'<header><a href="/">PicDump</a></header><h1>{escape(title)}</h1>{body}{FOOTER}</body></html>'
    ).encode()


def _page(page: Page) -> bytes:
    head = "".join(
        f'<meta property="og:image" content="{media_path(p, t)}">' for p, t, how in page.copies if how == "og"
    )
    pictures = [_REFERENCES[how].format(src=media_path(p, t)) for p, t, how in page.copies if how != "og"]
    pictures += [f'<img src="{media_path(u)}" alt="">' for u in page.unrelated]
    text = f"<p>{escape(page.text)}</p>" if page.text else ""
    return _html(page.title, text + "".join(pictures) + '<p><a href="/">Back to the front page</a></p>', head)


def _index() -> bytes:
    links = "".join(f'<li><a href="{p.path}">{escape(p.title)}</a></li>' for p in PAGES)
    return _html("PicDump — newest uploads", f"<ul>{links}</ul>")


def _sitemap() -> bytes:
    urls = "".join(f"<url><loc>{p.path}</loc></url>" for p in PAGES)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{urls}</urlset>"
    ).encode()


@cache
def layout() -> dict[str, Resource]:
    """Every path of the site and what it serves (made once per process: a few dozen small JPEGs)."""
    html = "text/html; charset=utf-8"
    site: dict[str, Resource] = {
        "/": Resource(html, _index()),
        "/robots.txt": Resource("text/plain", b"User-agent: *\nAllow: /\nSitemap: /sitemap.xml\n"),
        "/sitemap.xml": Resource("application/xml", _sitemap()),
    }
    for page in PAGES:
        site[page.path] = Resource(html, _page(page))
        for photo, transform, _how in page.copies:
            site[media_path(photo, transform)] = Resource("image/jpeg", media.copy(photo, transform))
        for photo in page.unrelated:
            site[media_path(photo)] = Resource("image/jpeg", media.unrelated(photo))
    return site
