"""Brute-force range search: the oracle the fast index is checked against, and the search over small tails and
very large thresholds (where no pigeonhole filter pays off)."""

from __future__ import annotations

import numpy as np

from takeback.index import hamming

#: Pairs compared per block: bounds temporary memory to about 32 MB whatever the sizes.
_BLOCK_PAIRS = 1 << 20


def range_search(
    queries: np.ndarray, stored: np.ndarray, threshold: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (query row, stored row, distance) with distance <= threshold, grouped by stored block then query."""
    q_out: list[np.ndarray] = []
    s_out: list[np.ndarray] = []
    d_out: list[np.ndarray] = []
    n_q, n_s = len(queries), len(stored)
    if n_q and n_s:
        s_step = min(n_s, max(1024, _BLOCK_PAIRS // max(1, n_q)))
        q_step = max(1, _BLOCK_PAIRS // s_step)
        for s0 in range(0, n_s, s_step):
            block_s = stored[s0 : s0 + s_step]
            for q0 in range(0, n_q, q_step):
                block = hamming.distance_matrix(queries[q0 : q0 + q_step], block_s)
                qi, si = np.nonzero(block <= threshold)
                if len(qi):
                    q_out.append(qi.astype(np.int64) + q0)
                    s_out.append(si.astype(np.int64) + s0)
                    d_out.append(block[qi, si])
    if not q_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.int32)
    return np.concatenate(q_out), np.concatenate(s_out), np.concatenate(d_out).astype(np.int32)
