"""Sample a video's frames at a fixed interval, decoding only what that needs.

vPDQ hashes one frame per second.  The reference decodes *every* frame; at
30 fps that is 29 frames thrown away for each one kept.  Here packets are read
(cheap: no decoding) one group of pictures (GOP, keyframe to keyframe) at a
time; for each GOP we work out which displayed frames the sampling wants and
feed the decoder only the packets up to the last of those, then skip to the
next keyframe.  When keyframes fall on the sampling instants, as in most phone
videos (a keyframe every second), only keyframes are decoded.  Long-GOP videos
fall back gracefully to decoding the needed part of each GOP.

Frames come out as the luma (Y) plane straight from the decoder, with no colour
conversion and no copy; `signals.vpdq` applies the PDQ operator to it.
"""

from __future__ import annotations

import bisect
import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from takeback.media.errors import (
    CorruptMedia,
    EmptyFile,
    MediaError,
    NotMedia,
    NoVideoStream,
    TooLarge,
)

DEFAULT_MAX_FRAME_PIXELS = 8192 * 4352  # 8K DCI: anything larger is not a phone video
DEFAULT_MAX_GOP_BYTES = 256 * 1024 * 1024
_FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p", "gray", "gray8"})
_Y_FIRST_8BIT = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "yuv440p",
        "yuvj440p",
        "yuv411p",
        "yuvj411p",
        "yuv410p",
        "nv12",
        "nv21",
        "nv16",
        "nv24",
        "gray",
        "yuva420p",
        "yuva444p",
    }
)
_Y_FIRST_HIGH = {
    "yuv420p10le": 10,
    "yuv422p10le": 10,
    "yuv444p10le": 10,
    "yuv420p12le": 12,
    "yuv422p12le": 12,
    "yuv444p12le": 12,
    "p010le": 16,
    "p016le": 16,
    "gray10le": 10,
    "gray12le": 12,
    "gray16le": 16,
}


@dataclass(frozen=True, slots=True)
class VideoInfo:
    duration: float
    fps: float
    width: int
    height: int
    codec: str


@dataclass(slots=True)
class SampledFrame:
    """One sampled frame.  `luma` may be a view into decoder memory: use it
    before asking for the next frame.  `limited_range` means video levels
    (16..235) that the hasher stretches to 0..255 as the RGB reference does."""

    frame_number: int
    timestamp: float
    luma: npt.NDArray[np.uint8]
    limited_range: bool
    #: The decoded frame itself, for callers that need colour (exact hashing).
    source: Any = None


def _open(path: Path) -> Any:
    import av

    if path.stat().st_size == 0:
        raise EmptyFile("file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise CorruptMedia(f"video container is damaged or its index is missing ({exc.strerror or exc})") from None
    except av.error.FFmpegError as exc:
        raise NotMedia(f"not a readable video ({getattr(exc, 'strerror', None) or exc})") from None


def _video_stream(container: Any) -> Any:
    for stream in container.streams.video:
        disposition = getattr(stream, "disposition", 0)
        attached_pic = int(disposition) & 0x400 if disposition is not None else 0
        if not attached_pic:
            return stream
    raise NoVideoStream("the file has no video stream (audio only or empty container)")


def _info(container: Any, stream: Any) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0
    duration = 0.0
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    ctx = stream.codec_context
    return VideoInfo(
        duration=max(0.0, duration),
        fps=fps,
        width=int(ctx.width or 0),
        height=int(ctx.height or 0),
        codec=str(ctx.name or "unknown"),
    )


def probe(path: Path) -> VideoInfo:
    """Duration, frame rate and size from the container header (no decoding)."""
    container = _open(path)
    with container:
        stream = _video_stream(container)
        return _info(container, stream)


def _luma_of(frame: Any) -> tuple[npt.NDArray[np.uint8], bool]:
    name = frame.format.name
    if name in _Y_FIRST_8BIT:
        plane = frame.planes[0]
        arr = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        limited = name not in _FULL_RANGE_FORMATS and int(getattr(frame, "color_range", 0) or 0) != 2
        return arr, limited
    if name in _Y_FIRST_HIGH:
        bits = _Y_FIRST_HIGH[name]
        plane = frame.planes[0]
        raw = np.frombuffer(plane, dtype="<u2").reshape(plane.height, plane.line_size // 2)[:, : plane.width]
        arr = (raw >> (bits - 8)).astype(np.uint8) if bits > 8 else raw.astype(np.uint8)
        limited = int(getattr(frame, "color_range", 0) or 0) != 2 and not name.startswith("gray")
        return arr, limited
    # Anything else (RGB, palettes, Bayer…): let swscale produce full-range grey.
    grey = frame.reformat(format="gray")
    plane = grey.planes[0]
    arr = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    return arr.copy(), False


@dataclass(slots=True)
class _Packet:
    packet: Any
    time: float  # presentation time relative to the stream start


def sample_frames(
    path: Path,
    interval: float = 1.0,
    start: float = 0.0,
    end: float | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    max_gop_bytes: int = DEFAULT_MAX_GOP_BYTES,
    threads: int = 1,
    deblock: bool = True,
) -> Iterator[SampledFrame]:
    """Yield the frame displayed at each instant k*interval in [start, end).

    `deblock=False` lets the decoder leave out its loop (deblocking) filter
    on keyframes decoded alone, i.e. GOPs whose only wanted frame is their
    first, as in phone videos with a keyframe every second.  The filter
    smooths 4- and 8-pixel block edges, which PDQ's 64x64 downsampling
    averages away anyway (frame hashes move by 0-2 bits), and it is about a
    tenth of the decoding.  Skipping it on a frame that later frames are
    predicted from would carry its error into them, so that is never done.

    Each frame is yielded at most once (a still that lasts 5 s is one sample).
    Raises `MediaError` subclasses for files that cannot be opened or decoded
    at all; a stream damaged part-way yields what could be decoded and then
    raises `CorruptMedia` naming the time where decoding stopped.
    """
    import av

    if interval <= 0:
        raise ValueError("interval must be positive")
    container = _open(path)
    with container:
        stream = _video_stream(container)
        info = _info(container, stream)
        if info.width * info.height > max_frame_pixels:
            raise TooLarge(
                f"video frames are {info.width}x{info.height}, over the {max_frame_pixels / 1e6:.0f} MP frame limit"
            )
        time_base = stream.time_base or Fraction(1, 90000)
        origin = stream.start_time if stream.start_time is not None else 0
        ctx = stream.codec_context
        _configure(ctx, threads)
        if start > 0:
            # An unseekable file is simply read from the beginning.
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(
                    int((start + origin * float(time_base)) / float(time_base)), stream=stream, backward=True
                )
        decoders = _Decoders(ctx, threads, deblock)
        state = _Sampler(info.fps, interval, start, end, float(origin * time_base), time_base, decoders)
        gop: list[_Packet] = []
        gop_bytes = 0
        decoded_any = False
        # Integer numerator over integer denominator is float(Fraction(...)) exactly, without building a Fraction
        # for each of a film's hundreds of thousands of packets.
        num, den = time_base.numerator, time_base.denominator
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    continue
                when = (stamp - origin) * num / den
                if packet.is_keyframe and gop:
                    for sample in state.run_gop(gop, next_key_time=when):
                        decoded_any = True
                        yield sample
                    gop, gop_bytes = [], 0
                    if state.finished(when):
                        return
                gop.append(_Packet(packet, when))
                gop_bytes += packet.size
                if gop_bytes > max_gop_bytes:
                    raise TooLarge(f"a single group of pictures exceeds {max_gop_bytes // 2**20} MiB")
            if gop:
                # The last GOP runs until its last frame has been shown.
                stream_end = max(p.time for p in gop) + 1.0 / info.fps
                for sample in state.run_gop(gop, next_key_time=stream_end):
                    decoded_any = True
                    yield sample
        except MediaError:
            raise
        except av.error.FFmpegError as exc:
            where = gop[0].time if gop else start
            message = getattr(exc, "strerror", None) or str(exc)
            if decoded_any:
                raise CorruptMedia(f"video is damaged after {where:.1f}s ({message})") from None
            raise CorruptMedia(f"video could not be decoded ({message})") from None
        if not decoded_any and state.expected_any():
            raise CorruptMedia("no decodable video frames")


#: Decoders whose loop filter FFmpeg's `skip_loop_filter` turns off, and that
#: a fresh context can run from the stream's extradata alone.
_DEBLOCKING_CODECS = frozenset({"h264", "hevc"})


def _configure(ctx: Any, threads: int, skip_loop_filter: str | None = None) -> None:
    ctx.thread_count = max(1, threads)
    if threads > 1:
        ctx.thread_type = "AUTO"
    if skip_loop_filter is not None:
        # A decoder option, read when the decoder opens (on its first packet).
        ctx.options = {"skip_loop_filter": skip_loop_filter}


class _Decoders:
    """The stream's decoder, and for `deblock=False` a second one for keyframes decoded alone.

    FFmpeg reads `skip_loop_filter` only when a decoder opens, and a GOP
    decoded past its keyframe needs the filter, so keyframes alone go to
    their own decoder; GOPs are decoded independently (the decoder is flushed
    after each), so nothing is lost by switching.

    With one decoding thread, packets the sampling does not want and that no
    other frame refers to are not decoded at all (`skip_frame`): the decoder
    reads the packet's header and drops it.  In a long GOP with B-frames that
    is about half of the frames, and the output is bit for bit the same:
    nothing is predicted from them.  With frame threads a packet may be
    decoded after `decode()` returns, so the setting could not follow the
    packets, and it is left alone.
    """

    def __init__(self, ctx: Any, threads: int, deblock: bool) -> None:
        self.ctx = ctx
        self.threads = threads
        self.separate_keyframes = not deblock and ctx.codec.name in _DEBLOCKING_CODECS
        self.can_skip = threads <= 1
        self._keyframes: Any = None

    def for_gop(self, keyframe_only: bool) -> Any:
        if not (keyframe_only and self.separate_keyframes):
            return self.ctx
        if self._keyframes is None:
            import av

            keyframes = av.CodecContext.create(self.ctx.codec.name, "r")
            keyframes.extradata = self.ctx.extradata
            _configure(keyframes, self.threads, skip_loop_filter="all")
            self._keyframes = keyframes
        return self._keyframes

    def skip_unwanted(self, ctx: Any, skip: bool) -> None:
        if self.can_skip:
            setting = "NONREF" if skip else "DEFAULT"
            if ctx.skip_frame != setting:
                ctx.skip_frame = setting


class _Sampler:
    """Decides, GOP by GOP, which packets to decode for the sampling instants."""

    def __init__(
        self,
        fps: float,
        interval: float,
        start: float,
        end: float | None,
        origin_seconds: float,
        time_base: Fraction,
        decoders: _Decoders,
    ) -> None:
        self.fps = fps
        self.time_base = time_base
        self.origin_seconds = origin_seconds
        self.interval = interval
        self.half_frame = 0.5 / fps
        self.next_index = max(0, math.ceil(start / interval - 1e-9))
        self.end = end
        self.last_emitted_time = -math.inf
        self.decoders = decoders

    def _target(self, k: int) -> float:
        return k * self.interval

    def expected_any(self) -> bool:
        return self.end is None or self._target(self.next_index) < self.end

    def finished(self, when: float) -> bool:
        return self.end is not None and when >= self.end and self._target(self.next_index) >= self.end

    def run_gop(self, gop: list[_Packet], next_key_time: float) -> Iterator[SampledFrame]:
        # Presentation times in this GOP, and which instants fall before the next keyframe.
        times = sorted(p.time for p in gop)
        wanted: dict[float, int] = {}
        while True:
            target = self._target(self.next_index)
            if self.end is not None and target >= self.end:
                break
            if target >= next_key_time - self.half_frame:
                break
            pos = bisect.bisect_right(times, target + self.half_frame) - 1
            shown = times[max(pos, 0)]
            wanted.setdefault(shown, self.next_index)
            self.next_index += 1
        if not wanted:
            return
        needed = [p.time in wanted for p in gop]
        last = max(i for i, need in enumerate(needed) if need)
        ctx = self.decoders.for_gop(keyframe_only=last == 0 and gop[0].packet.is_keyframe)
        frames: dict[float, Any] = {}
        wanted_times = sorted(wanted)
        for item, need in zip(gop[: last + 1], needed, strict=False):
            self.decoders.skip_unwanted(ctx, skip=not need)
            for frame in ctx.decode(item.packet):
                self._keep(frames, frame, wanted_times)
        for frame in ctx.decode(None):
            self._keep(frames, frame, wanted_times)
        ctx.flush_buffers()
        decoded_times = sorted(frames)
        for shown in sorted(wanted):
            # Match by time, tolerating timestamp rounding between packet and frame.
            pos = bisect.bisect_left(decoded_times, shown - self.half_frame)
            if pos >= len(decoded_times) or decoded_times[pos] > shown + self.half_frame:
                continue
            when = decoded_times[pos]
            if when <= self.last_emitted_time:
                continue
            self.last_emitted_time = when
            luma, limited = _luma_of(frames[when])
            yield SampledFrame(
                frame_number=round(when * self.fps),
                timestamp=round(when, 6),
                luma=luma,
                limited_range=limited,
                source=frames[when],
            )

    def _keep(self, frames: dict[float, Any], frame: Any, wanted_times: list[float]) -> None:
        """Hold on to a decoded frame only if the sampling wants it: a long GOP
        must not pile up hundreds of full frames in memory."""
        when = self._frame_time(frame)
        if when is None:
            return
        pos = bisect.bisect_left(wanted_times, when - self.half_frame)
        if pos < len(wanted_times) and wanted_times[pos] <= when + self.half_frame:
            frames[when] = frame

    def _frame_time(self, frame: Any) -> float | None:
        """Presentation time relative to the stream start, like packet times."""
        # Frames decoded straight from the codec context carry no time base of
        # their own; their pts is in the stream's.
        if frame.pts is None:
            return None
        base = frame.time_base or self.time_base
        return frame.pts * base.numerator / base.denominator - self.origin_seconds
