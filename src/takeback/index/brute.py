"""Brute-force range search: the oracle the fast index is checked against, and the search over small tails."""

from __future__ import annotations

import numpy as np

from takeback.index import hamming


def range_search(
    queries: np.ndarray, stored: np.ndarray, threshold: int, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (query row, stored row, distance) with distance <= threshold, sorted by query then stored row."""
    q_out: list[np.ndarray] = []
    s_out: list[np.ndarray] = []
    d_out: list[np.ndarray] = []
    if len(queries) and len(stored):
        step = max(1, chunk * 64 // max(1, len(stored)))
        for start in range(0, len(queries), step):
            block = hamming.distance_matrix(queries[start : start + step], stored)
            qi, si = np.nonzero(block <= threshold)
            q_out.append(qi.astype(np.int64) + start)
            s_out.append(si.astype(np.int64))
            d_out.append(block[qi, si])
    if not q_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.int32)
    return np.concatenate(q_out), np.concatenate(s_out), np.concatenate(d_out).astype(np.int32)
