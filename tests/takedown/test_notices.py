"""Notice models and templates: incomplete notices are refused with every missing element named; the text cites the
law; user text can neither inject e-mail headers nor template code; no media, only URLs and hashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.takedown.deadlines import add_months
from takeback.takedown.notices import (
    BASES,
    EXPLANATIONS,
    NOTICE_TYPES,
    IncompleteNotice,
    InvalidNotice,
    build_notice,
)
from takeback.takedown.render import render_notice

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SENDER = {"name": "Jane Doe", "email": "jane@example.org", "postal_address": "1 Main St, Springfield"}
COMPLETE: dict[str, dict[str, Any]] = {
    "dmca": {"signature": "/s/ Jane Doe", "work": "A photo I took of myself in 2024", "sender": SENDER,
             "good_faith": True, "accuracy_under_penalty_of_perjury": True},
    "takeitdown": {"signature": "/s/ Jane Doe", "sender": SENDER, "good_faith_not_consensual": True},
    "gdpr": {"sender": SENDER, "grounds": ["d", "b"]},
    "dsa": {"sender": SENDER, "explanation": "Non-consensual intimate imagery, a crime under national law.",
            "bona_fide": True},
    "delisting": {"sender": SENDER, "explanation": "Intimate images of me shared without consent.", "good_faith": True,
                  "queries": ["Jane Doe"]},
    "abuse": {"sender": SENDER, "explanation": "The domain impersonates me.", "good_faith": True},
}
MATERIALS = [
    {"url": "https://bad.example/a.jpg", "sha256": "ab" * 32},
    {"url": "https://bad.example/b", "pdq": "0f" * 32},
]
CITES = {
    "dmca": ["§512(c)(3)(A)(i)", "§512(c)(3)(A)(vi)", "under penalty of perjury"],
    "takeitdown": ["TAKE IT DOWN Act", "48 hours", "known identical copies", "§3(a)(1)(B)(iii)"],
    "gdpr": ["Article 17(1)", "Article 17(2)", "Article 12(3)", "within one month", "(d) the personal data have been"],
    "dsa": ["Article 16(2)(a)", "Article 16(2)(d)", "bona fide"],
    "delisting": ["Jane Doe", "search results"],
    "abuse": ["§3.18"],
}


def full(basis: str, **extra: Any) -> dict[str, Any]:
    return {**COMPLETE[basis], "materials": MATERIALS, **extra}


@pytest.mark.parametrize("basis", BASES)
def test_complete_notices_render_with_their_legal_elements(basis: str) -> None:
    notice = build_notice(basis, full(basis))
    rendered = render_notice(notice, reference="TB-1-ABC", now=NOW)
    for phrase in CITES[basis]:
        assert phrase in rendered.text, phrase
    assert "https://bad.example/a.jpg" in rendered.text and "ab" * 32 in rendered.text and "0f" * 32 in rendered.text
    assert "No media are attached" in rendered.text and "TB-1-ABC" in rendered.subject
    data = json.loads(rendered.json_text)
    assert data["basis"] == basis and data["media_attached"] is False and data["reference"] == "TB-1-ABC"
    assert [m["url"] for m in data["notice"]["materials"]] == [m["url"] for m in MATERIALS]
    assert basis in EXPLANATIONS


@pytest.mark.parametrize("basis", BASES)
def test_an_empty_notice_names_every_required_element(basis: str) -> None:
    with pytest.raises(IncompleteNotice) as info:
        build_notice(basis, {})
    required = [e.field for e in NOTICE_TYPES[basis].ELEMENTS]
    assert info.value.fields == required
    for element in NOTICE_TYPES[basis].ELEMENTS:
        assert element.label in str(info.value) and element.citation in str(info.value)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_exactly_the_removed_elements_are_reported(data: st.DataObject) -> None:
    basis = data.draw(st.sampled_from(BASES))
    elements = NOTICE_TYPES[basis].ELEMENTS
    removed = data.draw(st.sets(st.sampled_from([e.field for e in elements]), min_size=1))
    values = full(basis, sender={**SENDER})
    for dotted in removed:
        for path in dotted.split("|"):
            target = values
            *parents, leaf = path.split(".")
            for part in parents:
                target = target[part]
            # Absent, empty, whitespace or False all count as missing.
            target[leaf] = data.draw(st.sampled_from(["", "   ", None, False, []]))
    with pytest.raises(IncompleteNotice) as info:
        build_notice(basis, values)
    assert set(info.value.fields) == removed


def test_dmca_contact_may_be_a_telephone_instead_of_an_address() -> None:
    build_notice("dmca", full("dmca", sender={"name": "J", "email": "j@example.org", "phone": "+1 555 0100"}))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"sender": {**SENDER, "email": "jane at example"}}, "sender.email"),
        ({"materials": [{"url": "javascript:alert(1)"}]}, "materials.0.url"),
        ({"materials": [{"url": "https://x.example/a b"}]}, "materials.0.url"),
        ({"materials": [{"url": "https://x.example/", "sha256": "zz" * 32}]}, "materials.0.sha256"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"grounds": ["z"]}, "grounds"),
    ],
)
def test_malformed_elements_are_refused_by_name(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidNotice) as info:
        build_notice("gdpr", full("gdpr", **change))
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_unknown_basis() -> None:
    with pytest.raises(InvalidNotice, match="unknown basis"):
        build_notice("magic", {})


def test_user_text_cannot_inject_headers_or_template_code() -> None:
    values = full(
        "dsa",
        sender={**SENDER, "name": "Jane\r\nBcc: victim@example.org"},
        explanation="{{ 7*7 }} {% for x in range(3) %}loop{% endfor %} {{ ''.__class__.__mro__ }}",
        signature="/s/ Jane\nSubject: hijack",
    )
    notice = build_notice("dsa", values)
    assert notice.sender.name == "Jane Bcc: victim@example.org" and "\n" not in notice.signature
    text = render_notice(notice, reference="TB-1-X", now=NOW).text
    assert "{{ 7*7 }}" in text and "49" not in text and "looploop" not in text and "__mro__" in text
    assert "\nBcc:" not in text and "\nSubject:" not in text


def test_one_notice_covers_many_urls_without_duplicates() -> None:
    urls = [{"url": f"https://bad.example/{i % 30}"} for i in range(60)]
    notice = build_notice("takeitdown", {**COMPLETE["takeitdown"], "materials": urls})
    assert len(notice.materials) == 30
    with pytest.raises(InvalidNotice):
        build_notice("takeitdown", {**COMPLETE["takeitdown"], "materials": [{"url": f"https://x/{i}"} for i in
                                                                              range(501)]})


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (datetime(2026, 1, 31, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, tzinfo=UTC), datetime(2028, 2, 29, 9, tzinfo=UTC)),
        (datetime(2026, 12, 15, 9, tzinfo=UTC), datetime(2027, 1, 15, 9, tzinfo=UTC)),
    ],
)
def test_gdpr_month(start: datetime, expected: datetime) -> None:
    assert add_months(start, 1) == expected
