"""Feed readers on the recorded feeds (tests/discover/data, written by make_feeds.py) and on hostile input."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.discover.feeds import (
    READERS,
    CertstreamReader,
    FeedEntry,
    FeedError,
    FeedStats,
    get_reader,
    iter_feed,
    read_lines,
)

DATA = Path(__file__).parent / "data"
CERTSTREAM = DATA / "feed_certstream.jsonl"
DOMAINS = DATA / "feed_domains.txt"
ZONE = DATA / "feed_zone.txt"


def _read(source: str | Path | Iterable[str], fmt: str) -> tuple[list[FeedEntry], FeedStats]:
    stats = FeedStats()
    return list(iter_feed(source, fmt, stats)), stats


def test_certstream_recorded_feed() -> None:
    entries, stats = _read(CERTSTREAM, "certstream")
    domains = {e.domain for e in entries}
    assert stats.lines == 425 and stats.malformed == 4 and stats.skipped == 10  # 9 heartbeats, one blank line
    assert [line for line, _ in stats.examples] == [12, 61, 121, 201]
    assert "watchmiakhalifa.xyz" in domains and not any(d.startswith("*") for d in domains)  # wildcard stripped
    assert "fine-example.org" in domains  # the good name of a certificate with a bad one
    entry = next(e for e in entries if e.domain == "miakhalfa.shop")
    assert entry.fingerprint and len(entry.fingerprint.split(":")) == 20
    assert entry.issuer and entry.issuer.startswith("/C=")
    assert entry.source and "log" in entry.source.lower()
    assert entry.seen_at and entry.seen_at.tzinfo is UTC and entry.seen_at.year == 2026
    assert stats.entries == len(entries)


def test_certstream_message_details() -> None:
    message = {
        "message_type": "certificate_update",
        "data": {
            "leaf_cert": {
                "all_domains": ["*.Example.COM", "example.com", "www.example.com.", 7, "bad name.com"],
                "fingerprint": "AA:BB",
                "issuer": {"O": "Test CA"},
            },
            "seen": 1_780_000_000.5,
            "source": {"url": "https://log.example/"},
        },
    }
    entries, stats = _read([json.dumps(message), json.dumps({"message_type": "heartbeat"})], "certstream")
    assert [e.domain for e in entries] == ["example.com", "www.example.com"]  # wildcard folded into its base
    assert entries[0] == FeedEntry(
        "example.com", 1, datetime.fromtimestamp(1_780_000_000.5, UTC), "AA:BB", "Test CA", "https://log.example/"
    )
    assert stats.malformed == 2 and stats.skipped == 1


@pytest.mark.parametrize("seen", [float("nan"), 1e300, "yesterday", True, None, -1e20])
def test_certstream_bad_seen_time_is_dropped_not_fatal(seen: object) -> None:
    line = json.dumps({"data": {"leaf_cert": {"all_domains": ["a.example"]}, "seen": seen}})
    [entry], stats = _read([line], "certstream")
    assert entry.seen_at is None and stats.malformed == 0


def test_domain_list_recorded_feed() -> None:
    entries, stats = _read(DOMAINS, "domains")
    assert stats.malformed == 2  # "not a domain at all!" and "-leading-hyphen.com"
    assert stats.skipped == 3  # two comments, one blank line
    assert len(entries) == 329 and all("," not in e.domain for e in entries)
    assert {"zoelindy.net", "miakhalfa.shop", "samia-khalifa.org"} <= {e.domain for e in entries}


def test_zone_file_recorded_feed() -> None:
    entries, stats = _read(ZONE, "zone")
    domains = [e.domain for e in entries]
    assert len(domains) == 126  # one per run of an owner's records; the apex, SOA body and directives skipped
    assert all(a != b for a, b in itertools.pairwise(domains))
    assert {"miakhalifa.com", "mia-khalifa-videos.com", "zoelindy.com"} <= set(domains)
    assert all(d.endswith(".com") for d in domains)
    assert stats.malformed == 2


def test_zone_origin_relative_names_and_multiline_records() -> None:
    lines = [
        "$ORIGIN example.",
        "$TTL 3600",
        "@ IN SOA ns. admin. ( 1",
        "  2 3 4 5 )",
        "shop 3600 IN NS ns1.host.",
        "       3600 IN NS ns2.host.",
        "shop 3600 IN NS ns3.host. ; same owner again",
        "other.example. 3600 IN NS ns1.host.",
        "; comment only",
        "@ 3600 IN NS a.nic.",
        "$ORIGIN test.",
        "mia-khalifa 60 IN A 192.0.2.1",
    ]
    entries, stats = _read(lines, "zone")
    expected = [("shop.example", 5), ("other.example", 8), ("mia-khalifa.test", 12)]
    assert [(e.domain, e.line) for e in entries] == expected
    assert stats.malformed == 0


def test_gzip_file_reads_like_the_plain_one(tmp_path: Path) -> None:
    packed = tmp_path / "feed.bin"  # told by magic bytes, not by the name
    packed.write_bytes(gzip.compress(CERTSTREAM.read_bytes()))
    plain, plain_stats = _read(CERTSTREAM, "certstream")
    unpacked, unpacked_stats = _read(packed, "certstream")
    assert unpacked == plain and unpacked_stats == plain_stats


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    data = gzip.compress(DOMAINS.read_bytes())
    broken = tmp_path / "broken.gz"
    broken.write_bytes(data[: len(data) // 2])
    entries, stats = _read(broken, "domains")
    assert 0 < len(entries) < 329
    assert any("gzip" in reason for _, reason in stats.examples)


def test_stream_of_lines() -> None:
    stream = io.StringIO("a-example.com\nb-example.org\n")
    entries, _ = _read(stream, "domains")
    assert [e.domain for e in entries] == ["a-example.com", "b-example.org"]


def test_overlong_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    path.write_bytes(b"first.example\n" + b"x" * 5000 + b".example\nsecond.example\n\xff\xfe.example\n")
    stats = FeedStats()
    lines = list(read_lines(path, stats, max_line=1000))
    assert lines == ["first.example", "second.example", "\ufffd\ufffd.example"]
    assert stats.malformed == 1
    entries = list(get_reader("domains").entries(lines, stats))
    assert [e.domain for e in entries] == ["first.example", "second.example"]
    assert stats.malformed == 2  # the undecodable bytes make a bad domain


def test_unknown_format_and_missing_file() -> None:
    with pytest.raises(FeedError, match="unknown feed format"):
        get_reader("rss")
    with pytest.raises(FeedError, match="cannot open"):
        iter_feed("/nonexistent/feed.txt", "domains")
    assert set(READERS) == {"certstream", "domains", "zone"}


def test_a_custom_reader_plugs_in() -> None:
    class CsvReader:
        name = "csv"

        def entries(self, lines: Iterable[str], stats: FeedStats) -> Iterator[FeedEntry]:
            for number, line in enumerate(lines, 1):
                stats.lines += 1
                yield FeedEntry(line.split(";")[1], number)

    assert [e.domain for e in iter_feed(["1;x.example"], CsvReader())] == ["x.example"]
    assert get_reader("csv", {"csv": CsvReader}).name == "csv"


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=20), fmt=st.sampled_from(sorted(READERS)))
def test_garbage_is_counted_never_fatal(lines: list[str], fmt: str) -> None:
    entries, stats = _read(lines, fmt)
    assert stats.lines == len(lines)
    assert all(e.domain == e.domain.lower() and "." in e.domain for e in entries)


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
        max_leaves=12,
    )
)
def test_certstream_odd_json_is_counted(value: object) -> None:
    wrapped = {"message_type": "certificate_update", "data": {"leaf_cert": value}}
    stats = FeedStats()
    list(CertstreamReader().entries([json.dumps(value), json.dumps(wrapped)], stats))
    assert stats.lines == 2 and stats.malformed + stats.skipped + stats.entries >= 1
