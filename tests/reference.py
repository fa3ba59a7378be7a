"""Meta's `pdqhash` reference, spelled once for every test that compares against it."""

from __future__ import annotations

import numpy as np
import pdqhash

from takeback.signals import pdq


def pdqhash_rgb(rgb: np.ndarray) -> pdq.PdqHash:
    """The reference hash of an RGB array, as ThreatExchange hex (bit 255 first)."""
    vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return pdq.PdqHash("".join(f"{b:02x}" for b in np.packbits(vector)), int(quality))
