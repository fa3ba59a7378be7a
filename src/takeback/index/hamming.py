"""256-bit hashes as four uint64 words, and vectorised Hamming distances.

Words are big-endian slices of the hex string (word 0 = hex digits 0-15), so bit order matches PDQ's hex form and
substring keys taken from words are stable across save/load and machines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WORDS = 4
BITS = 256


def from_hex(values: Sequence[str]) -> np.ndarray:
    """(n, 4) uint64 from 64-digit hex strings (already validated)."""
    if len(values) == 0:
        return np.zeros((0, WORDS), dtype=np.uint64)
    raw = bytes.fromhex("".join(values))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, WORDS)


def to_hex(words: np.ndarray) -> list[str]:
    data = np.ascontiguousarray(words, dtype=np.uint64).astype(">u8").tobytes()
    return [data[i : i + 32].hex() for i in range(0, len(data), 32)]


def distance_matrix(queries: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """(q, n) Hamming distances; for small inputs and tests (memory is q*n*4*8 bytes)."""
    x = np.bitwise_xor(queries[:, None, :], stored[None, :, :])
    return np.bitwise_count(x).sum(axis=2, dtype=np.int32)
