"""Cryptographic digests of a file's bytes: MD5 (what ThreatExchange and most
platforms exchange for exact copies) and SHA-256 (collision-resistant, for the
evidence record)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Digests:
    md5: str
    sha256: str
    size: int


def digest_bytes(data: bytes | memoryview) -> Digests:
    return Digests(hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data))


def digest_file(path: Path) -> Digests:
    """Streams the file, so a 4 GB video never sits in memory."""
    md5 = hashlib.md5()
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return Digests(md5.hexdigest(), sha.hexdigest(), size)
