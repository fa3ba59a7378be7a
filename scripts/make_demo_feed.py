"""Writes src/takeback/demo/data/feed_certstream.jsonl, the domain feed `takeback serve --demo` replays.

Synthetic but shaped like a certstream recording (certificate updates with several names, heartbeats, CT log
names): ordinary new domains, a few that use the demo person's names (see takeback.demo.story) and decoys that
must not match (other people's names, one word of hers).  Deterministic; the output is committed.
Usage: .venv/bin/python scripts/make_demo_feed.py
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "takeback" / "demo" / "data" / "feed_certstream.jsonl"
WORDS = ["shop", "cloud", "solar", "green", "media", "best", "deals", "home", "cafe", "travel", "tech", "data",
         "smart", "pixel", "north", "river", "stone", "blue", "market", "studio", "garden", "fitness", "news"]
TLDS = ["com", "net", "org", "io", "co.uk", "de", "shop", "xyz", "online"]
LOGS = [("Google 'Argon2026' log", "https://ct.googleapis.com/logs/us1/argon2026/"),
        ("Let's Encrypt 'Oak2026' log", "https://oak.ct.letsencrypt.org/2026/")]
ISSUERS = [{"C": "US", "O": "Let's Encrypt", "CN": "R11"}, {"C": "US", "O": "Google Trust Services", "CN": "WE1"}]
#: Domains that use her names (what the watch should find), spread over the recording.
PLANTED = ["ada-demoulin-videos.com", "www.adademoulin.net", "*.watchadademoulin.xyz", "demoulin-ada.online",
           "ada-rosewood.shop", "adademoulin-leaks.io", "adarosewood-pics.com", "adademoulin.blogspot.com"]
DECOYS = ["demoulin-bakery.fr", "ada-lovelace-fans.org", "rosewood-furniture.com", "adam-oulin.net",
          "ada-shop.de", "moulin-rouge-tickets.com"]
DAYS = 10
LINES = 160


def random_domain(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.choice([1, 2, 2, 3]))
    return "-".join(words) + str(rng.choice(["", "", rng.randint(1, 999)])) + "." + rng.choice(TLDS)


def main() -> None:
    rng = random.Random(11)
    specials = {index: name for index, name in zip(sorted(rng.sample(range(5, LINES), len(PLANTED + DECOYS))),
                                                   rng.sample(PLANTED + DECOYS, len(PLANTED + DECOYS)),
                                                   strict=True)}
    start = 1_780_000_000.0
    step = DAYS * 86_400 / LINES
    lines = []
    for index in range(LINES):
        seen = start + index * step + rng.random() * step
        if index % 40 == 7:
            lines.append(json.dumps({"message_type": "heartbeat", "timestamp": round(seen, 3)}))
            continue
        first = specials.get(index) or random_domain(rng)
        main_name = first.removeprefix("*.").removeprefix("www.")
        names = [first] + ([f"www.{main_name}"] if not first.startswith("www.") and rng.random() < 0.5 else [])
        issuer = rng.choice(ISSUERS)
        log = rng.choice(LOGS)
        lines.append(json.dumps({
            "message_type": "certificate_update",
            "data": {
                "update_type": "X509LogEntry",
                "leaf_cert": {
                    "subject": {"aggregated": f"/CN={main_name}", "CN": main_name},
                    "issuer": {**issuer, "aggregated": "".join(f"/{k}={v}" for k, v in issuer.items())},
                    "not_before": int(seen) - 3600,
                    "not_after": int(seen) + 90 * 86_400,
                    "serial_number": f"{rng.getrandbits(64):X}",
                    "fingerprint": ":".join(f"{b:02X}" for b in hashlib.sha1(f"{index}{main_name}".encode()).digest()),
                    "all_domains": names,
                },
                "chain": [],
                "cert_index": 700_000 + index,
                "seen": round(seen, 3),
                "source": {"name": log[0], "url": log[1]},
            },
        }))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
