"""Writes the recorded feed files the domain-watch tests read (run once; the outputs are committed).

Synthetic but shaped like the real thing: certstream JSON messages (heartbeats, multi-name certificates,
wildcards, punycode), a newly-registered-domain list and a TLD zone file, with planted hits for two test cases
and decoys (other people's names, one word of the name, look-alike words) plus malformed lines.  The expected
hits are in feeds_expected.csv.  Usage: python tests/discover/data/make_feeds.py
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
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
]
TLDS = ["com", "net", "org", "io", "co.uk", "de", "shop", "xyz", "online", "com.br"]
LOGS = [
    ("Google 'Argon2026' log", "https://ct.googleapis.com/logs/us1/argon2026/"),
    ("Cloudflare 'Nimbus2026' Log", "https://ct.cloudflare.com/logs/nimbus2026/"),
    ("Let's Encrypt 'Oak2026' log", "https://oak.ct.letsencrypt.org/2026/"),
]
ISSUERS = [
    {"C": "US", "O": "Let's Encrypt", "CN": "R11"},
    {"C": "US", "O": "Google Trust Services", "CN": "WE1"},
    {"C": "GB", "O": "Sectigo Limited", "CN": "Sectigo RSA Domain Validation Secure Server CA"},
]


def idn(domain: str) -> str:
    return ".".join(p if p.isascii() else "xn--" + p.encode("punycode").decode() for p in domain.split("."))


# (domain as it appears in the feed, case id, note); case 1: "Mia Khalifa"; case 2: "Zoë Lindqvist" + "zoelindy"
PLANTED = [
    ("mia-khalifa-videos.com", 1, "separator"),
    ("www.miakhalifa.net", 1, "glued, www subdomain"),
    ("*.watchmiakhalifa.xyz", 1, "wildcard, embedded"),
    ("khalifa-mia.online", 1, "reversed"),
    ("m1a-kh4l1fa.io", 1, "leet"),
    ("miakhalfa.shop", 1, "typo"),
    (idn("mіa-khalifa.com"), 1, "punycode Cyrillic і"),
    ("rniakhalifa.de", 1, "confusable rn"),
    ("miakhalifa.blogspot.com", 1, "private suffix"),
    ("zoe-lindqvist.se", 2, "accent-folded name"),
    ("zoelindy.net", 2, "username"),
    (idn("zoë-lindqvist.com"), 2, "punycode with ë"),
    ("fans.zoelindqvist.co.uk", 2, "glued in registrable label"),
    ("zoelindquist.org", 2, "typo"),
]
DECOYS = [
    "miami-deals.com",
    "khalifa-cafe.net",
    "samia-khalifa.org",
    "burjkhalifa-tickets.com",
    "mia-fashion.shop",
    "m-khalifa.com",
    "miakhan.net",
    "miamikhalifa.com",
    "zoe-shop.se",
    "lindqvist-bygg.se",
    "zoelinda.com",
    "anna-lindqvist.se",
    "media-khalifa.net",
    "emiliakhalifa.com",
    "zoey-lindgren.se",
]


def random_domain(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.choice([1, 2, 2, 3]))
    return "-".join(words) + str(rng.choice(["", "", rng.randint(1, 999)])) + "." + rng.choice(TLDS)


def certstream(rng: random.Random) -> list[str]:
    lines: list[str] = []
    planted = [d for d, _, _ in PLANTED]
    specials = planted + DECOYS
    rng.shuffle(specials)
    seen = 1_780_000_000.0
    for index in range(420):
        seen += rng.random() * 3
        if index % 50 == 7:
            lines.append(json.dumps({"message_type": "heartbeat", "timestamp": seen}))
            continue
        names = [random_domain(rng)]
        if specials and index % 13 == 3:
            names = [specials.pop()]
        main = names[0].removeprefix("*.")
        names += [f"www.{main}"] if rng.random() < 0.5 and not names[0].startswith("www.") else []
        fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha1(f"{index}{main}".encode()).digest())
        log = rng.choice(LOGS)
        issuer = rng.choice(ISSUERS)
        message = {
            "message_type": "certificate_update",
            "data": {
                "update_type": "X509LogEntry",
                "leaf_cert": {
                    "subject": {"aggregated": f"/CN={main}", "CN": main},
                    "issuer": {**issuer, "aggregated": "".join(f"/{k}={v}" for k, v in issuer.items())},
                    "not_before": int(seen) - 3600,
                    "not_after": int(seen) + 90 * 86400,
                    "serial_number": f"{rng.getrandbits(64):X}",
                    "fingerprint": fingerprint,
                    "all_domains": names,
                },
                "chain": [],
                "cert_index": 900_000 + index,
                "seen": round(seen, 3),
                "source": {"name": log[0], "url": log[1]},
            },
        }
        lines.append(json.dumps(message, ensure_ascii=False))
    lines += [
        d and json.dumps({"message_type": "certificate_update", "data": {"leaf_cert": {"all_domains": [d]}}})
        for d in specials
    ]  # whatever the shuffle left over, still one per line
    # Malformed: truncated JSON, not an object, no all_domains, a bad name inside a good certificate.
    lines.insert(11, '{"message_type": "certificate_update", "data": {"leaf_cert": {"all_dom')
    lines.insert(60, "[1, 2, 3]")
    lines.insert(120, json.dumps({"message_type": "certificate_update", "data": {"leaf_cert": {}}}))
    lines.insert(
        200,
        json.dumps(
            {
                "message_type": "certificate_update",
                "data": {"leaf_cert": {"all_domains": ["bad domain!.com", "fine-example.org"]}},
            }
        ),
    )
    lines.insert(250, "")
    return lines


def domain_list(rng: random.Random) -> list[str]:
    lines = ["# newly registered domains, 2026-06-01", "# domain,created"]
    specials = [d.removeprefix("*.").removeprefix("www.") for d, _, _ in PLANTED] + DECOYS
    body = [random_domain(rng) for _ in range(300)] + specials
    rng.shuffle(body)
    lines += [f"{d},2026-06-01" for d in body]
    lines.insert(40, "not a domain at all!")
    lines.insert(90, "-leading-hyphen.com")
    lines.insert(150, "")
    return lines


def zone_file(rng: random.Random) -> list[str]:
    lines = [
        "$ORIGIN com.",
        "$TTL 172800",
        "@ IN SOA a.gtld-servers.net. nstld.verisign-grs.com. (",
        "    1780000000 ; serial",
        "    1800 900 604800 86400 )",
        "@ 172800 IN NS a.gtld-servers.net.",
    ]
    names = [random_domain(rng).split(".")[0] for _ in range(120)]
    names += ["mia-khalifa-videos", "miakhalifa", "samia-khalifa", "miami-deals", "zoelindy", "zoe-shop"]
    rng.shuffle(names)
    for name in names:
        if rng.random() < 0.5:
            lines.append(f"{name}.com. 172800 IN NS ns1.example-dns.net.")
            lines.append(f"{name}.com. 172800 IN NS ns2.example-dns.net.")
        else:
            lines.append(f"{name} 172800 IN NS ns1.example-dns.net.")
            lines.append("  172800 IN NS ns2.example-dns.net.")
    lines.insert(30, "this line is not a zone record")
    lines.insert(70, "bad!name 172800 IN NS ns1.example.net.")
    return lines


def main() -> None:
    rng = random.Random(4)
    (HERE / "feed_certstream.jsonl").write_text("\n".join(certstream(rng)) + "\n", encoding="utf-8")
    (HERE / "feed_domains.txt").write_text("\n".join(domain_list(rng)) + "\n", encoding="utf-8")
    (HERE / "feed_zone.txt").write_text("\n".join(zone_file(rng)) + "\n", encoding="utf-8")
    with open(HERE / "feeds_expected.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["domain", "case", "note"])
        for domain, case, note in PLANTED:
            writer.writerow([domain.removeprefix("*."), case, note])


if __name__ == "__main__":
    main()
