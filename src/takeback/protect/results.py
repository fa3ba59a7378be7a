"""What hashing one file produced: plain, picklable records that cross the
process boundary and go into the hash list and the on-device cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    HASHED = "hashed"
    CACHED = "cached"  # unchanged since the last run: hashes reused from the cache
    SKIPPED = "skipped"  # not an image or video, and not named like one
    FAILED = "failed"


@dataclass(slots=True)
class Frame:
    frame_number: int
    timestamp: float
    quality: int
    pdq: str


@dataclass(slots=True)
class FileResult:
    """Outcome for one file.  `path` stays on the device: the hash list only
    carries it with `--keep-names`."""

    path: str
    status: Status
    kind: str = "unknown"  # image | video | unknown
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    quality: int | None = None
    duration: float | None = None
    fps: float | None = None
    frames: list[Frame] = field(default_factory=list)
    error_code: str | None = None
    reason: str | None = None
    warning: str | None = None
    #: Photos: extra bank hashes (name, pdq hex, quality) from the matching modes.
    variants: list[tuple[str, str, int]] = field(default_factory=list)
    #: Videos: extra bank frame lists (name, [(frame_number, timestamp, quality, pdq hex), ...]).
    video_variants: list[tuple[str, list[tuple[int, float, int, str]]]] = field(default_factory=list)
    #: Hashing a found copy to match it (HashOptions.query_modes): the photo's extra query hashes, and a video's
    #: extra query frame lists, in the same shapes.  Never written to a hash list.
    query_variants: list[tuple[str, str, int]] = field(default_factory=list)
    query_video_variants: list[tuple[str, list[tuple[int, float, int, str]]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (Status.HASHED, Status.CACHED)

    def to_cache(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        data["status"] = self.status.value
        return data

    @classmethod
    def from_cache(cls, path: str, data: dict[str, Any]) -> FileResult:
        frames = [Frame(**f) for f in data.get("frames", [])]
        fields = {k: v for k, v in data.items() if k not in ("frames", "status", "path")}
        return cls(path=path, status=Status.CACHED, frames=frames, **fields)
