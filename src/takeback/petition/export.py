"""Delivery export: a CSV of verified signatures (name only with the signer's consent, and country) and a signed
summary the recipient can check.

The summary states the petition, the count and the SHA-256 of the exact CSV bytes, signed with Ed25519.  The key
pair is derived from the server secret, so it is stable across restarts; the public key is published (API and
summary), and anyone holding the CSV can recompute its hash and check the signature without trusting the sender's
transport.  Cells that a spreadsheet would read as a formula (=, +, -, @ ...) are prefixed with an apostrophe.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

WITHHELD = ""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Export:
    csv: bytes
    rows: int
    sha256: str


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def build_csv(rows: Iterable[tuple[int, str, str, bool]]) -> Export:
    """rows: (id, name, country, consent_public) of verified signatures, as ``store.signatures.export_rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["name", "country"])
    count = 0
    for _, name, country, public in rows:
        writer.writerow([_cell(name) if public else WITHHELD, country])
        count += 1
    data = buffer.getvalue().encode("utf-8")
    return Export(data, count, hashlib.sha256(data).hexdigest())


def signing_key(secret: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"takeback-petition-export:" + secret).digest())


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _canonical(summary: dict[str, object]) -> bytes:
    return json.dumps(summary, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_summary(
    key: Ed25519PrivateKey, *, slug: str, title: str, target: str, export: Export, generated_at: datetime
) -> dict[str, object]:
    """The summary with ``signature`` = base64 Ed25519 over its canonical JSON (sorted keys, no spaces, without
    the signature field itself)."""
    summary: dict[str, object] = {
        "petition": slug,
        "title": title,
        "target": target,
        "verified_signatures": export.rows,
        "export_sha256": export.sha256,
        "export_format": "text/csv; columns name,country; name empty unless the signer consented",
        "generated_at": generated_at.isoformat(),
        "algorithm": "Ed25519",
        "public_key": public_key_b64(key),
    }
    summary["signature"] = base64.b64encode(key.sign(_canonical(summary))).decode()
    return summary


def verify_summary(summary: dict[str, object], csv_bytes: bytes | None = None) -> bool:
    """The recipient's check: the signature matches the summary (and the summary matches the CSV, if given)."""
    body = {k: v for k, v in summary.items() if k != "signature"}
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(summary["public_key"])))
        public.verify(base64.b64decode(str(summary["signature"])), _canonical(body))
    except Exception:
        return False
    return csv_bytes is None or hashlib.sha256(csv_bytes).hexdigest() == summary.get("export_sha256")
