"""vPDQ-style video signals: one PDQ hash per sampled frame.

The layout follows Meta's vPDQ (frame number, timestamp, quality, hash) so a
takeback video hash can be exported to, and matched against, ThreatExchange
and HMA lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from takeback.media import video
from takeback.media.errors import CorruptMedia
from takeback.signals import pdq
from takeback.signals.pdq_fast import PlaneHasher

#: vPDQ's defaults (ThreatExchange `vpdq_util`): frames below this quality are
#: ignored when matching, and two frames match below this distance.
VPDQ_QUALITY_THRESHOLD = 50
VPDQ_DISTANCE_THRESHOLD = 31
VPDQ_QUERY_MATCH_PERCENT = 80.0
VPDQ_INDEX_MATCH_PERCENT = 0.0
_TIMESTAMP_DIGITS = 3


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


def hash_video(
    path: Path,
    interval: float = 1.0,
    start: float = 0.0,
    end: float | None = None,
    exact: bool = False,
    max_frame_pixels: int = video.DEFAULT_MAX_FRAME_PIXELS,
) -> VideoHash:
    """Hash the frames at each `interval` seconds of [start, end).

    The fast path applies the full-resolution PDQ operator to the decoder's
    own luma plane; `exact` converts each sampled frame to RGB first, as the
    vpdq reference does, for bit-identical frame hashes.  A stream that breaks
    part-way keeps the frames before the damage and says so in `warning`.
    """
    info = video.probe(path)
    result = VideoHash(info.duration, info.fps, info.width, info.height, info.codec)
    hasher: PlaneHasher | None = None
    try:
        for sample in video.sample_frames(
            path, interval=interval, start=start, end=end, max_frame_pixels=max_frame_pixels
        ):
            if exact:
                frame_hash = _exact_frame_hash(sample)
            else:
                height, width = sample.luma.shape
                if hasher is None or (hasher.height, hasher.width) != (height, width):
                    hasher = PlaneHasher(height, width)
                frame_hash = hasher.hash(sample.luma, limited_range=sample.limited_range)
            result.frames.append(FrameHash(sample.frame_number, sample.timestamp, frame_hash.quality, frame_hash.hex))
    except CorruptMedia as exc:
        if not result.frames:
            raise
        result.warning = exc.reason
    return result


def _exact_frame_hash(sample: video.SampledFrame) -> pdq.PdqHash:
    frame = sample.source
    if frame is None:  # pragma: no cover - the sampler always attaches it
        raise ValueError("exact hashing needs the decoded frame")
    return pdq.hash_rgb(frame.to_ndarray(format="rgb24"))
