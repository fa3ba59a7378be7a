"""Domain watch throughput: a recorded-style certstream feed of N lines (default 100,000) read and matched against
cases' names, the way `takeback watch` runs it (without the database).

The feed is generated into a temporary file: random word domains (most certificates with a www. twin), a
planted hit every ~1,000 lines in each variant kind (separator, glued, reversed, leet, typo, confusable rn,
punycode look-alike) and decoys (other people's names, one word of the name).  Reported: lines/s and domains/s
for reading alone and for reading + matching, with 1 and 5 cases (3 names each), and the planted hits found.

    python benchmarks/watch.py [--lines 100000] [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_lines
from takeback.discover.domains import to_ascii
from takeback.discover.feeds import FeedStats, iter_feed
from takeback.discover.names import NameMatcher
from takeback.discover.watch import watch

WORDS = [
    "shop",
    "cloud",
    "solar",
    "green",
    "media",
    "best",
    "deals",
    "home",
    "cafe",
    "travel",
    "tech",
    "data",
    "smart",
    "pixel",
    "north",
    "river",
    "stone",
    "blue",
    "market",
    "studio",
    "garden",
    "fitness",
    "crypto",
    "games",
    "news",
    "photo",
    "music",
    "health",
    "legal",
    "auto",
    "bank",
    "energy",
    "pet",
    "kitchen",
    "miami",
    "khalifa",
]
TLDS = ["com", "net", "org", "io", "co.uk", "de", "shop", "xyz", "online", "com.br"]
PLANTED = [
    "mia-khalifa-videos.com",
    "watchmiakhalifa.xyz",
    "khalifa-mia.online",
    "m1a-kh4l1fa.io",
    "miakhalfa.shop",
    "rniakhalifa.de",
    to_ascii("mіa-khalifa.com"),
]
DECOYS = ["miami-deals.com", "samia-khalifa.org", "burjkhalifa-tickets.com", "mia-fashion.shop", "miakhan.net"]
OTHER_CASES = [
    [("Zoë Lindqvist", "name"), ("zoelindy", "username"), ("Zoe L", "alias")],
    [("Anastasia Petrova", "name"), ("Nastya", "alias"), ("nastya_p", "username")],
    [("Ngozi Okonkwo", "name"), ("ngozi.ok", "username"), ("Ngo", "alias")],
    [("Sofía Hernández", "name"), ("sofi_hz", "username"), ("Sofi H", "alias")],
]


def write_feed(path: Path, lines: int, packed: bool) -> int:
    rng = random.Random(4)
    planted = 0
    opener = gzip.open if packed else open
    with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        for index in range(lines):
            if index % 1000 == 500:
                main = PLANTED[(index // 1000) % len(PLANTED)]
                planted += 1
            elif index % 1000 == 900:
                main = DECOYS[(index // 1000) % len(DECOYS)]
            else:
                words = rng.sample(WORDS, rng.choice([1, 2, 2, 3]))
                main = "-".join(words) + str(rng.randint(1, 99_999)) + "." + rng.choice(TLDS)
            names = [main, f"www.{main}"] if rng.random() < 0.6 else [main]
            message = {
                "message_type": "certificate_update",
                "data": {
                    "leaf_cert": {
                        "all_domains": names,
                        "fingerprint": f"{rng.getrandbits(160):040X}",
                        "issuer": {"aggregated": "/C=US/O=Let's Encrypt/CN=R11"},
                    },
                    "seen": 1_780_000_000 + index / 100,
                    "source": {"name": "bench log"},
                },
            }
            fh.write(json.dumps(message) + "\n")
    return planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--gzip", action="store_true", help="write and read the feed gzip-compressed")
    args = parser.parse_args()
    for line in machine_lines(["rapidfuzz", "tldextract", "anyascii", "idna"]):
        print(line)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("feed.jsonl.gz" if args.gzip else "feed.jsonl")
        planted = write_feed(path, args.lines, args.gzip)
        print(f"feed: {args.lines} lines, {path.stat().st_size / 1e6:.1f} MB{' gzip' if args.gzip else ''}")

        stats = FeedStats()
        start = time.perf_counter()
        domains = sum(1 for _ in iter_feed(path, "certstream", stats))
        read_s = time.perf_counter() - start
        print(f"read only: {read_s:.2f} s, {args.lines / read_s:,.0f} lines/s, {domains / read_s:,.0f} domains/s")

        mia = [("Mia Khalifa", "name"), ("miak_official", "username"), ("Mia K", "alias")]
        for cases in (1, 5):
            matchers = {i + 1: NameMatcher(names) for i, names in enumerate([mia, *OTHER_CASES][:cases])}
            stats = FeedStats()
            start = time.perf_counter()
            hits = list(watch(iter_feed(path, "certstream", stats), matchers, feed="bench"))
            took = time.perf_counter() - start
            found = {h.entry.domain.removeprefix("www.") for h in hits if h.case_id == 1}
            decoys = found & set(DECOYS)
            print(
                f"read + match, {cases} case(s) x 3 names: {took:.2f} s, {args.lines / took:,.0f} lines/s, "
                f"{stats.entries / took:,.0f} domains/s; hits {len(hits)}, planted kinds found "
                f"{len(found & set(PLANTED))}/{len(PLANTED)} ({planted} planted lines), decoys hit {len(decoys)}"
            )


if __name__ == "__main__":
    main()
