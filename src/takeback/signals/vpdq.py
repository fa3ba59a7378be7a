"""vPDQ-style video signals: one PDQ hash per sampled frame, and the matching modes for videos.

The layout follows Meta's vPDQ (frame number, timestamp, quality, hash) so a
takeback video hash can be exported to, and matched against, ThreatExchange
and HMA lists.

The vPDQ rule (`index.video.VideoRule`) compares frame *sets*, not sequences:
a copy matches when 80% of its sampled frames are each near some banked frame.
So the modes only have to make every frame of a copy land near a banked one:

* `dense` (bank side): frames every quarter interval.  A trimmed copy, or one
  played faster or slower, is sampled at instants between the original's
  samples; with 1 s samples on both sides a moving shot has changed too much by
  the half-second in between, with 0.25 s in the bank the nearest is 0.125 s
  away at most.  Nothing changes on the query side (1 frame a second).
* `dihedral` (bank side): the mirrored frames as a second frame list
  ("flipy"), for mirrored re-uploads.  Only the mirror: a video's quarter-turns
  are carried in its metadata and undone by players, and each extra list costs
  as much as the video's own.
* `borders`: each frame inside its letterbox or frame, if it has one (frames
  without keep their own hash), as a second frame list ("border").  On the
  query side (a found copy) it strips the bars a re-uploader added; on the bank
  side it is added only when the original itself is letterboxed.
* `smooth` (both sides): each frame's smoothed PDQ (`pdq_fast.smooth_operator`)
  as one more frame list ("smooth"), so a downscaled copy of a video of fine
  texture still matches frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from takeback.media import video
from takeback.media.errors import CorruptMedia
from takeback.signals import borders, pdq
from takeback.signals.pdq_fast import FrameHashers
from takeback.signals.regions import Plane, hashable
from takeback.signals.variants import Mode

#: vPDQ's defaults (ThreatExchange `vpdq_util`): frames below this quality are
#: ignored when matching, and two frames match below this distance.
VPDQ_QUALITY_THRESHOLD = 50
VPDQ_DISTANCE_THRESHOLD = 31
VPDQ_QUERY_MATCH_PERCENT = 80.0
VPDQ_INDEX_MATCH_PERCENT = 0.0
_TIMESTAMP_DIGITS = 3
#: `dense`: bank frames this many times as often as the requested interval.
DENSE_FACTOR = 4
#: Border detection looks at frames scaled down to at most this many rows (the bars are wide; medians are slow).
_BORDER_ROWS = 360


@dataclass(frozen=True, slots=True)
class FrameHash:
    frame_number: int
    timestamp: float
    quality: int
    hex: str

    def to_threatexchange(self) -> str:
        """ThreatExchange's compact feature: 'hex,quality,timestamp' with the
        timestamp to 3 significant digits, as `VpdqCompactFeature` writes it."""
        return f"{self.hex},{self.quality},{self.timestamp:.{_TIMESTAMP_DIGITS}}"


@dataclass(slots=True)
class VideoHash:
    duration: float
    fps: float
    width: int
    height: int
    codec: str
    frames: list[FrameHash] = field(default_factory=list)
    #: Set when the stream was damaged part-way: the frames before it are kept.
    warning: str | None = None
    #: Bank-side frame lists from the modes, by name ("flipy", "border"), each as long as `frames`.
    variants: dict[str, list[FrameHash]] = field(default_factory=dict)
    #: Query-side frame lists ("border"), for matching a found copy.
    query_variants: dict[str, list[FrameHash]] = field(default_factory=dict)


def hash_video(
    path: Path,
    interval: float = 1.0,
    start: float = 0.0,
    end: float | None = None,
    exact: bool = False,
    max_frame_pixels: int = video.DEFAULT_MAX_FRAME_PIXELS,
    modes: Iterable[Mode] = (),
    query_modes: Iterable[Mode] = (),
) -> VideoHash:
    """Hash the frames at each `interval` seconds of [start, end) (each quarter interval with `dense`).

    The fast path applies the full-resolution PDQ operator to the decoder's
    own luma plane; `exact` converts each sampled frame to RGB first, as the
    vpdq reference does, for bit-identical frame hashes.  A stream that breaks
    part-way keeps the frames before the damage and says so in `warning`.
    `modes` add bank-side frame lists, `query_modes` query-side ones (see the module docstring).
    """
    modes, query_modes = frozenset(modes), frozenset(query_modes)
    step = interval / DENSE_FACTOR if Mode.DENSE in modes else interval
    info = video.probe(path)
    result = VideoHash(info.duration, info.fps, info.width, info.height, info.codec)
    mirrored: list[FrameHash] = []
    framed: list[FrameHash] = []
    smoothed: list[FrameHash] = []
    smooth = Mode.SMOOTH in modes or Mode.SMOOTH in query_modes
    any_border = False
    hashers = FrameHashers()
    try:
        for sample in video.sample_frames(
            path, interval=step, start=start, end=end, max_frame_pixels=max_frame_pixels, deblock=exact
        ):
            flipped: pdq.PdqHash | None = None
            if exact:
                frame_hash = _exact_frame_hash(sample)
                if Mode.DIHEDRAL in modes:
                    flipped = _exact_frame_hash(sample, mirror=True)
            elif Mode.DIHEDRAL in modes:
                frame_hash, flipped = hashers.hash_and_mirror(sample.luma, limited_range=sample.limited_range)
            else:
                frame_hash = hashers.hash(sample.luma, limited_range=sample.limited_range)
            own = FrameHash(sample.frame_number, sample.timestamp, frame_hash.quality, frame_hash.hex)
            result.frames.append(own)
            if flipped is not None:
                mirrored.append(FrameHash(sample.frame_number, sample.timestamp, flipped.quality, flipped.hex))
            if Mode.BORDERS in modes or Mode.BORDERS in query_modes:
                inside = frame_inside_border(sample.luma, sample.limited_range, hashers)
                any_border |= inside is not None
                framed.append(own if inside is None else FrameHash(sample.frame_number, sample.timestamp, *inside))
            if smooth:
                soft = smooth_frame_hash(sample.luma, sample.limited_range, hashers)
                smoothed.append(FrameHash(sample.frame_number, sample.timestamp, soft.quality, soft.hex))
    except CorruptMedia as exc:
        if not result.frames:
            raise
        result.warning = exc.reason
    if mirrored:
        result.variants["flipy"] = mirrored
    if any_border and Mode.BORDERS in modes:
        result.variants["border"] = framed
    if any_border and Mode.BORDERS in query_modes:
        result.query_variants["border"] = framed
    if smoothed and Mode.SMOOTH in modes:
        result.variants["smooth"] = smoothed
    if smoothed and Mode.SMOOTH in query_modes:
        result.query_variants["smooth"] = smoothed
    return result


def smooth_frame_hash(
    luma: npt.NDArray[np.uint8], limited_range: bool = False, hashers: FrameHashers | None = None
) -> pdq.PdqHash:
    """The smoothed PDQ of one frame (the `smooth` mode), levels stretched like the frame's own hash.
    Pass the video's `hashers` to reuse their buffers from frame to frame."""
    return (hashers or FrameHashers()).hash(np.asarray(luma), limited_range, smooth=True)


def frame_inside_border(
    luma: npt.NDArray[np.uint8], limited_range: bool = False, hashers: FrameHashers | None = None
) -> tuple[int, str] | None:
    """(quality, hex) of a frame's picture inside its letterbox or frame, or None when it has none.

    The border is found on the frame scaled down by whole blocks (bars are tens of rows wide) and the box scaled
    back; the hash is of the full-resolution box.
    """
    plane = np.asarray(luma)
    factor = max(1, plane.shape[0] // _BORDER_ROWS)
    # Search on a side within WORK_SIDE too, reached in one reduction of the 8-bit frame (Pillow's, in C) rather
    # than a second one in floating point: that made a 720p frame's check 2.4x faster.
    factor *= max(1, -(-(max(plane.shape) // factor) // borders.WORK_SIDE))
    box = borders.find_content(plane, factor=factor)
    if box is None or not hashable(box, Plane.of_array(plane)):
        return None
    h = (hashers or FrameHashers()).hash(plane[box.top : box.bottom, box.left : box.right], limited_range)
    return h.quality, h.hex


def _exact_frame_hash(sample: video.SampledFrame, mirror: bool = False) -> pdq.PdqHash:
    frame = sample.source
    if frame is None:  # pragma: no cover - the sampler always attaches it
        raise ValueError("exact hashing needs the decoded frame")
    rgb = frame.to_ndarray(format="rgb24")
    return pdq.hash_rgb(np.ascontiguousarray(rgb[:, ::-1]) if mirror else rgb)
