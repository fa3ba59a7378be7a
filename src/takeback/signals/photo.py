"""PDQ of an image file: the fast reduced-scale path or the bit-exact one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from takeback.media.images import DEFAULT_MAX_PIXELS, decode_image
from takeback.signals import pdq, pdq_fast


def hash_image(path: Path, *, exact: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> pdq.PdqHash:
    """PDQ hash and quality of the image as displayed (EXIF orientation applied).

    The default path decodes at reduced scale and applies the full-size PDQ
    filter geometry (see `signals.pdq_fast`); `exact` decodes every pixel and
    reproduces the `pdqhash` reference bit for bit.  Raises `MediaError`.
    """
    decoded = decode_image(path, exact=exact, max_pixels=max_pixels)
    if decoded.exact:
        return pdq.hash_luma(np.asarray(decoded.luma, dtype=np.float32))
    return pdq_fast.hash_reduced(
        decoded.luma, decoded.full_size, block=decoded.scale, reversed_axes=decoded.reversed_axes
    )
