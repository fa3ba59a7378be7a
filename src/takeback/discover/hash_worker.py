"""A hashing worker process: reads batches of media bodies on stdin, writes their hashes on stdout (``hash_wire``).

Started by ``hash_pool`` as ``python -m takeback.discover.hash_worker MAX_PIXELS QUERY_MODES NICE`` (modes as
``signals.variants.modes_text`` spells them, "" for none, "default" for the defaults; NICE lowers its CPU
priority, so the event loop that feeds it is never starved by it), with one BLAS thread (PDQ's
small matrix products are ten times slower when OpenBLAS spreads them over threads that compete with the crawl).
It hashes with ``media_hash.hash_media``, the same code the crawl uses in-process, and keeps nothing: bodies live
only as long as their batch.  File descriptor 1 is moved aside at start, so a library that prints cannot corrupt
the answers; the process ends at end of input.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import BinaryIO


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def serve(stdin: BinaryIO, stdout: BinaryIO, max_pixels: int, query_modes: str = "default") -> None:
    """Answer batches until stdin ends."""
    from takeback.discover.hash_wire import encode_answer, unpack_u32
    from takeback.discover.media_hash import hash_media
    from takeback.signals.variants import parse_query_modes

    modes = parse_query_modes(query_modes)

    while True:
        head = _read_exact(stdin, 4)
        if head is None:
            return
        bodies: list[bytes] = []
        for _ in range(unpack_u32(head)):
            size = _read_exact(stdin, 4)
            body = _read_exact(stdin, unpack_u32(size)) if size is not None else None
            if body is None:
                return
            bodies.append(body)
        stdout.write(encode_answer(hash_media(body, max_pixels=max_pixels, query_modes=modes) for body in bodies))
        stdout.flush()


def main() -> None:
    max_pixels = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    query_modes = sys.argv[2] if len(sys.argv) > 2 else "default"
    niceness = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if niceness > 0:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed from here on goes to stderr, not into the answers
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    if max_pixels <= 0:
        from takeback.media.images import DEFAULT_MAX_PIXELS

        max_pixels = DEFAULT_MAX_PIXELS
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, answers, max_pixels, query_modes)


if __name__ == "__main__":
    main()
