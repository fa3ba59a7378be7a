"""The demo's domain feed: a recorded certstream-style file shipped with the package, replayed through the real
domain watch (``discover.watch``) as if it had arrived over the last days.

Why shift the timestamps: the recording's dates are fixed, the demo runs on any day.  Moving every entry by one
offset (so the recording ends ``ends_before`` ago) keeps the feed's rhythm and gives the overview chart a history
instead of one dot.  Nothing else about the entries changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from takeback.discover.feeds import FeedEntry, FeedStats, iter_feed
from takeback.discover.watch import WatchSummary, load_matchers, watch, watch_into_store

FEED_NAME = "feed_certstream.jsonl"


def feed_path() -> Path:
    return Path(str(resources.files("takeback.demo") / "data" / FEED_NAME))


def replayed(now: datetime, *, ends_before: timedelta = timedelta(hours=20)) -> Iterator[FeedEntry]:
    """The recording's entries with their times moved so the last one is ``ends_before`` before ``now``."""
    entries = list(iter_feed(feed_path(), "certstream", FeedStats()))
    times = [e.seen_at for e in entries if e.seen_at is not None]
    if not times:
        yield from entries
        return
    offset = (now - ends_before) - max(times)
    for entry in entries:
        yield replace(entry, seen_at=entry.seen_at + offset) if entry.seen_at is not None else entry


def watch_case(sessions: sessionmaker[Session], case_id: int, now: datetime, threshold: int) -> WatchSummary:
    """Run the replayed feed through the domain watch for one case and record its hits as domain findings."""
    with sessions() as session:
        matchers = load_matchers(session, [case_id], threshold=threshold)
    return watch_into_store(sessions, watch(replayed(now), matchers, feed=FEED_NAME))
