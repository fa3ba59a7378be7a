"""Where takedown work reaches the network: the guarded discover fetcher and the RDAP client, built from settings.

One place, so the CLI, the API and the jobs use the same limits and guards (SSRF checks, sizes, time-outs), and so
tests can hand in loopback-capable replacements by patching these functions — nothing in the settings can loosen
the guards of a deployed server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from takeback.config import Settings
from takeback.discover.urlguard import Resolver, system_resolver
from takeback.takedown.parties import FetcherLike
from takeback.takedown.rdap import RdapClient


@contextlib.asynccontextmanager
async def open_fetcher(settings: Settings) -> AsyncIterator[FetcherLike]:
    """The discover fetcher (robots.txt, SSRF guard, size and time limits) for re-checks and contact pages: the
    same one scans use (``discover.allow``), so code-set exceptions such as the demo site's origin apply alike."""
    from takeback.discover.allow import open_fetcher as discover_fetcher

    async with discover_fetcher(settings) as fetcher:
        yield fetcher


def rdap_client(settings: Settings) -> RdapClient:
    return RdapClient(settings.rdap_bootstrap_url, timeout_s=settings.rdap_timeout_s,
                      cache_ttl_s=settings.rdap_cache_ttl_s)


def resolver() -> Resolver:
    """The DNS resolver party resolution uses to find the server's address."""
    return system_resolver
