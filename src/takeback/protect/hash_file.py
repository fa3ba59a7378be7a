"""Hash one file (or one time segment of a video) in a worker process.

Never raises: every problem becomes a `FAILED` result with a one-line reason,
so one bad file in ten thousand cannot stop the batch.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from takeback.media import sniff
from takeback.media.errors import (
    CorruptMedia,
    EmptyFile,
    MediaError,
    NotMedia,
    UnreadableFile,
)
from takeback.protect.results import FileResult, Frame, Status
from takeback.signals import exact as exact_digests
from takeback.signals.variants import DEFAULT_MODES, hash_image_signals, modes_text, parse_modes

if TYPE_CHECKING:
    from takeback.signals.vpdq import FrameHash

#: Image files up to this size are read into memory once; bigger ones are streamed for their digests.
READ_WHOLE_MAX_BYTES = 256 * 2**20


@dataclass(frozen=True, slots=True)
class HashOptions:
    exact: bool = False
    interval: float = 1.0
    max_pixels: int = 250_000_000
    #: Matching modes for the extra bank hashes of photos and videos (signals.variants, signals.vpdq),
    #: comma-separated; "" for none.
    modes: str = modes_text(DEFAULT_MODES)
    #: Matching modes for the extra *query* hashes, when the file is hashed to be matched (a found copy); "" for
    #: none.  Hashing for a bank leaves this empty, hashing to match usually sets `modes` to "".
    query_modes: str = ""


@dataclass(frozen=True, slots=True)
class Task:
    path: str
    #: For a long video split across workers: [start, end) seconds and whether
    #: this segment also computes the whole-file digests.
    start: float = 0.0
    end: float | None = None
    digests: bool = True
    #: False: the digests alone (a split video's, as a task of their own: see `batch._video_segments`).
    signals: bool = True


def _read_error(exc: OSError) -> UnreadableFile:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UnreadableFile("permission denied")
    if exc.errno == errno.ENOENT:
        return UnreadableFile("file vanished before it could be read")
    if exc.errno == errno.ELOOP:
        return UnreadableFile("symbolic link loop")
    return UnreadableFile(f"could not read the file ({os.strerror(exc.errno) if exc.errno else exc})")


def _read_whole(path: Path) -> bytes | None:
    """The file's bytes, unless it is too big to hold in memory at once (then it is streamed)."""
    if path.stat().st_size > READ_WHOLE_MAX_BYTES:
        return None
    return path.read_bytes()


def classify(path: Path) -> tuple[sniff.Kind, sniff.Kind]:
    """(what the bytes are, what the name claims).  Raises OSError."""
    return sniff.kind_of_file(path), sniff.expected_kind(path)


def _rows(frames: list[FrameHash]) -> list[tuple[int, float, int, str]]:
    return [(f.frame_number, f.timestamp, f.quality, f.hex) for f in frames]


def run_task(task: Task, options: HashOptions) -> FileResult:
    path = Path(task.path)
    result = FileResult(path=task.path, status=Status.FAILED)
    try:
        actual, claimed = classify(path)
        result.kind = (actual if actual is not sniff.Kind.UNKNOWN else claimed).value
        if actual is sniff.Kind.UNKNOWN:
            if path.stat().st_size == 0 and claimed is not sniff.Kind.UNKNOWN:
                raise EmptyFile("file is empty (0 bytes)")
            if claimed is sniff.Kind.UNKNOWN:
                result.status = Status.SKIPPED
                result.reason = "not an image or video"
                return result
            raise NotMedia(f"named like {claimed.value} ({path.suffix}) but the content is not a known format")
        # A photo is read once, for its digests and its pixels; a video is streamed.
        data = _read_whole(path) if actual is sniff.Kind.IMAGE else None
        if task.digests:
            digests = exact_digests.digest_bytes(data) if data is not None else exact_digests.digest_file(path)
            result.md5, result.sha256, result.size = digests.md5, digests.sha256, digests.size
        if not task.signals:
            result.status = Status.HASHED
            return result
        if actual is sniff.Kind.IMAGE:
            image = hash_image_signals(
                path,
                parse_modes(options.modes),
                query_modes=parse_modes(options.query_modes),
                exact=options.exact,
                max_pixels=options.max_pixels,
                data=data,
            )
            result.pdq, result.quality = image.pdq.hex, image.pdq.quality
            result.variants = [(v.name, v.hex, v.quality) for v in image.variants]
            result.query_variants = [(v.name, v.hex, v.quality) for v in image.queries]
        else:
            # Imported here: a worker that only meets photos starts without the video stack.
            from takeback.signals.vpdq import hash_video

            video = hash_video(
                path,
                interval=options.interval,
                start=task.start,
                end=task.end,
                exact=options.exact,
                modes=parse_modes(options.modes),
                query_modes=parse_modes(options.query_modes),
            )
            result.duration, result.fps = round(video.duration, 3), round(video.fps, 3)
            result.frames = [Frame(f.frame_number, f.timestamp, f.quality, f.hex) for f in video.frames]
            result.video_variants = [(name, _rows(frames)) for name, frames in video.variants.items()]
            result.query_video_variants = [(name, _rows(frames)) for name, frames in video.query_variants.items()]
            result.warning = video.warning
            if not result.frames and task.start == 0.0:
                raise CorruptMedia("no video frames could be decoded")
        result.status = Status.HASHED
    except MediaError as exc:
        result.error_code = exc.code
        result.reason = exc.reason
    except OSError as exc:
        err = _read_error(exc)
        result.error_code, result.reason = err.code, err.reason
    except MemoryError:
        result.error_code, result.reason = "too-large", "not enough memory to decode this file"
    except Exception as exc:
        result.error_code = "internal"
        result.reason = f"unexpected {type(exc).__name__}: {str(exc)[:200]}"
    return result
