"""New-domain feeds: Certificate Transparency (certstream JSON lines), domain lists and zone files.

Why pluggable: feeds differ only in how a line becomes domains, so a reader is one small object with a name and
an ``entries(lines, stats)`` method, and the watch does not care where lines come from (a recorded file, a gzip
file, a pipe, a websocket relay writing lines).  Feeds are untrusted and large: a malformed line or domain is
counted in ``FeedStats`` and skipped, never fatal; lines over ``MAX_LINE`` bytes are skipped unread.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Protocol

from takeback.discover.domains import InvalidDomain, clean_domain

__all__ = [
    "MAX_LINE",
    "READERS",
    "CertstreamReader",
    "DomainListReader",
    "FeedEntry",
    "FeedError",
    "FeedReader",
    "FeedStats",
    "ZoneFileReader",
    "get_reader",
    "iter_feed",
    "read_lines",
]

#: Longest line read (certstream messages for certificates with many names run to tens of kilobytes).
MAX_LINE = 1024 * 1024
_MAX_EXAMPLES = 20
#: Record types a zone line must name (in its second to fourth field) to count as a record.
_RR_TYPES = frozenset(
    {"A", "AAAA", "NS", "DS", "CNAME", "DNAME", "MX", "TXT", "SOA", "SRV", "CAA", "PTR", "HTTPS", "SVCB", "DNSKEY"}
    | {"RRSIG", "NSEC", "NSEC3", "NSEC3PARAM"}
)
_TEXT_MAX = 300


class FeedError(Exception):
    """A feed that cannot be read at all (missing file, unknown format)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One domain seen in a feed, with what the feed said about it."""

    #: Lower-case ASCII (punycode) host name, wildcard and trailing dot removed.
    domain: str
    #: Line number in the feed (1-based).
    line: int
    seen_at: datetime | None = None
    #: Certificate facts, when the feed has them (certstream).
    fingerprint: str | None = None
    issuer: str | None = None
    #: The CT log (or other source) that carried the entry.
    source: str | None = None


@dataclass(slots=True)
class FeedStats:
    """Counts for one run over a feed; ``examples`` keeps the first few malformed lines' reasons."""

    lines: int = 0
    entries: int = 0
    malformed: int = 0
    skipped: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def bad(self, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append((line, reason[:_TEXT_MAX]))


class FeedReader(Protocol):
    """Turns a feed's lines into entries; counts what it cannot read in ``stats`` instead of raising."""

    name: str

    def entries(self, lines: Iterable[str], stats: FeedStats) -> Iterator[FeedEntry]: ...


def _feed_domain(raw: str) -> str:
    """A feed's domain: a cleaned host name with at least two labels (a bare word is a broken line)."""
    domain = clean_domain(raw)
    if "." not in domain:
        raise InvalidDomain(f"not a domain name: {raw[:80]!r}")
    return domain


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value[:_TEXT_MAX]
    return None


def _seen(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _issuer(leaf: dict[str, Any]) -> str | None:
    issuer = leaf.get("issuer")
    if isinstance(issuer, dict):
        return _text(issuer.get("aggregated")) or _text(issuer.get("O")) or _text(issuer.get("CN"))
    return _text(issuer)


class CertstreamReader:
    """certstream's JSON messages, one per line: ``data.leaf_cert.all_domains`` (``*.`` stripped), the
    certificate's fingerprint and issuer, ``data.seen`` (epoch seconds) and ``data.source`` (the CT log).
    Heartbeats and other message types are skipped; a certificate's bad names are counted, its good ones kept."""

    name = "certstream"

    def entries(self, lines: Iterable[str], stats: FeedStats) -> Iterator[FeedEntry]:
        for number, line in enumerate(lines, 1):
            stats.lines += 1
            if not line.strip():
                stats.skipped += 1
                continue
            try:
                message = json.loads(line)
            except (ValueError, RecursionError) as exc:
                stats.bad(number, f"not JSON: {exc}")
                continue
            if not isinstance(message, dict):
                stats.bad(number, "not a JSON object")
                continue
            kind = message.get("message_type", "certificate_update")
            if kind != "certificate_update":
                stats.skipped += 1
                continue
            data = message.get("data")
            leaf = data.get("leaf_cert") if isinstance(data, dict) else None
            names = leaf.get("all_domains") if isinstance(leaf, dict) else None
            if not isinstance(names, list) or not isinstance(data, dict) or not isinstance(leaf, dict):
                stats.bad(number, "no data.leaf_cert.all_domains list")
                continue
            source = data.get("source")
            log = (_text(source.get("name")) or _text(source.get("url"))) if isinstance(source, dict) else None
            seen_at, fingerprint, issuer = _seen(data.get("seen")), _text(leaf.get("fingerprint")), _issuer(leaf)
            seen: set[str] = set()
            for raw in names:
                if not isinstance(raw, str):
                    stats.bad(number, "a name that is not a string")
                    continue
                try:
                    domain = _feed_domain(raw)
                except InvalidDomain as exc:
                    stats.bad(number, str(exc))
                    continue
                if domain in seen:
                    continue
                seen.add(domain)
                stats.entries += 1
                yield FeedEntry(domain, number, seen_at, fingerprint, issuer, log)


class DomainListReader:
    """Newly-registered-domain lists: one domain per line (``#`` comments; extra columns after a comma, tab or
    space are ignored, so ``domain,date`` CSV exports work)."""

    name = "domains"

    def entries(self, lines: Iterable[str], stats: FeedStats) -> Iterator[FeedEntry]:
        for number, line in enumerate(lines, 1):
            stats.lines += 1
            text = line.split("#", 1)[0].strip()
            if not text:
                stats.skipped += 1
                continue
            fields = text.replace(",", " ").replace("\t", " ").split()
            if not fields:
                stats.bad(number, "no domain before the separator")
                continue
            try:
                domain = _feed_domain(fields[0])
            except InvalidDomain as exc:
                stats.bad(number, str(exc))
                continue
            stats.entries += 1
            yield FeedEntry(domain, number)


class ZoneFileReader:
    """DNS zone files (the TLD zone files registries publish): each record's owner name, made absolute with
    ``$ORIGIN``; the zone's own apex, ``$`` directives, comments and multi-line record bodies are skipped, and a
    domain is reported once per run of its records (``example.com. NS a`` / ``example.com. NS b``)."""

    name = "zone"

    def entries(self, lines: Iterable[str], stats: FeedStats) -> Iterator[FeedEntry]:
        origin = ""
        previous = ""
        depth = 0
        for number, line in enumerate(lines, 1):
            stats.lines += 1
            text = line.split(";", 1)[0]
            if depth > 0:  # inside ( ... ) of a multi-line record
                depth = max(0, depth + text.count("(") - text.count(")"))
                stats.skipped += 1
                continue
            depth = max(0, text.count("(") - text.count(")"))
            if not text.strip():
                stats.skipped += 1
                continue
            fields = text.split()
            if fields[0].upper() == "$ORIGIN" and len(fields) > 1:
                origin = fields[1].strip(".").lower()
                stats.skipped += 1
                continue
            if fields[0].startswith("$") or text[0] in " \t":
                stats.skipped += 1  # $TTL/$INCLUDE, or a record for the previous owner
                continue
            if len(fields) < 3 or not _RR_TYPES.intersection(f.upper() for f in fields[1:4]):
                stats.bad(number, "not a zone record (owner [TTL] [class] type data)")
                continue
            owner = fields[0]
            if owner == "@":
                owner = origin
            elif not owner.endswith(".") and origin:
                owner = f"{owner}.{origin}"
            try:
                domain = clean_domain(owner)
            except InvalidDomain as exc:
                stats.bad(number, str(exc))
                continue
            if domain in (origin, previous) or "." not in domain:
                stats.skipped += 1
                continue
            previous = domain
            stats.entries += 1
            yield FeedEntry(domain, number)


#: The built-in readers by format name.  A caller with its own reader passes it to ``iter_feed`` directly.
READERS: Mapping[str, Callable[[], FeedReader]] = MappingProxyType(
    {"certstream": CertstreamReader, "domains": DomainListReader, "zone": ZoneFileReader}
)


def get_reader(name: str, extra: Mapping[str, Callable[[], FeedReader]] | None = None) -> FeedReader:
    factories = {**READERS, **(extra or {})}
    try:
        return factories[name]()
    except KeyError:
        raise FeedError(f"unknown feed format {name!r} (one of {', '.join(sorted(factories))})") from None


def _lines(handle: IO[bytes], stats: FeedStats, max_line: int) -> Iterator[str]:
    while True:
        raw = handle.readline(max_line + 1)
        if not raw:
            return
        if len(raw) > max_line and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of an over-long line without keeping it
                raw = handle.readline(max_line)
            stats.lines += 1
            stats.bad(stats.lines, f"line longer than {max_line} bytes")
            continue
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def read_lines(path: str | Path, stats: FeedStats, *, max_line: int = MAX_LINE) -> Iterator[str]:
    """Lines of a feed file, gzip-compressed or not (told by its magic bytes, not its name).

    Over-long lines are counted as malformed and skipped (they count as lines, so readers' line numbers shift
    only for those).  Raises ``FeedError`` when the file cannot be opened."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except OSError as exc:
        raise FeedError(f"cannot open feed {path}: {exc.strerror or exc}") from exc

    def generate() -> Iterator[str]:
        with handle:
            magic = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
            if magic == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=handle) as unzipped:
                    try:
                        yield from _lines(unzipped, stats, max_line)  # type: ignore[arg-type]
                    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream ends the feed
                        stats.bad(stats.lines + 1, f"gzip: {exc}")
            else:
                yield from _lines(handle, stats, max_line)

    return generate()


def iter_feed(
    source: str | Path | Iterable[str], reader: str | FeedReader, stats: FeedStats | None = None
) -> Iterator[FeedEntry]:
    """Entries of a feed: ``source`` is a file path (plain or gzip) or any iterable of lines (a stream)."""
    stats = stats if stats is not None else FeedStats()
    feed_reader = get_reader(reader) if isinstance(reader, str) else reader
    lines = read_lines(source, stats) if isinstance(source, str | Path) else source
    return feed_reader.entries(lines, stats)
