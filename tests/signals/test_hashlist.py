"""The hash-list format: round trips, validation, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.protect.report import to_hash_list
from takeback.protect.results import FileResult, Frame, Status
from takeback.signals import hashlist

hex32 = st.binary(min_size=16, max_size=16).map(bytes.hex)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
names = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)

image_results = st.builds(
    lambda path, md5, sha, size, pdq, q: FileResult(
        path=path, status=Status.HASHED, kind="image", md5=md5, sha256=sha, size=size, pdq=pdq, quality=q
    ),
    names,
    hex32,
    hex64,
    st.integers(0, 2**40),
    hex64,
    st.integers(0, 100),
)
frames = st.lists(
    st.builds(Frame, st.integers(0, 10**6), st.floats(0, 1e5, allow_nan=False), st.integers(0, 100), hex64),
    max_size=5,
)
video_results = st.builds(
    lambda path, md5, sha, fr, dur: FileResult(
        path=path, status=Status.HASHED, kind="video", md5=md5, sha256=sha, size=1, duration=dur, fps=30.0, frames=fr
    ),
    names,
    hex32,
    hex64,
    frames,
    st.floats(0, 1e5, allow_nan=False),
)
failed_results = st.builds(
    lambda path, code, reason: FileResult(path=path, status=Status.FAILED, error_code=code, reason=reason),
    names,
    st.sampled_from(["corrupt", "empty-file", "unreadable"]),
    st.text(max_size=80),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(image_results, video_results, failed_results), max_size=8), st.booleans())
def test_round_trip(results: list[FileResult], keep_names: bool) -> None:
    listing = to_hash_list(results, keep_names=keep_names)
    lines = list(hashlist.to_jsonl(listing))
    again = hashlist.parse(lines)
    assert again == listing
    assert again.summary.hashed + again.summary.failed == len(results)
    if not keep_names:
        assert all("name" not in json.loads(line) for line in lines)


def test_names_only_with_keep_names() -> None:
    result = _image_result("/home/jane/private/me.jpg")
    hidden = "\n".join(hashlist.to_jsonl(to_hash_list([result])))
    assert "jane" not in hidden
    shown = "\n".join(hashlist.to_jsonl(to_hash_list([result], keep_names=True)))
    assert "/home/jane/private/me.jpg" in shown


def _image_result(path: str = "a") -> FileResult:
    return FileResult(
        path=path, status=Status.HASHED, kind="image", md5="a" * 32, sha256="b" * 64, size=1, pdq="c" * 64, quality=80
    )


def _video_result(path: str = "b") -> FileResult:
    return FileResult(
        path=path,
        status=Status.HASHED,
        kind="video",
        md5="d" * 32,
        sha256="e" * 64,
        size=1,
        duration=2.0,
        fps=30.0,
        frames=[Frame(0, 0.0, 100, "1" * 64), Frame(30, 1.0, 90, "2" * 64)],
    )


def _valid_lines() -> list[str]:
    return list(hashlist.to_jsonl(to_hash_list([_image_result()])))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: lines[:-1], "cut short"),
        (lambda lines: [], "no header"),
        (lambda lines: ["{not json", *lines[1:]], "not JSON"),
        (lambda lines: [lines[0], lines[1].replace('"c', '"z'), lines[2]], "pdq"),
        (lambda lines: [lines[0].replace('"version":1', '"version":99'), *lines[1:]], "newer"),
        (lambda lines: [lines[0], '{"type":"mystery"}', lines[2]], "unknown record type"),
        (lambda lines: [*lines, lines[1]], "after the summary"),
        (lambda lines: ['{"format":"other"}', *lines[1:]], "not a takeback hash list"),
    ],
)
def test_invalid_lists_name_the_line(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(hashlist.HashListError) as info:
        hashlist.parse(mutate(_valid_lines()))
    assert message in str(info.value)


def test_threatexchange_export() -> None:
    results = [
        _image_result(),
        _video_result(),
    ]
    lines = list(hashlist.to_threatexchange(to_hash_list(results)))
    assert lines[0] == "pdq " + "c" * 64
    assert lines[1] == "md5 " + "a" * 32
    signal_type, value = lines[2].split(" ", 1)
    assert signal_type == "vpdq"
    assert json.loads(value) == ["1" * 64 + ",100,0.0", "2" * 64 + ",90,1.0"]
    assert lines[3] == "video_md5 " + "d" * 32


def test_csv_export_has_header_and_a_row_per_frame() -> None:
    results = [
        _video_result(),
        FileResult(path="c", status=Status.FAILED, error_code="corrupt", reason="bad, really"),
    ]
    rows = list(hashlist.to_csv(to_hash_list(results)))
    assert rows[0].startswith("type,md5,sha256")
    assert len(rows) == 4
    assert rows[3].endswith('"corrupt: bad, really"')


def test_write_is_atomic_and_private(tmp_path: Path) -> None:
    target = tmp_path / "out" / "list.jsonl"
    hashlist.write(hashlist.parse(_valid_lines()), target)
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert hashlist.read(target).summary.hashed == 1
    assert [p.name for p in target.parent.iterdir()] == ["list.jsonl"]
