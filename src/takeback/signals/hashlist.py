"""The hash list: what `takeback hash` writes and the match service reads.

Format `takeback-hashlist` version 1, JSON Lines (one JSON object per line):

1. a header ``{"format": "takeback-hashlist", "version": 1, ...}``;
2. one record per hashed file: ``{"type": "image", "md5", "sha256", "size",
   "pdq", "quality"}`` (version 2: optional ``"variants": [[name, pdq, quality], ...]``,
   extra hashes from the matching modes) or ``{"type": "video", "md5", "sha256", "size",
   "duration", "fps", "frames": [[frame_number, timestamp, quality, pdq], ...]}`` (version 3:
   optional ``"variants": [[name, frames], ...]``, extra frame lists such as the mirrored video);
3. the error section: ``{"type": "error", "code", "reason"}`` per failed file;
4. a trailer ``{"type": "summary", ...}``: its absence means the file was cut short.

No record carries a file name or path unless the list was written with
`--keep-names` (then each has ``"name"``): a name can identify a person.
Exports: CSV with a header row, and the ThreatExchange/HMA text layout, one
``signal_type value`` per line with TE's names (`pdq`, `vpdq`, `md5`,
`video_md5`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from takeback.signals.vpdq import FrameHash

FORMAT_NAME = "takeback-hashlist"
#: Newest version this takeback reads.  2 adds image records' optional "variants", 3 video records' optional
#: "variants"; a list is written with the oldest version that can carry it (one without variants is version 1, byte
#: for byte what older takeback versions read), so an older reader refuses only what it cannot read, and says why.
FORMAT_VERSION = 3

Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Quality = Annotated[int, Field(ge=0, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(_Model):
    format: Literal["takeback-hashlist"]
    version: int = Field(ge=1)
    generator: str
    created: str
    names: bool
    options: dict[str, Any] = Field(default_factory=dict)


class ImageRecord(_Model):
    type: Literal["image"]
    md5: Hex32
    sha256: Hex64
    size: int = Field(ge=0)
    pdq: Hex64
    quality: Quality
    name: str | None = None
    #: Extra bank hashes from the matching modes (signals.variants): [name, pdq hex, quality], e.g. a mirror image.
    variants: list[tuple[Annotated[str, StringConstraints(max_length=32)], Hex64, Quality]] | None = None


FrameRow = tuple[int, float, Quality, Hex64]


class VideoRecord(_Model):
    type: Literal["video"]
    md5: Hex32
    sha256: Hex64
    size: int = Field(ge=0)
    duration: float = Field(ge=0)
    fps: float = Field(ge=0)
    frames: list[FrameRow]
    name: str | None = None
    warning: str | None = None
    #: Extra frame lists from the matching modes (signals.vpdq): [name, frames], e.g. the mirrored video ("flipy").
    variants: list[tuple[Annotated[str, StringConstraints(max_length=32)], list[FrameRow]]] | None = None


class ErrorRecord(_Model):
    type: Literal["error"]
    code: str
    reason: str
    kind: str = "unknown"
    name: str | None = None


class Summary(_Model):
    type: Literal["summary"]
    hashed: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0)
    images: int = Field(ge=0)
    videos: int = Field(ge=0)


Record = ImageRecord | VideoRecord


def version_for(records: Iterable[Record]) -> int:
    """The oldest format version that can carry these records (1 unless a photo or a video has variants)."""
    records = list(records)
    if any(isinstance(r, VideoRecord) and r.variants for r in records):
        return 3
    return 2 if any(isinstance(r, ImageRecord) and r.variants for r in records) else 1


class HashList(_Model):
    header: Header
    records: list[Record]
    errors: list[ErrorRecord]
    summary: Summary


class HashListError(ValueError):
    """A hash list that cannot be read, with the line at fault."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def _dump(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json", exclude_none=True), separators=(",", ":"), ensure_ascii=False)


def to_jsonl(hash_list: HashList) -> Iterator[str]:
    yield _dump(hash_list.header)
    for record in hash_list.records:
        yield _dump(record)
    for error in hash_list.errors:
        yield _dump(error)
    yield _dump(hash_list.summary)


def to_csv(hash_list: HashList) -> Iterator[str]:
    """One row per image, one per video frame, one per error."""
    columns = [
        "type",
        "md5",
        "sha256",
        "size",
        "pdq",
        "quality",
        "frame_number",
        "timestamp",
        "duration",
        "name",
        "error",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="")

    def row(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(["" if v is None else v for v in values])
        return buffer.getvalue()

    yield row(columns)
    for r in hash_list.records:
        if isinstance(r, ImageRecord):
            yield row(["image", r.md5, r.sha256, r.size, r.pdq, r.quality, None, None, None, r.name, None])
        else:
            for number, stamp, quality, value in r.frames:
                yield row(["video", r.md5, r.sha256, r.size, value, quality, number, stamp, r.duration, r.name, None])
    for e in hash_list.errors:
        yield row(["error", None, None, None, None, None, None, None, None, e.name, f"{e.code}: {e.reason}"])


def to_threatexchange(hash_list: HashList) -> Iterator[str]:
    """`signal_type value` lines as ThreatExchange's CLI and HMA banks take them.
    A vPDQ value is TE's JSON list of compact features "pdq,quality,timestamp"."""
    for r in hash_list.records:
        if isinstance(r, ImageRecord):
            yield f"pdq {r.pdq}"
            yield from (f"pdq {value}" for _name, value, _quality in r.variants or ())
            yield f"md5 {r.md5}"
        else:
            for frames in [r.frames, *(frames for _name, frames in r.variants or ())]:
                features = [FrameHash(n, t, q, h).to_threatexchange() for n, t, q, h in frames]
                if features:
                    yield "vpdq " + json.dumps(features, separators=(",", ":"))
            yield f"video_md5 {r.md5}"


def write(hash_list: HashList, destination: Path | None, fmt: str = "jsonl") -> None:
    """Write atomically (temp file + rename): an interrupted run never leaves
    a half-written list where a good one was.  `destination=None` is stdout."""
    lines = {"jsonl": to_jsonl, "csv": to_csv, "te": to_threatexchange}[fmt](hash_list)
    if destination is None:
        import sys

        for line in lines:
            sys.stdout.write(line + "\n")
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".takeback-", suffix=".tmp", dir=destination.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for line in lines:
                fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # hashes are sensitive: owner-only, like a key file
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse(lines: Iterable[str]) -> HashList:
    """Read and validate a JSON Lines hash list; raises `HashListError`."""
    header: Header | None = None
    records: list[Record] = []
    errors: list[ErrorRecord] = []
    summary: Summary | None = None
    number = 0
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise HashListError(number, f"not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise HashListError(number, "expected a JSON object")
        try:
            if header is None:
                if data.get("format") != FORMAT_NAME:
                    raise HashListError(
                        number, f"not a takeback hash list (first line must have format={FORMAT_NAME!r})"
                    )
                header = Header.model_validate(data)
                if header.version > FORMAT_VERSION:
                    raise HashListError(
                        number, f"version {header.version} is newer than this takeback reads ({FORMAT_VERSION})"
                    )
                continue
            if summary is not None:
                raise HashListError(number, "content after the summary line")
            kind = data.get("type")
            if kind == "image":
                records.append(ImageRecord.model_validate(data))
            elif kind == "video":
                records.append(VideoRecord.model_validate(data))
            elif kind == "error":
                errors.append(ErrorRecord.model_validate(data))
            elif kind == "summary":
                summary = Summary.model_validate(data)
            else:
                raise HashListError(number, f"unknown record type {kind!r}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise HashListError(number, f"{where}: {first['msg']}") from None
    if header is None:
        raise HashListError(number, "empty file: no header line")
    if summary is None:
        raise HashListError(number, "no summary line: the list was cut short")
    return HashList(header=header, records=records, errors=errors, summary=summary)


def read(path: Path) -> HashList:
    with path.open(encoding="utf-8") as fh:
        return parse(fh)
