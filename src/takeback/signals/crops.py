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

Off-centre crops are the `grid` mode's job (below): a grid of crop boxes on both
sides of the match.
"""

from __future__ import annotations

from dataclasses import dataclass

from takeback.signals.regions import Box

Span = tuple[int, int]

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


# --- the crop grid ---------------------------------------------------------------------------------------------------
# PDQ describes the whole frame and forgives about one percent of misplacement per edge: measured on the benchmark
# photos, moving each edge of a crop by a random amount within +-0.5% of the side keeps 92% of them within 31 bits,
# within +-1% only 75%.  A copy cropped off-centre (up to 20% per axis, split anyhow between the two ends) has four
# unknown cuts, so matching it takes some bank box and some query box that agree on all four edges to about a percent.
# Either side alone would need a box for every such combination (~10^4-10^5).  Split between the sides, the cuts
# compose: the copy's box, cut further by t on one side (the query), equals the original cut by b (the bank) when
# a + t*L = b, where a is the copy's own cut and L the share of the side it kept.  With bank cuts every 10% and query
# cuts every 2% (up to 12%), every a in [0, 20%] is b - t*L for some pair to within 1%: 63 bank boxes (on the device)
# and ~1,150 query boxes (when takeback itself hashes a found copy) instead.  Platforms, which query with plain PDQ,
# still get the bank boxes' own gain: copies cropped at 10% or 20% from any sides.


@dataclass(frozen=True, slots=True)
class GridPlan:
    """Cuts tried at each end of an axis (fractions of that axis) and the most one axis may lose in all."""

    cuts: tuple[float, ...]
    max_axis: float


#: On the device: each end cut by 0, 10% or 20%, at most 30% per axis (8 cut pairs per axis, 63 boxes).
BANK_GRID = GridPlan((0.0, 0.10, 0.20), 0.30)
#: At query time: each end cut by 0-12% in 2% steps, at most 15% per axis (34 cut pairs per axis, 1,155 boxes).
QUERY_GRID = GridPlan((0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12), 0.15)


def axis_cuts(plan: GridPlan) -> list[tuple[float, float]]:
    """Every (start cut, end cut) pair of the plan for one axis, the uncut pair first."""
    return [(a, b) for a in plan.cuts for b in plan.cuts if a + b <= plan.max_axis + 1e-9]


def spans(start: int, stop: int, cuts: list[tuple[float, float]]) -> list[Span]:
    """The [lo, hi) pixel spans of an axis extent [start, stop) under each cut pair."""
    n = stop - start
    return [(start + round(a * n), stop - round(b * n)) for a, b in cuts]


def grid_name(rows: tuple[float, float], cols: tuple[float, float]) -> str:
    """'grid_t10b00l20r10': the percentages cut from the top, bottom, left and right."""
    (t, b), (left, r) = rows, cols
    return f"grid_t{round(t * 100):02d}b{round(b * 100):02d}l{round(left * 100):02d}r{round(r * 100):02d}"
