"""Which crops of a photo to bank, so cropped copies still match plain-PDQ queries.

PDQ describes the whole frame: measured on the benchmark photos, trimming 5%
off the width and height (centred) already moves the hash 34-110 bits, past
the threshold of 31.  A platform hashes the cropped upload as it is, so the
only place takeback can help without changing the platform is the bank: hash
the crops re-uploaders and platforms actually make, on the device, and bank
them next to the original.

Two families, both centred, because centred crops are what apps and platforms
do automatically (feed thumbnails, square and 4:5 previews, "fill" display):

* a **ladder** of centred crops keeping 1-s of each side, s in small steps
  (default 2.5% ... 20%): a copy cropped by any amount in the range is within
  half a step of one rung;
* **aspect** crops: the largest centred box of each common aspect ratio
  (1:1, 4:5, 3:4, 2:3, 9:16 and their landscape forms) that is narrower than
  the photo.

Off-centre crops of arbitrary size are not covered: they need a local scheme
on both sides, see docs/robustness.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from takeback.signals.regions import Box

#: Share of each side removed by each ladder rung (half from each end).
DEFAULT_LADDER: tuple[float, ...] = (0.025, 0.05, 0.075, 0.10, 0.125, 0.15, 0.175, 0.20)
#: Width:height ratios platforms crop to.
DEFAULT_ASPECTS: tuple[tuple[int, int], ...] = (
    (1, 1),
    (4, 5),
    (3, 4),
    (2, 3),
    (9, 16),
    (5, 4),
    (4, 3),
    (3, 2),
    (16, 9),
)
#: Aspect crops that keep more than this share of the side they cut are near the original and skipped.
_NEAR_ORIGINAL = 0.98


@dataclass(frozen=True, slots=True)
class CropPlan:
    ladder: tuple[float, ...] = DEFAULT_LADDER
    aspects: tuple[tuple[int, int], ...] = DEFAULT_ASPECTS


DEFAULT_PLAN = CropPlan()


def centred(box: Box, keep_h: float, keep_w: float) -> Box:
    """The centred sub-box keeping `keep_h` of the height and `keep_w` of the width."""
    h = max(1, round(box.height * keep_h))
    w = max(1, round(box.width * keep_w))
    top = box.top + (box.height - h) // 2
    left = box.left + (box.width - w) // 2
    return Box(top, top + h, left, left + w)


def crop_boxes(box: Box, plan: CropPlan = DEFAULT_PLAN) -> list[tuple[str, Box]]:
    """Named crop boxes of `box` to hash, without duplicates."""
    out: list[tuple[str, Box]] = []
    seen: set[Box] = {box}
    for s in plan.ladder:
        b = centred(box, 1.0 - s, 1.0 - s)
        if b not in seen:
            seen.add(b)
            out.append((f"crop{round(s * 1000):03d}", b))
    ratio = box.width / box.height
    for aw, ah in plan.aspects:
        target = aw / ah
        if target < ratio:  # narrower than the photo: cut the width
            keep_h, keep_w = 1.0, target / ratio
        else:  # wider: cut the height
            keep_h, keep_w = ratio / target, 1.0
        if min(keep_h, keep_w) > _NEAR_ORIGINAL:
            continue
        b = centred(box, keep_h, keep_w)
        if b not in seen:
            seen.add(b)
            out.append((f"aspect{aw}x{ah}", b))
    return out
