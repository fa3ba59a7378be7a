"""Point takedown's network functions (``takedown.network``) at loopback test servers: the fetcher may reach
127.0.0.1 and resolves every host there, RDAP uses the loopback bootstrap, and DNS for party resolution answers
198.18.7.7 (the recorded SHADY-HOSTING-NET).  Production code never allows loopback; only tests patch it in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from takeback.discover.fetch import Fetcher, FetchPolicy
from takeback.takedown import network
from takeback.takedown.rdap import RdapClient
from tests.discover.webserver import ALLOW_LOOPBACK


def patch_network(monkeypatch: pytest.MonkeyPatch, rdap_bootstrap: str | None = None) -> None:
    @contextlib.asynccontextmanager
    async def open_fetcher(settings: Any) -> AsyncIterator[Fetcher]:
        async with Fetcher(FetchPolicy(timeout_s=5.0, respect_robots=False),
                           resolver=lambda host, port: ["127.0.0.1"], allow_networks=ALLOW_LOOPBACK) as fetcher:
            yield fetcher

    monkeypatch.setattr(network, "open_fetcher", open_fetcher)
    if rdap_bootstrap is not None:
        monkeypatch.setattr(network, "rdap_client",
                            lambda settings: RdapClient(rdap_bootstrap, allow_private=True, timeout_s=5.0))
        monkeypatch.setattr(network, "resolver", lambda: (lambda host, port: ["198.18.7.7"]))
