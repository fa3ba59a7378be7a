"""Find the picture inside a border, letterbox, pillarbox or plain screenshot frame.

A copy padded with bars (letterboxed to 16:9, framed, pasted onto a page) has
a PDQ far from the original's: PDQ blurs and samples the whole canvas, bars
included.  Trimming the uniform lines around the picture first gives back
(nearly) the original's hash.

A line (row or column) counts as border when nearly all its pixels are within
a tolerance of the line's own median: that survives JPEG noise on the bars and
a few icons or letters on a toolbar, and lets the colour change from one band
to the next (toolbar, then page background).  Trimming walks in from each side
while lines are border.  To leave borderless photos alone, a side's run only
counts when it is at least `min_fraction` of the side, and trimming must leave
most of the picture (a plain, near-uniform photo is not all border).

The hash of the trimmed picture is an *extra* hash: the original is always
kept, because a uniform band can also be part of the photo (a studio wall).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from takeback.signals.regions import Box


@dataclass(frozen=True, slots=True)
class BorderRule:
    """Tolerances for border detection, in 8-bit grey levels and fractions of a line or side."""

    #: A pixel belongs to the border colour when within this many grey levels of the line's median.
    tolerance: float = 10.0
    #: Share of a line's pixels that must be border-coloured (the rest: toolbar icons, a title, JPEG ringing).
    line_fraction: float = 0.8
    #: Share of the first line inside that must differ from the border colour: a frame ends in a step, whereas a
    #: flat band of the photo itself (sky, a wall) fades into the rest.
    edge_fraction: float = 0.5
    #: ... unless its lines are flat to within this many grey levels (nearly everywhere): drawn bars are, even
    #: after JPEG, while a photo's sky or shadow has grain.  Dark pictures in black letterboxes need this way in.
    flat_tolerance: float = 3.0
    flat_fraction: float = 0.99
    #: A side's trimmed run must be at least this share of the image's extent across it.
    min_fraction: float = 0.02
    #: Trimming stops early rather than leave less than this share of the side.
    keep_fraction: float = 0.25


DEFAULT_RULE = BorderRule()
#: Planes larger than this along a side are searched on block means (the box is then accurate to a block).
WORK_SIDE = 512


def block_means(luma: npt.NDArray[np.uint8] | npt.NDArray[np.floating], factor: int) -> npt.NDArray[np.float32]:
    """Means of factor x factor blocks (the ragged edge dropped).  An 8-bit plane (a decoded video frame) is reduced
    by Pillow's box filter in C, within half a grey level of the exact mean and far cheaper than numpy's reshape
    mean of a full-resolution frame in floating point."""
    plane = np.asarray(luma)
    h, w = plane.shape[0] // factor, plane.shape[1] // factor
    cropped = plane[: h * factor, : w * factor]
    if plane.dtype == np.uint8:
        from PIL import Image

        return np.asarray(Image.fromarray(np.ascontiguousarray(cropped)).reduce(factor), dtype=np.float32)
    return cropped.reshape(h, factor, w, factor).mean(axis=(1, 3), dtype=np.float32)


def _uniform(lines: npt.NDArray[np.float32], tolerance: float, fraction: float) -> npt.NDArray[np.bool_]:
    """For each row of `lines` (n, length): whether `fraction` of it is within `tolerance` of its median."""
    median = _medians(lines)[:, None]
    return (np.abs(lines - median) <= tolerance).mean(axis=1) >= fraction


def _medians(lines: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per-row medians, as np.median computes them, without its per-call overhead (these are small arrays)."""
    n = lines.shape[1]
    k = n // 2
    if n % 2:
        return np.partition(lines, k, axis=1)[:, k]
    parts = np.partition(lines, (k - 1, k), axis=1)
    return (parts[:, k - 1] + parts[:, k]) / 2


def _lead(
    lines: npt.NDArray[np.float32], tolerance: float, fraction: float, start: int = 0, limit: int | None = None
) -> int:
    """Length of the run of uniform lines from `start` (at most `limit`).

    Lines are tested in growing chunks, so a picture whose first line is already busy (most of them) costs one
    small chunk instead of a median of every line: this is what keeps the query-side border check cheap on
    thumbnails.
    """
    n = len(lines) if limit is None else min(len(lines), start + limit)
    i, step = start, 2
    while i < n:
        j = min(n, i + step)
        off = np.flatnonzero(~_uniform(lines[i:j], tolerance, fraction))
        if off.size:
            return i + int(off[0]) - start
        i, step = j, step * 2
    return n - start


def _edge(border_line: npt.NDArray[np.float32], inside_line: npt.NDArray[np.float32], rule: BorderRule) -> bool:
    colour = _medians(border_line[None, :])[0]
    return bool((np.abs(inside_line - colour) > rule.tolerance).mean() >= rule.edge_fraction)


def _cut(lines: npt.NDArray[np.float32], minimum: int, rule: BorderRule) -> int:
    """How many leading lines to trim.

    First the run of flat lines (drawn bars: any picture may follow, dark ones too), extended by a few looser
    lines (JPEG ringing where the bar meets the picture); failing that, the run of mostly uniform lines (toolbars
    with icons and titles), but only when it ends in a step.
    """
    run = _lead(lines, rule.flat_tolerance, rule.flat_fraction)
    slack = max(2, minimum // 2)
    if max(1, minimum - slack) <= run < len(lines):
        # JPEG blocks that straddle the bar's inner edge ring: up to `slack` of its last lines are only loosely flat.
        extended = run + _lead(lines, rule.tolerance, rule.line_fraction, start=run, limit=slack)
        if extended >= minimum:
            return extended
    run = _lead(lines, rule.tolerance, rule.line_fraction)
    if run < minimum or run >= len(lines):
        return 0
    # Cut at the first step: a bar followed by a flat band (toolbar, then page; a bar over a photo's sky) is trimmed
    # band by band, as `find_content` iterates.  All lines of the run at once: a tall run checked line by line
    # was most of a video frame's border check.
    if run > minimum:
        colours = _medians(lines[minimum - 1 : run - 1])[:, None]
        steps = (np.abs(lines[minimum:run] - colours) > rule.tolerance).mean(axis=1) >= rule.edge_fraction
        first = np.flatnonzero(steps)
        if first.size:
            return minimum + int(first[0])
    # At the end of the run the step may sit a line or two further in, behind JPEG ringing.
    inside = lines[run : min(len(lines), run + 3)]
    return run if any(_edge(lines[run - 1], line, rule) for line in inside) else 0


def find_content(
    luma: npt.NDArray[np.uint8] | npt.NDArray[np.floating], rule: BorderRule = DEFAULT_RULE, factor: int | None = None
) -> Box | None:
    """The box inside the border, or None when there is no border worth trimming.

    Iterates until stable: trimming the top bar can make a side bar's columns uniform (they no longer cross it).
    `factor`: search on block means of factor x factor pixels (default: the least that brings each side within
    WORK_SIDE); the box is scaled back to `luma`'s pixels.
    """
    shape = np.shape(luma)
    if len(shape) != 2:
        raise ValueError(f"expected an (H, W) luma plane, got shape {shape}")
    if factor is None:
        factor = -(-max(shape) // WORK_SIDE)
    if factor > 1:
        # Medians of every line cost O(pixels log): decide on block means, then scale the box back.
        small = block_means(luma, factor)
        h, w = small.shape
        plane = np.asarray(luma)
        box = find_content(small, rule)
        if box is None:
            return None
        bottom = plane.shape[0] if box.bottom == h else box.bottom * factor
        right = plane.shape[1] if box.right == w else box.right * factor
        return Box(box.top * factor, bottom, box.left * factor, right)
    plane = np.asarray(luma, dtype=np.float32)
    h, w = plane.shape
    top, bottom, left, right = 0, h, 0, w
    min_rows = max(1, int(np.ceil(rule.min_fraction * h)))
    min_cols = max(1, int(np.ceil(rule.min_fraction * w)))
    keep_rows = max(1, int(rule.keep_fraction * h))
    keep_cols = max(1, int(rule.keep_fraction * w))
    for _ in range(4):
        inner = plane[top:bottom, left:right]
        if inner.shape[0] <= keep_rows or inner.shape[1] <= keep_cols:
            break
        columns = np.ascontiguousarray(inner.T)
        if _lead(inner, rule.tolerance, rule.line_fraction) == len(inner):
            return None  # uniform all the way down: a blank image, not a framed one
        cut_top = _cut(inner, min_rows, rule)
        cut_bottom = _cut(inner[::-1], min_rows, rule)
        cut_left = _cut(columns, min_cols, rule)
        cut_right = _cut(columns[::-1], min_cols, rule)
        if not (cut_top or cut_bottom or cut_left or cut_right):
            break
        if inner.shape[0] - cut_top - cut_bottom < keep_rows or inner.shape[1] - cut_left - cut_right < keep_cols:
            return None
        top, bottom = top + cut_top, bottom - cut_bottom
        left, right = left + cut_left, right - cut_right
    if (top, bottom, left, right) == (0, h, 0, w):
        return None
    return Box(top, bottom, left, right)
