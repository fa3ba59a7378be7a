"""robots.txt, fetched once per origin through the guarded fetcher and kept for the Fetcher's life (one crawl).

What an answer means follows RFC 9309 §2.3.1: a 2xx body is parsed (protego, first `robots_max_bytes` only); a 4xx
means "no robots.txt", so everything is allowed; a 5xx, or a robots.txt that cannot be reached at all (connection
refused, timeout, broken HTTP, unsafe address), means the site may be in trouble, so everything is disallowed until
the next crawl.  More than the allowed number of redirects counts as unavailable (allow), as the RFC permits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from protego import Protego

#: Fetch errors after which the robots.txt counts as "unavailable" (allow all) rather than "unreachable".
_UNAVAILABLE_CODES = frozenset({"too_many_redirects"})


def robots_url(url: str) -> str:
    """The robots.txt URL that governs `url` (same scheme, host and port)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}/robots.txt"


def user_agent_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: "takeback-discover" from "takeback-discover/0.1 …"."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0].strip() or "*"


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """What one origin's robots.txt said; `parser` is None when the verdict is all-or-nothing."""

    allow_all: bool
    parser: Any = None  # Protego
    reason: str = ""

    def allows(self, url: str, token: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return bool(self.parser.can_fetch(url, token))

    def crawl_delay(self, token: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(token)
        return float(delay) if delay is not None else None


def rules_from_answer(status: int, body: bytes) -> RobotsRules:
    """The rules a robots.txt answer gives (see the module docstring for what each status means)."""
    if 200 <= status < 300:
        text = body.decode("utf-8", "replace")
        return RobotsRules(allow_all=True, parser=Protego.parse(text), reason=f"robots.txt ({len(body)} bytes)")
    if 400 <= status < 500:
        return RobotsRules(allow_all=True, reason=f"robots.txt answered {status}: no rules")
    return RobotsRules(allow_all=False, reason=f"robots.txt answered {status}: site unavailable, nothing fetched")


class RobotsCache:
    """Per-origin robots rules, loaded on first use; concurrent first uses share one fetch."""

    def __init__(self, load: Callable[[str], Awaitable[Any]], user_agent: str) -> None:
        # load(robots_url) returns something with .status and .body, or raises an error with a .code.
        self._load = load
        self.token = user_agent_token(user_agent)
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def rules_for(self, url: str) -> RobotsRules:
        key = robots_url(url)
        rules = self._rules.get(key)
        if rules is not None:
            return rules
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            rules = self._rules.get(key)
            if rules is None:
                rules = await self._fetch_rules(key)
                self._rules[key] = rules
        return rules

    async def allowed(self, url: str) -> bool:
        return (await self.rules_for(url)).allows(url, self.token)

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay for our token, when that origin's rules are already loaded."""
        rules = self._rules.get(robots_url(url))
        return rules.crawl_delay(self.token) if rules is not None else None

    async def _fetch_rules(self, url: str) -> RobotsRules:
        try:
            answer = await self._load(url)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code is None:
                raise
            if code in _UNAVAILABLE_CODES:
                return RobotsRules(allow_all=True, reason=f"robots.txt unavailable ({code})")
            return RobotsRules(allow_all=False, reason=f"robots.txt unreachable ({code}): nothing fetched")
        return rules_from_answer(answer.status, answer.body)
