"""Hash lists in and out of banks: takeback hash lists, takeback signal lists, HMA/ThreatExchange CSV and text."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.protect.report import to_hash_list
from takeback.protect.results import FileResult, Frame, Status
from takeback.signals import hashlist, interop
from takeback.signals.validate import canonical_value

PDQ = "f" * 16 + "0" * 48
MD5 = "a" * 32
SHA = "b" * 64


@dataclass(frozen=True)
class Sig:
    signal_type: str
    value: str
    quality: int | None = None
    note: str | None = None


def _vpdq(*hashes: str) -> str:
    return canonical_value(
        "vpdq", json.dumps([{"hash": h, "quality": 90, "timestamp": i} for i, h in enumerate(hashes)])
    )[1]


def _results() -> list[FileResult]:
    image = FileResult(
        path="a.jpg", status=Status.HASHED, kind="image", md5=MD5, sha256=SHA, size=3, pdq=PDQ, quality=77
    )
    video = FileResult(
        path="b.mp4",
        status=Status.HASHED,
        kind="video",
        md5="c" * 32,
        sha256="d" * 64,
        size=9,
        duration=2.0,
        fps=30.0,
        frames=[Frame(0, 0.0, 90, "1" * 64), Frame(30, 1.0, 40, "2" * 64)],
    )
    failed = FileResult(path="c", status=Status.FAILED, error_code="corrupt", reason="bad")
    return [image, video, failed]


def test_hash_list_import() -> None:
    lines = list(hashlist.to_jsonl(to_hash_list(_results())))
    parsed = interop.read_signals("\n".join(lines))
    assert parsed.format == "takeback"
    assert parsed.rejected == []
    got = [(s.signal_type, s.quality) for s in parsed.signals]
    assert got == [
        ("pdq", 77),
        ("md5", None),
        ("sha256", None),
        ("vpdq", None),
        ("video_md5", None),
        ("video_sha256", None),
    ]
    frames = json.loads(parsed.signals[3].value)
    assert [(f["hash"], f["quality"], f["timestamp"]) for f in frames] == [("1" * 64, 90, 0.0), ("2" * 64, 40, 1.0)]
    assert {s.line for s in parsed.signals} == {2, 3}


def test_hash_list_bad_lines_reported_good_kept() -> None:
    lines = list(hashlist.to_jsonl(to_hash_list(_results())))
    image = json.loads(lines[1])
    bad_pdq = dict(image, pdq="zz" * 32)
    lines[1:1] = ["{not json", json.dumps(bad_pdq), "[1]", json.dumps({"type": "movie"})]
    lines.pop()  # no summary: cut short
    parsed = interop.read_signals("\n".join(lines), "takeback")
    assert [(r.line, r.code) for r in parsed.rejected] == [
        (2, "invalid_json"),
        (3, "invalid_record"),
        (4, "invalid_record"),
        (5, "invalid_record"),
        (9, "truncated"),
    ]
    assert len(parsed.signals) == 6


def test_newer_version_and_foreign_files_refused_whole() -> None:
    header = {"format": "takeback-hashlist", "version": 99, "generator": "x", "created": "x", "names": False}
    parsed = interop.read_signals(json.dumps(header) + "\n" + json.dumps({"type": "image"}))
    assert [r.code for r in parsed.rejected] == ["unsupported_version"]
    assert interop.read_signals('{"hello": 1}').rejected[0].code == "not_a_hash_list"
    assert interop.read_takeback([]).rejected[0].code == "empty_list"


def test_signal_list_round_trip() -> None:
    signals = [
        Sig("pdq", PDQ, 80, "front"),
        Sig("md5", MD5),
        Sig("vpdq", _vpdq("3" * 64, "4" * 64)),
        Sig("sha256", SHA),
    ]
    text = "\n".join(interop.write_takeback(signals, bank="case-1"))
    header = json.loads(text.splitlines()[0])
    assert header["format"] == "takeback-signals" and header["bank"] == "case-1"
    parsed = interop.read_signals(text)
    assert parsed.rejected == []
    assert [Sig(s.signal_type, s.value, s.quality, s.note) for s in parsed.signals] == signals


def test_signal_list_bad_records() -> None:
    lines = list(interop.write_takeback([], bank="b"))
    lines[1:1] = [
        json.dumps({"type": "signal", "signal_type": "pdq", "value": "12"}),
        json.dumps({"type": "signal", "signal_type": "nope", "value": PDQ}),
        json.dumps({"type": "signal", "signal_type": "pdq", "value": PDQ, "quality": 101}),
        json.dumps({"type": "signal", "signal_type": "pdq", "value": PDQ, "note": "a\x00b"}),
        json.dumps({"type": "signal", "signal_type": "pdq", "value": 5}),
        json.dumps({"type": "signal", "signal_type": "pdq", "value": PDQ.upper()}),
    ]
    parsed = interop.read_signals("\n".join(lines))
    assert [(r.line, r.code) for r in parsed.rejected] == [
        (2, "wrong_length"),
        (3, "unknown_signal_type"),
        (4, "invalid_record"),
        (5, "invalid_record"),
        (6, "invalid_record"),
    ]
    assert [s.value for s in parsed.signals] == [PDQ]


def test_hma_csv_round_trip() -> None:
    signals = [Sig("pdq", PDQ), Sig("md5", MD5), Sig("video_md5", "e" * 32), Sig("vpdq", _vpdq("5" * 64, "6" * 64))]
    rows = list(interop.write_hma_csv(signals, collab="case-1"))
    assert rows[0] == "signal_type,signal_str,collab,category,tags"
    assert rows[1] == f"pdq,{PDQ},case-1,POSITIVE_CLASS,"
    vpdq_row = next(r for r in rows if r.startswith("vpdq"))
    assert json.loads(next(__import__("csv").reader([vpdq_row]))[1]) == [f"{'5' * 64},90,0.0", f"{'6' * 64},90,1.0"]
    parsed = interop.read_signals("\r\n".join(rows))
    assert parsed.format == "hma" and parsed.rejected == []
    assert [(s.signal_type, s.value) for s in parsed.signals] == [(s.signal_type, s.value) for s in signals]


def test_hma_csv_other_column_orders_and_bad_rows() -> None:
    text = "\n".join(
        [
            "\ufeffcollab,Signal_Value,signal_type,tags",
            f"x,{PDQ.upper()},PDQ,a b",
            "x,abc,pdq,",
            f"x,{MD5},sha1,",
            "x,only",
            f'x,"{MD5}",md5,',
        ]
    )
    parsed = interop.read_signals(text, "hma")
    assert [(r.line, r.code) for r in parsed.rejected] == [
        (3, "wrong_length"),
        (4, "unknown_signal_type"),
        (5, "invalid_record"),
    ]
    assert [(s.signal_type, s.value) for s in parsed.signals] == [("pdq", PDQ), ("md5", MD5)]
    assert interop.read_signals("signal_type,whatever\npdq,x").rejected[0].code == "missing_column"


def test_hma_headerless_sample_and_te_text() -> None:
    sample = f"{PDQ},2880742865368386,2020-07-31T18:47:52+0000,media_type_photo\n{MD5},1,2020,tag\n"
    parsed = interop.read_signals(sample)
    assert [(s.signal_type, s.value) for s in parsed.signals] == [("pdq", PDQ), ("md5", MD5)]
    te = "\n".join(hashlist.to_threatexchange(to_hash_list(_results())))
    parsed = interop.read_signals(te)
    assert parsed.rejected == []
    assert [s.signal_type for s in parsed.signals] == ["pdq", "md5", "vpdq", "video_md5"]
    assert [f["hash"] for f in json.loads(parsed.signals[2].value)] == ["1" * 64, "2" * 64]
    bad = interop.read_signals("pdq\n# comment\npdq 123\n")
    assert [(r.line, r.code) for r in bad.rejected] == [(1, "invalid_record"), (3, "wrong_length")]


def test_overlong_csv_field_is_a_rejected_line() -> None:
    parsed = interop.read_signals('signal_type,signal_str\nvpdq,"' + "a" * 200_000 + '"\n')
    assert parsed.rejected[0].code == "line_too_long"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["auto", "takeback", "hma"]))
def test_arbitrary_text_never_raises(text: str, fmt: str) -> None:
    parsed = interop.read_signals(text, fmt)
    for s in parsed.signals:
        assert canonical_value(s.signal_type, s.value)[1] == s.value
