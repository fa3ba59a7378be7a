"""Delivery export: verified signatures (name only with the signer's consent, and country) as CSV or PDF, and a
signed summary the recipient can check.

The summary states the petition, the count, the format and the SHA-256 of the exact bytes of the export (the CSV
or the PDF), signed with Ed25519.  The key pair is derived from the server secret, so it is stable across restarts;
the public key is published (API and summary), and anyone holding the file can recompute its hash and check the
signature without trusting the sender's transport.

CSV: for spreadsheets and counting.  Cells that a spreadsheet would read as a formula (=, +, -, @ ...) are prefixed
with an apostrophe.

PDF: for handing over and printing (a recipient's office, a court, the press).  Written by the project's
dependency-free text PDF writer (``takeback.takedown.pdf``, also used for the takedown dossier) rather than a second
one.  It is deterministic (no creation date inside), so the same verified rows always give the same bytes and the
same hash.  Its standard font covers Latin-1 only: letters with accents outside it lose the accent (NFKD, "ő" →
"o"), anything else shows as "?"; the document says so, and the CSV keeps every spelling exactly.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from takeback.takedown.pdf import text_to_pdf

WITHHELD = ""
#: What the PDF shows where a signer did not consent to her name being delivered.
PDF_WITHHELD = "(name withheld)"
FORMATS = ("csv", "pdf")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
PDF_MEDIA_TYPE = "application/pdf"
_CSV_DESCRIPTION = "text/csv; columns name,country; name empty unless the signer consented"
_PDF_DESCRIPTION = (
    "application/pdf; one line per verified signature: number, country, name ('(name withheld)' unless the "
    "signer consented)"
)


@dataclass(frozen=True, slots=True)
class Export:
    """One export's exact bytes, its row count and SHA-256 (what the signed summary states)."""

    data: bytes
    rows: int
    sha256: str
    format: str = "csv"
    media_type: str = CSV_MEDIA_TYPE
    description: str = _CSV_DESCRIPTION

    @property
    def csv(self) -> bytes:
        """The bytes, under the name callers of the CSV-only export used (dashboard, CLI)."""
        return self.data


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


def _latin1(text: str) -> str:
    """``text`` as the PDF's standard font can show it: Latin-1 kept, accents outside it dropped, the rest "?".

    Why fold instead of letting the writer replace: Central European names (Dvořák, Łódź's "ó", Ő...) would
    otherwise lose whole letters; dropping only the accent keeps them readable.  The CSV keeps the exact text."""
    if text.isascii():
        return text
    out: list[str] = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if ord(c) < 256 and not unicodedata.combining(c))
        out.append(base or "?")
    return "".join(out)


def build_pdf(
    rows: Iterable[tuple[int, str, str, bool]],
    *,
    title: str,
    target: str,
    country_names: Mapping[str, str] | None = None,
) -> Export:
    """rows as for ``build_csv``.  A printable list: a heading (petition, addressee, count, what is and is not in
    it), the signatures by country, then one numbered line per signature (country code, then the name, so a long
    name wraps without moving the country).  No e-mail address, postcode, comment or id is included."""
    names = country_names or {}
    lines: list[str] = []
    by_country: Counter[str] = Counter()
    for number, (_, name, country, public) in enumerate(rows, 1):
        by_country[country] += 1
        lines.append(f"{number:>9}  {country}  {_latin1(name) if public else PDF_WITHHELD}")
    count = len(lines)
    head = [
        _latin1(title),
        f"To: {_latin1(target)}",
        "",
        f"Verified signatures: {count:,}",
        "",
        "Each signature was confirmed by its signer through a link sent to the signer's e-mail address; one",
        "signature per address. A name is shown only where the signer agreed to it being delivered. No e-mail",
        "addresses, postcodes or comments are included. Letters this document's font cannot show are simplified",
        "or shown as '?'; the CSV export carries every spelling exactly.",
        "The signed summary delivered with this file states the count and the SHA-256 of this file's exact bytes.",
        "",
        "Signatures by country:",
    ]
    for country, n in sorted(by_country.items(), key=lambda item: (-item[1], item[0])):
        head.append(f"  {country}  {_latin1(names.get(country, country))[:60]:<60} {n:>12,}")
    head += ["", "   number  country and name", ""]
    data = text_to_pdf("\n".join(head + lines), title=_latin1(f"{title} - verified signatures")[:120])
    return Export(data, count, hashlib.sha256(data).hexdigest(), "pdf", PDF_MEDIA_TYPE, _PDF_DESCRIPTION)


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
        "export_format": export.description,
        "generated_at": generated_at.isoformat(),
        "algorithm": "Ed25519",
        "public_key": public_key_b64(key),
    }
    summary["signature"] = base64.b64encode(key.sign(_canonical(summary))).decode()
    return summary


def summary_header(summary: dict[str, object]) -> str:
    """The summary as one HTTP header value (base64 of its JSON), sent with the export it describes, so the
    file and its summary always belong together even while signatures keep arriving."""
    return base64.b64encode(json.dumps(summary, ensure_ascii=False).encode("utf-8")).decode("ascii")


def verify_summary(summary: dict[str, object], csv_bytes: bytes | None = None) -> bool:
    """The recipient's check: the signature matches the summary (and the summary matches the export's bytes, CSV
    or PDF, if given)."""
    body = {k: v for k, v in summary.items() if k != "signature"}
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(summary["public_key"])))
        public.verify(base64.b64decode(str(summary["signature"])), _canonical(body))
    except Exception:
        return False
    return csv_bytes is None or hashlib.sha256(csv_bytes).hexdigest() == summary.get("export_sha256")
