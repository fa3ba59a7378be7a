"""The plain-text PDF writer: a strict parser reads it back, every line is there, pages break, odd text survives."""

from __future__ import annotations

import io

import pypdf
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.takedown.pdf import COLUMNS, LINES_PER_PAGE, text_to_pdf


def read(data: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_pages_and_wrapping() -> None:
    lines = [f"line {i:04d}" for i in range(LINES_PER_PAGE * 2 + 5)]
    pages, text = read(text_to_pdf("\n".join(lines) + "\n" + "w" * (COLUMNS * 2 + 3), title="case 7"))
    assert pages == 3
    for line in lines:
        assert line in text
    assert "w" * COLUMNS in text and "page 3/3" in text and "case 7" in text


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300))
def test_any_text_makes_a_valid_pdf(text: str) -> None:
    pages, extracted = read(text_to_pdf(text, title=text[:20]))
    assert pages >= 1
    for word in text.split():
        if word.isascii() and word.isprintable() and len(word) < COLUMNS:
            assert word in extracted, word


def test_empty() -> None:
    assert read(text_to_pdf(""))[0] == 1
