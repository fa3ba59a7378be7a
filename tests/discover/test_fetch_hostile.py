"""Every hostile-site case ends quickly in the right FetchError or result, and the site stays reachable after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from takeback.discover.fetch import ERROR_CODES, Fetcher, FetchError, FetchResult
from takeback.discover.urlguard import system_resolver
from tests.discover.hostile_site import CASES, TEST_POLICY, Case, HostileSite, hostile_urls

#: Deadline 3 s.  The deadline counts time talking to the server, not time queued behind the per-host limit, so a
#: case may wait for one deadline-long case (slow headers, slow loris, or broken chunking that aiohttp sat on until
#: the deadline in the full CI suite: 6.1 s) and then use its own deadline.
BOUND_S = 2 * TEST_POLICY.timeout_s + 1.5


@pytest.fixture(scope="module")
def site() -> Iterator[HostileSite]:
    with HostileSite() as server:
        yield server


async def _outcome(fetcher: Fetcher, url: str) -> FetchResult | FetchError:
    try:
        return await fetcher.fetch(url)
    except FetchError as exc:
        return exc


async def _fetch_all(site: HostileSite, urls: list[str]) -> list[tuple[FetchResult | FetchError, float]]:
    async with Fetcher(TEST_POLICY, allow_networks=site.allow_networks) as fetcher:

        async def timed(url: str) -> tuple[FetchResult | FetchError, float]:
            start = time.perf_counter()
            outcome = await _outcome(fetcher, url)
            return outcome, time.perf_counter() - start

        return list(await asyncio.gather(*(timed(url) for url in urls)))


def test_every_hostile_case_is_bounded_and_classified(site: HostileSite) -> None:
    start = time.perf_counter()
    outcomes = asyncio.run(_fetch_all(site, [site.url(case.path) for case in CASES]))
    wrong = []
    for case, (outcome, elapsed) in zip(CASES, outcomes, strict=True):
        if not _as_expected(case, outcome) or elapsed > BOUND_S:
            wrong.append((case.path, case.expect, _describe(outcome), round(elapsed, 2)))
    assert not wrong
    # All cases run concurrently: the whole site takes about one deadline, not the sum of them.
    assert time.perf_counter() - start < BOUND_S + 2


def _as_expected(case: Case, outcome: FetchResult | FetchError) -> bool:
    if case.expect == "ok":
        return (
            isinstance(outcome, FetchResult)
            and outcome.status == case.status
            and outcome.content_type == case.content_type
            and len(outcome.body) <= TEST_POLICY.max_bytes
        )
    return isinstance(outcome, FetchError) and outcome.code in case.codes and outcome.code in ERROR_CODES


def _describe(outcome: FetchResult | FetchError) -> str:
    if isinstance(outcome, FetchError):
        return f"{outcome.code}: {outcome.message[:100]}"
    return f"{outcome.status} {outcome.content_type!r} {len(outcome.body)} bytes"


def test_private_redirect_targets_are_never_contacted(site: HostileSite) -> None:
    """A redirect into 127.0.0.2 is refused by the guard, not by a failed connection (nothing listens there)."""
    outcomes = asyncio.run(_fetch_all(site, [site.url("/to-other-loopback"), site.url("/to-decimal-ip")]))
    for outcome, _ in outcomes:
        assert isinstance(outcome, FetchError)
        assert outcome.code == "unsafe_url"
        assert "non-public" in outcome.message


def _local_only_resolver(host: str, port: int) -> list[str]:
    """System resolution for numeric spellings and localhost only: tests never ask real DNS."""
    if host.rstrip(".") == "localhost" or all(c in "0123456789abcdefx." for c in host.lower()):
        return system_resolver(host, port)
    raise OSError(f"test resolver: {host} is not resolvable here")


@pytest.mark.parametrize("pair", range(len(hostile_urls(1))))
def test_hostile_urls_refused_before_connecting(pair: int) -> None:
    with HostileSite() as server:
        url, code = hostile_urls(server.port)[pair]

        async def go() -> FetchResult | FetchError:
            # The full guard (no allow-list): nothing of these may reach any server.
            async with Fetcher(TEST_POLICY, resolver=_local_only_resolver) as fetcher:
                return await _outcome(fetcher, url)

        outcome = asyncio.run(go())
        assert isinstance(outcome, FetchError), url
        assert outcome.code == code, (url, outcome.message)
        assert sum(server.hits.values()) == 0


def test_site_still_answers_after_the_hostile_cases(site: HostileSite) -> None:
    ((outcome, _),) = asyncio.run(_fetch_all(site, [site.url("/ok.html")]))
    assert isinstance(outcome, FetchResult)
    assert outcome.status == 200
    assert b"fine" in outcome.body
