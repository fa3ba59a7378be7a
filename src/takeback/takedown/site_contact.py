"""The site operator's own removal contact, read from its pages: ``mailto:`` links, and links whose text or address
says abuse, DMCA, copyright, takedown or contact.

Why: many small sites publish no ``security.txt`` and hide behind privacy-proxied registrations, but their pages
carry a "DMCA" or "Contact" link in the footer; that is the operator's own channel and usually the fastest one.
Pages are fetched only through the caller's guarded fetcher (the discover fetcher: SSRF guard, size and time
limits) and parsed as hostile input (size and nesting cut, a bounded number of links).  Every fetch is a recorded
step, whatever it found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser

from takeback.discover.extract import decode_html, depth_cut, resolve
from takeback.takedown.notices import check_email

PAGE_MAX_BYTES = 512 * 1024
MAX_DEPTH = 256
MAX_LINKS = 5000
#: Words that make a link a removal channel (strong) or a general contact (weak).
STRONG = ("abuse", "dmca", "copyright", "takedown", "take-down", "removal")
WEAK = ("contact", "impressum", "legal")
_WORDS = re.compile("|".join(re.escape(w) for w in (*STRONG, *WEAK)))


class FetcherLike(Protocol):
    async def fetch(self, url: str, *, max_bytes: int | None = None, accept: str | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class Contact:
    #: "email" or "page".
    type: str
    value: str
    #: 2: says abuse/DMCA/copyright/takedown; 1: a general contact (or any mailto:).
    score: int
    #: The link text (trimmed), for the record.
    text: str = ""


@dataclass(frozen=True, slots=True)
class PageContacts:
    emails: tuple[Contact, ...] = ()
    pages: tuple[Contact, ...] = ()
    steps: tuple[dict[str, Any], ...] = field(default=())

    @property
    def best_email(self) -> Contact | None:
        return self.emails[0] if self.emails else None

    @property
    def best_page(self) -> Contact | None:
        return self.pages[0] if self.pages else None

    @property
    def strong(self) -> bool:
        return any(c.score >= 2 for c in (*self.emails, *self.pages))


def _score(*texts: str) -> int:
    words = set(_WORDS.findall(" ".join(texts).lower()))
    if words & set(STRONG):
        return 2
    return 1 if words else 0


def parse_contacts(body: bytes, url: str, content_type: str = "") -> tuple[list[Contact], list[Contact]]:
    """(e-mail contacts, contact pages) of one HTML page, best first (score, then document order).  Never raises on
    bad HTML."""
    data = body[:PAGE_MAX_BYTES]
    cut = depth_cut(data, MAX_DEPTH)
    if cut is not None:
        data = data[:cut]
    tree = LexborHTMLParser(decode_html(data, content_type))
    emails: dict[str, Contact] = {}
    pages: dict[str, Contact] = {}
    for i, node in enumerate(tree.css("a[href]")):
        if i >= MAX_LINKS:
            break
        href = (node.attributes.get("href") or "").strip()
        if not href or len(href) > 2048:
            continue
        text = " ".join((node.text(deep=True) or "").split())[:200]
        title = (node.attributes.get("title") or "")[:200]
        if href.lower().startswith("mailto:"):
            address = unquote(href[7:].split("?", 1)[0]).split(",", 1)[0].strip()
            try:
                email = check_email(address)
            except ValueError:
                continue
            score = max(1, _score(email, text, title))
            if email not in emails or emails[email].score < score:
                emails[email] = Contact("email", email, score, text)
            continue
        absolute = resolve(url, href)
        if absolute is None:
            continue
        parts = urlsplit(absolute)
        score = _score(parts.path, parts.query, text, title)
        if score and (absolute not in pages or pages[absolute].score < score):
            pages[absolute] = Contact("page", absolute, score, text)

    def ranked(found: dict[str, Contact]) -> list[Contact]:
        order = {key: n for n, key in enumerate(found)}
        return sorted(found.values(), key=lambda c: (-c.score, order[c.value]))

    return ranked(emails), ranked(pages)


async def find_page_contacts(urls: Sequence[str], fetcher: FetcherLike) -> PageContacts:
    """Fetch ``urls`` in order (the page the finding was on, then the site's home page) until one names a removal
    channel (a strong contact); collect what each page offers."""
    emails: dict[str, Contact] = {}
    pages: dict[str, Contact] = {}
    steps: list[dict[str, Any]] = []
    for url in dict.fromkeys(urls):
        step: dict[str, Any] = {"step": "page-contact", "url": url}
        steps.append(step)
        try:
            result = await fetcher.fetch(url, max_bytes=PAGE_MAX_BYTES, accept="text/html,*/*;q=0.5")
        except Exception as exc:  # FetchError and anything a hostile server provokes: recorded, never fatal
            step.update(outcome="error", error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:300])
            continue
        step["status"] = result.status
        headers = getattr(result, "headers", None) or {}
        content_type = str(headers.get("content-type", "")) if hasattr(headers, "get") else ""
        if result.status != 200:
            step["outcome"] = "absent"
            continue
        if content_type and "html" not in content_type.lower():
            step["outcome"] = "not_html"
            continue
        final = getattr(result, "final_url", None) or url
        found_emails, found_pages = parse_contacts(bytes(result.body or b""), final, content_type)
        step.update(outcome="found" if found_emails or found_pages else "no_contact",
                    emails=[c.value for c in found_emails[:5]], pages=[c.value for c in found_pages[:5]])
        for contact in found_emails:
            emails.setdefault(contact.value, contact)
        for contact in found_pages:
            pages.setdefault(contact.value, contact)
        if any(c.score >= 2 for c in (*found_emails, *found_pages)):
            break

    def ranked(found: dict[str, Contact]) -> tuple[Contact, ...]:
        order = {key: n for n, key in enumerate(found)}
        return tuple(sorted(found.values(), key=lambda c: (-c.score, order[c.value])))

    return PageContacts(ranked(emails), ranked(pages), tuple(steps))
