"""The multi-index search's inner loops, compiled with numba.

Why compiled: at 10 million hashes a query makes about 2,800 bucket probes and checks about 3,300 candidates, and
nearly every one of them is a memory access the cache cannot hold. numpy has to materialise each step as a
temporary array (probe keys, bucket bounds, positions, rows, gathered hashes), so every access is paid again in
temporaries; one compiled loop reads each bucket and candidate once and keeps the rest in registers. The loops run
without the GIL, so the index's search threads really run in parallel.

Order of work, chosen for the memory system rather than for brevity: table by table, and for each query three
passes, each asking for its memory a few steps ahead so the reads overlap instead of waiting one by one: the
directory entries of its probes, then the positions of its non-empty buckets (collected into a buffer), then, once
every query has been through the table, the stored hash of each candidate. Done as one loop per probe, each read
waited for the one before (whether a bucket is empty decides what comes next, and the CPU guesses that wrong a third
of the time): measured 1.8x slower at 10 million hashes together with the unaligned hashes `mih.aligned_rows`
fixes.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: How many candidates ahead the verify loop asks for a stored hash (measured: 8-64 all help; more is flat).
PREFETCH_AHEAD = 16
#: How many probes ahead the directory is asked for, and how many non-empty buckets ahead their positions.
DIRECTORY_AHEAD = 16
PERM_AHEAD = 8
_ROW_BYTES = 32  # one 256-bit hash: four uint64 words


@intrinsic
def _popcount64(typingctx, x):  # type: ignore[no-untyped-def]  # numba's intrinsic protocol
    """The CPU's population count on one uint64 (numba has no portable builtin for it)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def _prefetch(typingctx, address):  # type: ignore[no-untyped-def]
    """A read prefetch hint for the cache line at `address` (a no-op where the CPU has none)."""
    sig = types.void(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        byte_ptr = ir.PointerType(ir.IntType(8))
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.inttoptr(args[0], byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True)
def mih_search(
    words: np.ndarray,
    queries: np.ndarray,
    keys: np.ndarray,
    perm: np.ndarray,
    rel: np.ndarray,
    base: np.ndarray,
    rel_offsets: np.ndarray,
    base_offsets: np.ndarray,
    wide: np.ndarray,
    wide_flag: int,
    masks: np.ndarray,
    mask_starts: np.ndarray,
    part_bits: np.ndarray,
    radii: np.ndarray,
    block_shift: int,
    threshold: int,
    cand_rows: np.ndarray,
    out_q: np.ndarray,
    out_row: np.ndarray,
    out_d: np.ndarray,
) -> tuple[int, int]:
    """Write (query row, stored row, distance) of every stored hash within `threshold` into `out_*`, each pair once.

    Returns (hits, most candidates of one table). Buffers are the caller's, because arrays that grow inside a
    compiled loop cost reference counting on every access (measured 2.5x slower); when either count exceeds its
    buffer, only what fitted was written and the caller calls again with room for the counts returned.

    `keys` is (queries, tables) substring keys; table t probes `masks[mask_starts[t]:mask_starts[t + 1]]`, every
    key within `radii[t]` bits (an empty range and radius -1 skip it); `part_bits[t]` is table t's substring as a
    256-bit mask over the four words. A bucket k of table t holds positions `base[base_offsets[t] + (k >> s)] +
    rel[j]` up to `... + rel[j + 1]` with `j = rel_offsets[t] + k + (k >> s)`, unless that base has `wide_flag` set:
    then the block's bucket starts are absolute, at `wide[(base ^ wide_flag) + (k mod 2^s)]`. Positions index
    `perm`, which holds stored rows.
    """
    n_queries, n_tables = keys.shape
    words_at = np.uint64(words.ctypes.data)
    rel_at_address, rel_item = np.uint64(rel.ctypes.data), np.uint64(rel.itemsize)
    perm_at, perm_item = np.uint64(perm.ctypes.data), np.uint64(perm.itemsize)
    row_bytes = np.uint64(_ROW_BYTES)
    cand_cap, out_cap = len(cand_rows), len(out_q)
    widest = 0
    for t in range(n_tables):
        widest = max(widest, mask_starts[t + 1] - mask_starts[t])
    starts = np.empty(widest, dtype=np.int64)  # one query's non-empty buckets in one table
    sizes = np.empty(widest, dtype=np.int64)
    last = len(perm) - 1
    in_block = (1 << block_shift) - 1
    ends = np.zeros(n_queries + 1, dtype=np.int64)
    found = 0
    most = 0
    for t in range(n_tables):
        m0, m1 = mask_starts[t], mask_starts[t + 1]
        if m1 == m0:
            continue
        rel_at, base_at = rel_offsets[t], base_offsets[t]
        count = 0
        for qi in range(n_queries):
            key = keys[qi, t]
            # Pass 1: the directory, asking for the entry DIRECTORY_AHEAD probes on while reading this one.
            for k in range(m0, min(m0 + DIRECTORY_AHEAD, m1)):
                ahead = key ^ masks[k]
                _prefetch(rel_at_address + np.uint64(rel_at + ahead + (ahead >> block_shift)) * rel_item)
            buckets = 0
            for k in range(m0, m1):
                if k + DIRECTORY_AHEAD < m1:
                    ahead = key ^ masks[k + DIRECTORY_AHEAD]
                    _prefetch(rel_at_address + np.uint64(rel_at + ahead + (ahead >> block_shift)) * rel_item)
                probe = key ^ masks[k]
                block = probe >> block_shift
                at = np.int64(base[base_at + block])
                if at & wide_flag:  # a crowded block: its bucket starts are absolute, in `wide` (rare)
                    w = (at ^ wide_flag) + (probe & in_block)
                    start = np.int64(wide[w])
                    size = np.int64(wide[w + 1]) - start
                else:
                    slot = rel_at + probe + block
                    first = np.int64(rel[slot])
                    size = np.int64(rel[slot + 1]) - first
                    start = at + first
                starts[buckets] = start
                sizes[buckets] = size
                buckets += size != 0  # no branch: whether a bucket is empty is a coin toss
            # Pass 2: the buckets' stored rows, asking for the positions PERM_AHEAD buckets on.
            for b in range(min(PERM_AHEAD, buckets)):
                _prefetch(perm_at + np.uint64(starts[b]) * perm_item)
            for b in range(buckets):
                if b + PERM_AHEAD < buckets:
                    _prefetch(perm_at + np.uint64(starts[b + PERM_AHEAD]) * perm_item)
                start, size = starts[b], sizes[b]
                if count + size + 2 <= cand_cap:
                    # Most buckets hold one or two rows: copying two always (the second may be the next bucket's,
                    # overwritten or ignored) leaves the loop below for the few larger ones.
                    cand_rows[count] = perm[start]
                    cand_rows[count + 1] = perm[min(start + 1, last)]
                    for j in range(2, size):
                        cand_rows[count + j] = perm[start + j]
                elif count + size <= cand_cap:  # the buffer's last few places: exactly what fits
                    for j in range(size):
                        cand_rows[count + j] = perm[start + j]
                count += size
            ends[qi + 1] = count  # a query's candidates are contiguous: no query number stored per candidate
        most = max(most, count)
        if count > cand_cap:  # this answer is incomplete; the caller calls again with room for `most`
            continue
        for qi in range(n_queries):
            q0, q1, q2, q3 = queries[qi, 0], queries[qi, 1], queries[qi, 2], queries[qi, 3]
            for i in range(ends[qi], ends[qi + 1]):
                if i + PREFETCH_AHEAD < count:
                    _prefetch(words_at + np.uint64(cand_rows[i + PREFETCH_AHEAD]) * row_bytes)
                row = cand_rows[i]
                x0 = words[row, 0] ^ q0
                x1 = words[row, 1] ^ q1
                x2 = words[row, 2] ^ q2
                x3 = words[row, 3] ^ q3
                distance = np.int64(_popcount64(x0) + _popcount64(x1) + _popcount64(x2) + _popcount64(x3))
                if distance > threshold:
                    continue
                # A pair near in several substrings is probed in each of them: report it from the first table whose
                # probes reach it, so every pair comes out exactly once (and the hit buffer holds only real answers).
                earlier = False
                for e in range(t):
                    near = np.int64(
                        _popcount64(x0 & part_bits[e, 0])
                        + _popcount64(x1 & part_bits[e, 1])
                        + _popcount64(x2 & part_bits[e, 2])
                        + _popcount64(x3 & part_bits[e, 3])
                    )
                    if near <= radii[e]:
                        earlier = True
                        break
                if earlier:
                    continue
                if found < out_cap:
                    out_q[found] = qi
                    out_row[found] = row
                    out_d[found] = np.int32(distance)
                found += 1
    return found, most
