"""Domain watch: recorded feeds against cases' names, findings on SQLite and PostgreSQL, and the CLI."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from takeback import config, store
from takeback.cli import app
from takeback.discover.domains import to_ascii
from takeback.discover.feeds import FeedEntry, FeedStats, iter_feed
from takeback.discover.names import NameMatcher
from takeback.discover.watch import (
    NoNames,
    UnknownCase,
    WatchHit,
    evidence_for,
    finding_url,
    load_matchers,
    watch,
    watch_into_store,
)
from takeback.store.db import make_engine, session_factory

DATA = Path(__file__).parent / "data"
MATCHERS = {
    1: NameMatcher([("Mia Khalifa", "name")]),
    2: NameMatcher([("Zoë Lindqvist", "name"), ("zoelindy", "username")]),
}


def _expected() -> set[tuple[str, int]]:
    with open(DATA / "feeds_expected.csv", encoding="utf-8", newline="") as fh:
        return {(row["domain"].removeprefix("www."), int(row["case"])) for row in csv.DictReader(fh)}


def _hits(feed: str, fmt: str) -> list[WatchHit]:
    return list(watch(iter_feed(DATA / feed, fmt), MATCHERS, feed=feed))


@pytest.mark.parametrize(("feed", "fmt"), [("feed_certstream.jsonl", "certstream"), ("feed_domains.txt", "domains")])
def test_recorded_feeds_find_every_planted_domain_and_no_decoy(feed: str, fmt: str) -> None:
    found = {(h.entry.domain.removeprefix("www."), h.case_id) for h in _hits(feed, fmt)}
    assert found == _expected()


def test_zone_feed() -> None:
    found = {(h.entry.domain, h.case_id) for h in _hits("feed_zone.txt", "zone")}
    assert found == {("mia-khalifa-videos.com", 1), ("miakhalifa.com", 1), ("zoelindy.com", 2)}


def test_a_domain_seen_twice_in_one_run_is_matched_once() -> None:
    entries = [FeedEntry("miakhalifa.com", 1), FeedEntry("miakhalifa.com", 2), FeedEntry("other.com", 3)]
    assert [h.entry.line for h in watch(entries, MATCHERS)] == [1]


def test_threshold_is_passed_down() -> None:
    entries = [FeedEntry("m-khalifa.com", 1)]
    assert list(watch(entries, MATCHERS)) == []
    [hit] = watch(entries, MATCHERS, threshold=70)
    assert hit.best.match == "initials"


def test_evidence_from_a_certificate() -> None:
    hit = next(h for h in _hits("feed_certstream.jsonl", "certstream") if h.entry.domain == "rniakhalifa.de")
    evidence = evidence_for(hit)
    assert evidence["signal"] == "domain-watch" and evidence["feed"] == "feed_certstream.jsonl"
    assert (evidence["match"], evidence["variant"], evidence["score"]) == ("confusable", "mia khalifa", 90)
    assert evidence["domain"] == "rniakhalifa.de" and evidence["feed_line"] == hit.entry.line
    certificate = evidence["certificate"]
    assert set(certificate) == {"fingerprint", "issuer", "log", "seen_at"}
    assert certificate["seen_at"].startswith("2026-")


def test_evidence_for_punycode_and_several_names() -> None:
    matchers = {7: NameMatcher([("Zoë Lindqvist", "name"), ("Zoe", "alias")])}
    domain = to_ascii("zoë-lindqvist.se")
    [hit] = watch([FeedEntry(domain, 4)], matchers, feed="list")
    evidence = evidence_for(hit)
    assert evidence["domain_unicode"] == "zoë-lindqvist.se"
    assert (evidence["name"], evidence["score"]) == ("Zoe", 100)  # the alias, exact, outscores the full name
    others = [(o["name"], o["match"], o["score"]) for o in evidence["other_names"]]
    assert others == [("Zoë Lindqvist", "separator", 95)]
    assert "certificate" not in evidence
    assert domain.startswith("xn--") and finding_url(hit.entry.domain) == f"https://{domain}/"


# --- the database part (SQLite and PostgreSQL) ------------------------------------------------------------------


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    yield session_factory(engine)
    engine.dispose()


def _case(sessions: sessionmaker[Session], names: list[tuple[str, str]]) -> int:
    with sessions.begin() as session:
        case_id = store.create_case(session, "watch test").id
        for value, kind in names:
            store.add_case_name(session, case_id, value, kind)
    return case_id


def test_watch_into_store_records_domain_findings(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions, [("Mia Khalifa", "name")])
    with sessions() as session:
        matchers = load_matchers(session, [case_id])
    planted = {d for d, c in _expected() if c == 1}

    def run() -> tuple[int, int, list[bool]]:
        seen: list[bool] = []
        hits = watch(iter_feed(DATA / "feed_domains.txt", "domains"), matchers, feed="nrd")
        summary = watch_into_store(sessions, hits, batch_size=4, on_hit=lambda _hit, new: seen.append(new))
        return summary.created, summary.updated, seen

    created, updated, seen = run()
    assert (created, updated) == (len(planted), 0) and seen == [True] * len(planted)
    with sessions() as session:
        findings = store.list_findings(session, case_id, kind="domain")
    assert {f.url for f in findings} == {finding_url(d) for d in planted}
    finding = next(f for f in findings if f.url == "https://miakhalfa.shop/")
    assert finding.status == "open" and finding.evidence["match"] == "typo" and finding.evidence["feed"] == "nrd"

    created, updated, _ = run()  # the same feed again: the same findings, seen again
    assert (created, updated) == (0, len(planted))
    with sessions() as session:
        assert len(store.list_findings(session, case_id, kind="domain")) == len(planted)


def test_certificate_seen_time_becomes_the_finding_time(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions, [("Zoë Lindqvist", "name"), ("zoelindy", "username")])
    with sessions() as session:
        matchers = load_matchers(session, [case_id])
    hits = watch(iter_feed(DATA / "feed_certstream.jsonl", "certstream"), matchers, feed="ct")
    assert watch_into_store(sessions, hits).created >= 5
    with sessions() as session:
        finding = store.get_finding_by_url(session, case_id, "https://zoelindy.net/")
    assert finding is not None and finding.first_seen_at.year == 2026
    assert finding.evidence["certificate"]["fingerprint"]


def test_load_matchers_refuses_unknown_and_nameless_cases(sessions: sessionmaker[Session]) -> None:
    empty = _case(sessions, [])
    with sessions() as session:
        with pytest.raises(UnknownCase):
            load_matchers(session, [999_999])
        with pytest.raises(NoNames):
            load_matchers(session, [empty])


# --- CLI ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sessionmaker[Session]:
    """The CLI's configured database: a fresh SQLite file under a temporary data directory."""
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TAKEBACK_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    _, factory = store.open_store(config.load())
    return factory


def test_cli_watch_records_and_prints(cli_env: sessionmaker[Session]) -> None:
    case_id = _case(cli_env, [("Mia Khalifa", "name")])
    runner = CliRunner()
    result = runner.invoke(app, ["watch", str(case_id), "--feed", str(DATA / "feed_certstream.jsonl")])
    assert result.exit_code == 0, result.output
    assert "rniakhalifa.de" in result.output and "confusable" in result.output
    assert "425 lines" in result.output and "4 malformed" in result.output and "12 new findings" in result.output
    with cli_env() as session:
        assert len(store.list_findings(session, case_id, kind="domain")) == 12

    again = runner.invoke(app, ["watch", str(case_id), "-f", str(DATA / "feed_certstream.jsonl")])
    assert again.exit_code == 0 and "0 new findings, 12 seen again" in again.output


def test_cli_watch_gzip_stdin_dry_run_and_threshold(cli_env: sessionmaker[Session], tmp_path: Path) -> None:
    case_id = _case(cli_env, [("Mia Khalifa", "name")])
    packed = tmp_path / "nrd.txt.gz"
    packed.write_bytes(gzip.compress(b"m-khalifa.com\nmiakhalifa.net\n"))
    runner = CliRunner()
    dry = runner.invoke(app, ["watch", str(case_id), "-f", str(packed), "--format", "domains", "--dry-run"])
    assert dry.exit_code == 0 and "dry run" in dry.output and "1 hits" in dry.output
    args = ["watch", str(case_id), "-f", "-", "--format", "domains", "-t", "70"]
    low = runner.invoke(app, args, input="m-khalifa.com\n")
    assert low.exit_code == 0 and "initials" in low.output and "1 new findings" in low.output
    with cli_env() as session:
        assert [f.url for f in store.list_findings(session, case_id)] == ["https://m-khalifa.com/"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "999999", "-f", "FEED"], "no case 999999"),
        (["watch", "CASE", "-f", "/nonexistent.jsonl"], "feed file not found"),
        (["watch", "CASE", "-f", "FEED", "--format", "rss"], "unknown --format"),
        (["watch", "EMPTY", "-f", "FEED"], "has no names"),
        (["names", "check", "x.com"], "give --case"),
        (["names", "check", "x.com", "--name", "!!"], "no letters"),
        (["names", "check", "x.com", "--case", "999999"], "no case"),
    ],
)
def test_cli_usage_errors_exit_2(cli_env: sessionmaker[Session], args: list[str], message: str) -> None:
    case_id = _case(cli_env, [("Mia Khalifa", "name")])
    empty = _case(cli_env, [])
    mapping = {"CASE": str(case_id), "EMPTY": str(empty), "FEED": str(DATA / "feed_domains.txt")}
    result = CliRunner().invoke(app, [mapping.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_cli_names_check(cli_env: sessionmaker[Session]) -> None:
    case_id = _case(cli_env, [("Mia Khalifa", "name"), ("Nastya", "alias")])
    runner = CliRunner()
    result = runner.invoke(
        app, ["names", "check", "--case", str(case_id), "miami.com", "https://x.example/m1a_khalifa", "Nastya live"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("miami.com" in line and "no match" in line for line in lines)
    assert any("m1a_khalifa" in line and "leet" in line and "path" in line for line in lines)
    assert any("Nastya live" in line and "exact" in line for line in lines)
    offline = runner.invoke(app, ["names", "check", "--username", "zoelindy", "thezoelindy.com"])
    assert offline.exit_code == 0 and "zoelindy" in offline.output and "90" in offline.output


def test_cli_threshold_comes_from_settings(cli_env: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    args = ["names", "check", "--name", "Mia Khalifa", "m-khalifa.com"]
    assert "no match" in runner.invoke(app, args).output
    monkeypatch.setenv("TAKEBACK_NAME_MATCH_THRESHOLD", "70")
    assert "initials" in runner.invoke(app, args).output
    assert "no match" in runner.invoke(app, [*args, "--threshold", "75"]).output


def test_feed_stats_are_shared_with_the_watch() -> None:
    stats = FeedStats()
    list(watch(iter_feed(DATA / "feed_domains.txt", "domains", stats), MATCHERS))
    assert stats.entries == 329 and stats.malformed == 2
