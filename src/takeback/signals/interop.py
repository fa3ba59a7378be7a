"""Hash lists in and out of a bank: the takeback formats and the layouts HMA / ThreatExchange tools exchange.

Reading is lenient line by line: a bad line is reported (line number, machine code, message) and the good lines are
kept, because a list of 100,000 hashes with one typo should not be refused whole.  Every value goes through
`signals.validate.canonical_value`, so an imported signal is exactly what the API would have accepted.

Formats read
- ``takeback``: the hash list `takeback hash` writes (`signals.hashlist`, "takeback-hashlist" v1) — an image record
  gives pdq (with its quality), md5 and sha256; a video record gives vpdq (its frames), video_md5 and video_sha256 —
  and the bank export below ("takeback-signals" v1).
- ``hma``: CSV as ThreatExchange's ``threatexchange dataset -P --csv`` writes it and HMA loads it, header
  ``signal_type,signal_str,collab,category,tags`` (any column order; ``signal_value``/``value``/``hash`` are accepted
  for ``signal_str``); HMA's header-less sample files (``hash,indicator_id,updated,tags``; the type follows from the
  hash length: 64 hex → pdq, 32 → md5); and ThreatExchange's text layout, one ``signal_type value`` per line.  A
  vpdq value is TE's JSON list of compact features ``"pdq_hex,quality,timestamp"``.

Formats written
- ``takeback`` ("takeback-signals" v1, JSON Lines): a header
  ``{"format": "takeback-signals", "version": 1, "bank": ..., "created": ..., "generator": ...}``, one
  ``{"type": "signal", "signal_type", "value", "quality"?, "note"?}`` per signal, and a trailer
  ``{"type": "summary", "signals": n}`` (without it the list was cut short).
- ``hma``: the CSV above, ``category`` POSITIVE_CLASS, ``collab`` the bank name.

CSV fields are bounded by Python's csv module (128 KiB per field, about 1,700 vPDQ frames); a longer line is
rejected with ``line_too_long`` rather than raising the process-wide limit.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError

from takeback.signals import hashlist
from takeback.signals.types import SignalType
from takeback.signals.validate import InvalidSignal, VpdqFrame, canonical_value, format_vpdq, parse_vpdq

SIGNALS_FORMAT = "takeback-signals"
SIGNALS_VERSION = 1
HMA_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
_VALUE_COLUMNS = ("signal_str", "signal_value", "value", "hash", "signal")
_TIMESTAMP_DIGITS = 3
MAX_NOTE_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class ImportedSignal:
    """One signal read from a list; `value` is canonical."""

    line: int
    signal_type: str
    value: str
    quality: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int
    code: str
    message: str


@dataclass(slots=True)
class ParsedList:
    format: str
    signals: list[ImportedSignal] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)


class ExportSignal(Protocol):
    """What the writers need of a stored signal (`takeback.store`'s StoredSignal has it)."""

    @property
    def signal_type(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def quality(self) -> int | None: ...
    @property
    def note(self) -> str | None: ...


# --- reading ------------------------------------------------------------------------------------------------------
def detect_format(text: str) -> str:
    """Return "takeback" when the first non-blank line is a JSON object, else "hma"."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff")
        if stripped:
            return "takeback" if stripped.startswith("{") else "hma"
    return "hma"


def read_signals(text: str, fmt: str = "auto") -> ParsedList:
    """Signals and rejected lines from a list's text; fmt is takeback, hma or auto."""
    if fmt == "auto":
        fmt = detect_format(text)
    lines = text.splitlines()
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    if fmt == "takeback":
        return read_takeback(lines)
    if fmt == "hma":
        return read_hma(lines)
    raise ValueError(f"unknown list format {fmt!r}")


def _add(result: ParsedList, line: int, kind: str, value: str, quality: int | None = None) -> None:
    try:
        stype, canonical = canonical_value(kind, value)
    except InvalidSignal as exc:
        result.rejected.append(RejectedLine(line, exc.code, exc.message))
        return
    result.signals.append(ImportedSignal(line, stype.value, canonical, quality))


def read_takeback(lines: Iterable[str]) -> ParsedList:
    """A takeback hash list or signal list; bad lines are rejected one by one, a missing trailer is reported."""
    result = ParsedList("takeback")
    kind: str | None = None
    finished = False
    number = 0
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            result.rejected.append(RejectedLine(number, "invalid_json", f"not JSON ({exc})"))
            continue
        if not isinstance(data, dict):
            result.rejected.append(RejectedLine(number, "invalid_record", "expected a JSON object"))
            continue
        if kind is None:
            kind = _header(result, number, data)
            if kind is None:
                return result
            continue
        if finished:
            result.rejected.append(RejectedLine(number, "invalid_record", "content after the summary line"))
            continue
        record_type = data.get("type")
        if record_type == "summary":
            finished = True
        elif kind == SIGNALS_FORMAT:
            _signal_record(result, number, data)
        else:
            _hashlist_record(result, number, data)
    if kind is None:
        result.rejected.append(RejectedLine(max(number, 1), "empty_list", "no header line: the list is empty"))
    elif not finished:
        result.rejected.append(
            RejectedLine(number + 1, "truncated", "no summary line: the list was cut short (lines read are kept)")
        )
    return result


def _header(result: ParsedList, number: int, data: dict) -> str | None:
    name = data.get("format")
    if name not in (hashlist.FORMAT_NAME, SIGNALS_FORMAT):
        result.rejected.append(
            RejectedLine(number, "not_a_hash_list", f"first line must have format {hashlist.FORMAT_NAME!r}")
        )
        return None
    version = data.get("version")
    newest = hashlist.FORMAT_VERSION if name == hashlist.FORMAT_NAME else SIGNALS_VERSION
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= newest:
        result.rejected.append(
            RejectedLine(number, "unsupported_version", f"version {version!r} is not one this takeback reads")
        )
        return None
    return str(name)


def _signal_record(result: ParsedList, number: int, data: dict) -> None:
    if data.get("type") != "signal":
        result.rejected.append(RejectedLine(number, "invalid_record", f"unknown record type {data.get('type')!r}"))
        return
    kind, value, quality, note = data.get("signal_type"), data.get("value"), data.get("quality"), data.get("note")
    if not isinstance(kind, str) or not isinstance(value, str):
        result.rejected.append(RejectedLine(number, "invalid_record", "signal_type and value must be strings"))
        return
    if quality is not None and (not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 100):
        result.rejected.append(RejectedLine(number, "invalid_record", "quality must be an integer 0-100"))
        return
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH or not _clean_text(note)):
        result.rejected.append(RejectedLine(number, "invalid_record", "note must be text of at most 1000 characters"))
        return
    try:
        stype, canonical = canonical_value(kind, value)
    except InvalidSignal as exc:
        result.rejected.append(RejectedLine(number, exc.code, exc.message))
        return
    result.signals.append(ImportedSignal(number, stype.value, canonical, quality, note))


def _hashlist_record(result: ParsedList, number: int, data: dict) -> None:
    record_type = data.get("type")
    try:
        if record_type == "image":
            image = hashlist.ImageRecord.model_validate(data)
            _add(result, number, SignalType.PDQ, image.pdq, image.quality)
            for _name, value, quality in image.variants or ():
                _add(result, number, SignalType.PDQ, value, quality)
            _add(result, number, SignalType.MD5, image.md5)
            _add(result, number, SignalType.SHA256, image.sha256)
        elif record_type == "video":
            video = hashlist.VideoRecord.model_validate(data)
            # Each variant frame list (a mirrored video, the picture inside its letterbox) is one more vPDQ signal.
            for rows in [video.frames, *(rows for _name, rows in video.variants or ())]:
                if rows:
                    _add(result, number, SignalType.VPDQ, format_vpdq([VpdqFrame(h, q, t) for _, t, q, h in rows]))
            _add(result, number, SignalType.VIDEO_MD5, video.md5)
            _add(result, number, SignalType.VIDEO_SHA256, video.sha256)
        elif record_type == "error":
            return  # a file that could not be hashed: nothing to import, nothing wrong with the list
        else:
            result.rejected.append(RejectedLine(number, "invalid_record", f"unknown record type {record_type!r}"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        result.rejected.append(RejectedLine(number, "invalid_record", f"{where}: {first['msg']}"))


def _te_vpdq(value: str) -> str:
    """TE's vpdq value (JSON list of "hex,quality,timestamp" strings) as the compact text parse_vpdq reads."""
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            return value
        if isinstance(items, list) and items and all(isinstance(i, str) for i in items):
            return " ".join(i.replace(" ", "") for i in items)
    return value


def _csv_row(line: str) -> list[str]:
    return next(csv.reader([line]))


def read_hma(lines: Iterable[str]) -> ParsedList:
    """HMA/ThreatExchange CSV (with header, or HMA's header-less sample layout) or TE `signal_type value` lines."""
    result = ParsedList("hma")
    columns: dict[str, int] | None = None
    layout: str | None = None  # "csv" (header), "sample" (header-less), "text"
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if layout is None:
            layout, columns = _hma_layout(line)
            if layout == "csv":
                if columns is None:
                    result.rejected.append(
                        RejectedLine(number, "missing_column", "the header needs signal_type and signal_str columns")
                    )
                    return result
                continue
        if layout == "text":
            kind, _, value = line.partition(" ")
            value = value.strip()
            if not value:
                result.rejected.append(RejectedLine(number, "invalid_record", "expected 'signal_type value'"))
                continue
            kind = kind.strip().lower()
            _add(result, number, kind, _te_vpdq(value) if kind == SignalType.VPDQ else value)
            continue
        try:
            row = _csv_row(line)
        except csv.Error as exc:
            code = "line_too_long" if "field larger" in str(exc) else "invalid_csv"
            result.rejected.append(RejectedLine(number, code, f"not a CSV row: {exc}"))
            continue
        if layout == "sample":
            value = row[0].strip()
            kind = SignalType.PDQ if len(value) == 64 else SignalType.MD5
            _add(result, number, kind, value)
            continue
        assert columns is not None
        if len(row) <= max(columns["signal_type"], columns["signal_str"]):
            result.rejected.append(RejectedLine(number, "invalid_record", "the row has too few columns"))
            continue
        kind = row[columns["signal_type"]].strip().lower()
        value = row[columns["signal_str"]]
        _add(result, number, kind, _te_vpdq(value) if kind == SignalType.VPDQ else value)
    return result


def _hma_layout(first: str) -> tuple[str, dict[str, int] | None]:
    try:
        row = [c.strip().lower() for c in _csv_row(first)]
    except csv.Error:
        row = []
    if "signal_type" in row:
        value_column = next((c for c in _VALUE_COLUMNS if c in row), None)
        if value_column is None:
            return "csv", None
        return "csv", {"signal_type": row.index("signal_type"), "signal_str": row.index(value_column)}
    if "," in first and " " not in first.split(",", 1)[0]:
        return "sample", None
    return "text", None


def _clean_text(text: str) -> bool:
    """No NUL and no lone surrogates: both break databases (PostgreSQL refuses them in text)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- writing ------------------------------------------------------------------------------------------------------
def write_takeback(signals: Iterable[ExportSignal], *, bank: str, generator: str = "takeback") -> Iterator[str]:
    """The "takeback-signals" JSON Lines export of a bank, one line per item (no newline)."""
    header = {
        "format": SIGNALS_FORMAT,
        "version": SIGNALS_VERSION,
        "bank": bank,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": generator,
    }
    yield json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    count = 0
    for signal in signals:
        record: dict[str, object] = {"type": "signal", "signal_type": signal.signal_type, "value": signal.value}
        if signal.quality is not None:
            record["quality"] = signal.quality
        if signal.note is not None:
            record["note"] = signal.note
        count += 1
        yield json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    yield json.dumps({"type": "summary", "signals": count}, separators=(",", ":"))


def te_value(signal_type: str, value: str) -> str:
    """A canonical value as ThreatExchange/HMA write it (vpdq: JSON list of compact frame features)."""
    if signal_type != SignalType.VPDQ:
        return value
    frames = parse_vpdq(value)
    return json.dumps(
        [f"{f.hash},{f.quality},{f.timestamp:.{_TIMESTAMP_DIGITS}}" for f in frames], separators=(",", ":")
    )


def write_hma_csv(signals: Iterable[ExportSignal], *, collab: str) -> Iterator[str]:
    """HMA/ThreatExchange CSV rows (header first), one string per row without the line ending."""
    buffer: list[str] = []

    class _Sink:
        def write(self, text: str) -> None:
            buffer.append(text)

    writer = csv.writer(_Sink(), lineterminator="")
    writer.writerow(HMA_COLUMNS)
    yield "".join(buffer)
    buffer.clear()
    for signal in signals:
        writer.writerow([signal.signal_type, te_value(signal.signal_type, signal.value), collab, "POSITIVE_CLASS", ""])
        yield "".join(buffer)
        buffer.clear()
