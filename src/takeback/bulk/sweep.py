"""`takeback sweep`: hash a collection (files and/or URLs) on Ray and match every hash against banks.

The results stream: hashes come back from the cluster in order of completion, are matched in batches of up to
`MATCH_CHUNK` signals, and each match is written as one JSON line at once, so a sweep of millions of files holds
only a window of work in memory and an interrupted sweep keeps the matches it had found.

Two places to match against, behind one small interface (`BankMatcher`):

* `ServiceMatcher` — a running match service over HTTP (`TakebackClient.match_batch`), so the sweep needs only an
  API key with the match scope and sees only the banks that key is granted;
* `StoreMatcher` — this machine's takeback store: its banks are loaded into an in-memory index (`takeback.index`)
  in the driver, as the server would.

One JSON line per (source, signal, bank signal) match::

    {"source": "/backlog/a.jpg", "kind": "image", "sha256": "…", "signal_type": "pdq", "value": "…",
     "bank": "case-17", "signal_id": 42, "distance": 6}

A match found through one of the file's query variants (`--query-modes`, default `borders`: the picture inside a
letterbox or frame) is folded into the file's own signal and says which: ``"via": "border"``.

(vPDQ lines carry `query_match_pct`/`compared_match_pct` and no `value`: the frame list is long and the source and
sha256 already name the video.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from takeback.bulk.ray_hash import DEFAULT_CHUNK_FILES, default_window, died
from takeback.bulk.url_hash import SweepItem, remote_hash_items
from takeback.bulk.window import windowed
from takeback.cli_service import MATCH_CHUNK, LocalSignal, signals_of
from takeback.client import TakebackClient
from takeback.config import Settings
from takeback.discover.fetch import FetchPolicy
from takeback.protect.hash_file import HashOptions, Task
from takeback.protect.queries import fold
from takeback.protect.results import FileResult, Status
from takeback.protect.walk import Problem, walk

MatchItems = list[list[dict[str, Any]]]


class SweepError(Exception):
    """The sweep cannot start as asked (for example a bank that the local store does not have)."""


class BankMatcher(Protocol):
    """One list of matches (plain dicts: bank, signal_id, distance, …) per signal, in order."""

    def match(self, signals: Sequence[LocalSignal]) -> MatchItems: ...


def _threshold(signal: LocalSignal, threshold: int | None) -> int | None:
    return threshold if signal.signal_type in ("pdq", "vpdq") else None


class ServiceMatcher:
    """Match over HTTP against a running `takeback serve` (errors are the client's ServiceError subclasses)."""

    def __init__(
        self, client: TakebackClient, banks: Sequence[str] | None = None, threshold: int | None = None
    ) -> None:
        self.client = client
        self.banks = list(banks) if banks else None
        self.threshold = threshold

    def match(self, signals: Sequence[LocalSignal]) -> MatchItems:
        found: MatchItems = []
        for start in range(0, len(signals), MATCH_CHUNK):
            queries = []
            for signal in signals[start : start + MATCH_CHUNK]:
                threshold = _threshold(signal, self.threshold)
                queries.append(signal.query() | ({"threshold": threshold} if threshold is not None else {}))
            found.extend(self.client.match_batch(queries, banks=self.banks))
        return found


class StoreMatcher:
    """Match in this process against the banks of a takeback store (SQLite file or PostgreSQL)."""

    def __init__(self, matcher: Any, names: dict[int, str], bank_ids: frozenset[int] | None, threshold: int | None):
        self._matcher = matcher
        self._names = names
        self._bank_ids = bank_ids
        self.threshold = threshold

    @classmethod
    def open(cls, settings: Settings, banks: Sequence[str] | None = None, threshold: int | None = None) -> StoreMatcher:
        """Load the store's signals into an index (no snapshots written, no background sync)."""
        from takeback.store import get_banks_by_names, list_banks
        from takeback.store.db import open_store, session_factory
        from takeback.web.matcher import Matcher

        engine, _sessions = open_store(settings)
        reader = session_factory(engine, read_only=True)
        with reader() as session:
            names = {b.id: b.name for b in list_banks(session)}
            bank_ids = None
            if banks:
                chosen = get_banks_by_names(session, banks)
                missing = [name for name in banks if name not in chosen]
                if missing:
                    engine.dispose()
                    raise SweepError(f"the store has no bank named {missing[0]!r}")
                bank_ids = frozenset(b.id for b in chosen.values())
        quiet = settings.model_copy(update={"index_sync_interval_s": 0.0})
        matcher = Matcher.open(reader, quiet, snapshots=False)
        engine.dispose()  # the index is loaded; matching needs no database
        return cls(matcher, names, bank_ids, threshold)

    def __len__(self) -> int:
        return len(self._matcher)

    def match(self, signals: Sequence[LocalSignal]) -> MatchItems:
        from takeback.index import Query

        queries = [Query(s.signal_type, s.value, _threshold(s, self.threshold)) for s in signals]
        found: MatchItems = []
        for query, matches in zip(queries, self._matcher.match(queries, self._bank_ids), strict=True):
            items = []
            for m in matches:
                item: dict[str, Any] = {
                    "bank": self._names.get(m.bank_id, str(m.bank_id)),
                    "signal_id": m.signal_id,
                    "signal_type": query.signal_type,
                    "distance": m.distance,
                }
                if m.query_match_pct is not None:
                    item["query_match_pct"] = m.query_match_pct
                if m.compared_match_pct is not None:
                    item["compared_match_pct"] = m.compared_match_pct
                items.append(item)
            found.append(items)
        return found


@dataclass(frozen=True, slots=True)
class SweepReport:
    sources: int  # files and URLs looked at (not counting skipped non-media files)
    hashed: int
    failed: int
    skipped: int
    signals: int  # signals matched
    matches: int  # JSON lines written
    matched_sources: int


def read_url_list(lines: Iterable[str]) -> list[str]:
    """URLs one per line; blank lines and `#` comments are ignored, anything but http(s) is an error."""
    urls: list[str] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not text.lower().startswith(("http://", "https://")):
            raise SweepError(f"line {number}: not an http(s) URL: {text[:100]!r}")
        urls.append(text)
    return urls


def match_line(result: FileResult, signal: LocalSignal, match: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"source": result.path, "kind": result.kind, "sha256": result.sha256}
    line["signal_type"] = signal.signal_type
    if signal.signal_type != "vpdq":
        line["value"] = signal.value
    line.update({k: v for k, v in match.items() if k != "signal_type"})
    return line


def sweep(
    paths: Sequence[Path],
    urls: Sequence[str],
    matcher: BankMatcher,
    write: Callable[[dict[str, Any]], None],
    *,
    options: HashOptions,
    cpus: int,
    chunk_files: int = DEFAULT_CHUNK_FILES,
    window: int | None = None,
    fetch_policy: FetchPolicy | None = None,
    allow_networks: Sequence[str] = (),
    on_result: Callable[[FileResult], None] | None = None,
) -> SweepReport:
    """Hash `paths` (walked) and `urls` on the connected Ray cluster and `write` one dict per match.

    Call inside `cluster.connect`. `allow_networks` is for tests only (lets the fetcher reach a loopback server).
    `on_result` sees every file's or URL's result as it arrives (progress, failure messages).
    """
    counts = {"sources": 0, "hashed": 0, "failed": 0, "skipped": 0, "signals": 0, "matches": 0}
    matched: set[str] = set()
    pending: list[tuple[FileResult, LocalSignal]] = []

    def seen(result: FileResult) -> None:
        if result.status is Status.SKIPPED:
            counts["skipped"] += 1
        else:
            counts["sources"] += 1
            counts["failed" if result.status is Status.FAILED else "hashed"] += 1
        if on_result is not None:
            on_result(result)

    def flush() -> None:
        if not pending:
            return
        found = matcher.match([signal for _, signal in pending])
        counts["signals"] += len(pending)
        # A file's signals are queued together and flushed together: fold its query variants' matches into its own
        # signals' (one line per bank signal, `via` naming the variant that found it).
        start = 0
        while start < len(pending):
            result = pending[start][0]
            stop = start
            while stop < len(pending) and pending[stop][0] is result:
                stop += 1
            signals, matches_of = fold([s for _, s in pending[start:stop]], found[start:stop])
            for signal, matches in zip(signals, matches_of, strict=True):
                for match in matches:
                    write(match_line(result, signal, match))
                    counts["matches"] += 1
                    matched.add(result.path)
            start = stop
        pending.clear()

    def items() -> Iterator[SweepItem]:
        for item in walk(list(paths)):
            if isinstance(item, Problem):
                seen(FileResult(path=item.path, status=Status.FAILED, error_code=item.code, reason=item.reason))
            else:
                yield Task(item.path)
        yield from urls

    def crashed(item: SweepItem, reason: str) -> FileResult:
        return died(item if isinstance(item, Task) else Task(item), reason)

    for _position, result in windowed(
        items(),
        remote_hash_items(),
        args=(options, fetch_policy or FetchPolicy(), tuple(allow_networks)),
        chunk_size=chunk_files,
        window=window or default_window(cpus),
        crashed=crashed,
    ):
        seen(result)
        pending.extend((result, signal) for signal in signals_of(result))
        if len(pending) >= MATCH_CHUNK:
            flush()
    flush()
    return SweepReport(matched_sources=len(matched), **counts)
