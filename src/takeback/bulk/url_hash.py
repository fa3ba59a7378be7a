"""Fetch URLs inside Ray workers and hash what came back, with the same per-file hasher as local files.

Everything fetched is hostile: it goes through `takeback.discover.fetch.Fetcher` (SSRF guard with DNS pinning,
robots.txt, size and time limits, redirects checked hop by hop). The body is written to a private temporary file
and hashed by `run_task`, so a URL's result is exactly what the same bytes would give on disk; the file is removed
at once. A failed fetch or an HTTP error status is that URL's `failed` result, never the chunk's end.

Politeness is per task: each chunk has its own Fetcher, so one host may see up to `window` times its per-host limit
at once. A sweep of a third party's site should keep the window small; a platform fetching from its own storage need
not.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from takeback.discover.fetch import Fetcher, FetchError, FetchPolicy, FetchResult
from takeback.protect.hash_file import HashOptions, Task, run_task
from takeback.protect.results import FileResult, Status

#: A sweep item: a file on storage the cluster can read, or a URL to fetch.
SweepItem = Task | str

_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def _suffix(url: str) -> str:
    """The URL path's extension (so a fetched body is judged like a file of that name), or none."""
    match = _SUFFIX.search(urlsplit(url).path)
    return match.group(0).lower() if match else ""


def _failed(url: str, code: str, reason: str) -> FileResult:
    return FileResult(path=url, status=Status.FAILED, error_code=code, reason=reason[:300])


async def _fetch_all(
    urls: Sequence[str], policy: FetchPolicy, allow_networks: Sequence[str]
) -> list[FetchResult | FileResult]:
    async with Fetcher(policy, allow_networks=allow_networks) as fetcher:

        async def one(url: str) -> FetchResult | FileResult:
            try:
                return await fetcher.fetch(url, accept="image/*, video/*;q=0.9, */*;q=0.1")
            except FetchError as exc:
                return _failed(url, "fetch-failed", f"{exc.code}: {exc.message}")

        return list(await asyncio.gather(*(one(url) for url in urls)))


def hash_fetched(url: str, body: bytes, final_url: str, options: HashOptions) -> FileResult:
    """Hash fetched bytes as a file named like the URL; the temporary file never outlives the call."""
    fd, name = tempfile.mkstemp(prefix="takeback-sweep-", suffix=_suffix(final_url) or _suffix(url))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        result = run_task(Task(name), options)
    finally:
        Path(name).unlink(missing_ok=True)
    result.path = url
    return result


def hash_items(
    items: list[SweepItem],
    options: HashOptions,
    policy: FetchPolicy | None = None,
    allow_networks: Sequence[str] = (),
) -> list[FileResult]:
    """Runs on a Ray worker: one result per item, in order. Files are hashed in place; URLs are fetched together
    (concurrently, within the fetch policy) and then hashed one by one."""
    urls = [item for item in items if isinstance(item, str)]
    fetched: dict[str, FetchResult | FileResult] = {}
    if urls:
        outcomes = asyncio.run(_fetch_all(urls, policy or FetchPolicy(), allow_networks))
        fetched = dict(zip(urls, outcomes, strict=True))
    results: list[FileResult] = []
    for item in items:
        if isinstance(item, Task):
            results.append(run_task(item, options))
            continue
        outcome = fetched[item]
        if isinstance(outcome, FileResult):
            results.append(outcome)
        elif not 200 <= outcome.status < 300:
            results.append(_failed(item, "fetch-failed", f"HTTP {outcome.status}"))
        else:
            results.append(hash_fetched(item, outcome.body, outcome.final_url, options))
    return results


def remote_hash_items():  # type: ignore[no-untyped-def]  # a ray.remote function
    """`hash_items` as a Ray task (made on use, so importing this module does not need Ray)."""
    from takeback.bulk.cluster import require_ray

    return require_ray().remote(num_cpus=1, max_retries=0)(hash_items)
