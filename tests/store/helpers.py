"""Shared bits for the store tests."""

from __future__ import annotations

import random

from takeback.store.signals import SignalInput


def pdq_hex(rnd: random.Random) -> str:
    return f"{rnd.getrandbits(256):064x}"


def pdq_inputs(rnd: random.Random, n: int, quality: int | None = 100) -> list[SignalInput]:
    return [("pdq", pdq_hex(rnd), quality, None) for _ in range(n)]
