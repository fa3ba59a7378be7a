"""Turn a batch's per-file results into a hash list (names only on request)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from takeback import __version__
from takeback.protect.results import FileResult, Status
from takeback.signals.hashlist import (
    FORMAT_NAME,
    ErrorRecord,
    HashList,
    Header,
    ImageRecord,
    Record,
    Summary,
    VideoRecord,
    version_for,
)


def to_hash_list(
    results: Iterable[FileResult], keep_names: bool = False, options: dict[str, Any] | None = None
) -> HashList:
    """Turn batch results into a hash list (skipped files are only counted)."""
    records: list[Record] = []
    errors: list[ErrorRecord] = []
    skipped = 0
    for r in results:
        name = r.path if keep_names else None
        if r.status is Status.SKIPPED:
            skipped += 1
        elif r.status is Status.FAILED:
            errors.append(
                ErrorRecord(type="error", code=r.error_code or "error", reason=r.reason or "", kind=r.kind, name=name)
            )
        elif r.kind == "image":
            records.append(
                ImageRecord(
                    type="image",
                    md5=r.md5 or "",
                    sha256=r.sha256 or "",
                    size=r.size or 0,
                    pdq=r.pdq or "",
                    quality=r.quality or 0,
                    name=name,
                    variants=[(n, h, q) for n, h, q in r.variants] or None,
                )
            )
        else:
            records.append(
                VideoRecord(
                    type="video",
                    md5=r.md5 or "",
                    sha256=r.sha256 or "",
                    size=r.size or 0,
                    duration=r.duration or 0.0,
                    fps=r.fps or 0.0,
                    frames=[(f.frame_number, f.timestamp, f.quality, f.pdq) for f in r.frames],
                    name=name,
                    warning=r.warning,
                    variants=[(n, [tuple(row) for row in rows]) for n, rows in r.video_variants] or None,  # type: ignore[misc]
                )
            )
    header = Header(
        format=FORMAT_NAME,
        version=version_for(records),
        generator=f"takeback {__version__}",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        names=keep_names,
        options=options or {},
    )
    summary = Summary(
        type="summary",
        hashed=len(records),
        failed=len(errors),
        skipped=skipped,
        images=sum(1 for r in records if r.type == "image"),
        videos=sum(1 for r in records if r.type == "video"),
    )
    return HashList(header=header, records=records, errors=errors, summary=summary)
