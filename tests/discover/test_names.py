"""Name matching: the labelled precision/recall set, each variant kind, the precision rules, and invariants."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from takeback.discover import variants
from takeback.discover.confusables import confusable_fold, decode_idn, skeleton
from takeback.discover.domains import InvalidDomain, clean_domain, split_domain
from takeback.discover.names import DEFAULT_THRESHOLD, InvalidName, NameHit, NameMatcher, typo_budget
from takeback.discover.variants import (
    LEET,
    fold,
    fold_confusable,
    fold_name,
    leet_spellings,
    name_forms,
    separator_spellings,
)

DATA = Path(__file__).parent / "data" / "names_labelled.csv"
MIA = NameMatcher([("Mia Khalifa", "name")])


def _idn(domain: str) -> str:
    return ".".join(p if p.isascii() else "xn--" + p.encode("punycode").decode() for p in domain.split("."))


def _run(matcher: NameMatcher, text: str, kind: str, threshold: int | None = None) -> list[NameHit]:
    if kind == "domain":
        return matcher.match_domain(text, threshold=threshold)
    if kind == "url":
        return matcher.match_url(text, threshold=threshold)
    return matcher.match_text(text, "title", threshold=threshold)


def _labelled() -> list[dict[str, str]]:
    with open(DATA, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _evaluate(threshold: int, *, holdout: bool | None = None) -> tuple[int, int, int, int, Counter[str], list[str]]:
    """Confusion counts on the labelled set (``holdout``: only the rows labelled before tuning, or only the others)."""
    matchers: dict[str, NameMatcher] = {}
    tp = fp = fn = tn = 0
    kinds: Counter[str] = Counter()
    wrong: list[str] = []
    for row in _labelled():
        if holdout is not None and row["note"].startswith("holdout:") != holdout:
            continue
        names = [tuple(part.rsplit(":", 1)) for part in row["names"].split("|")]
        matcher = matchers.setdefault(row["names"], NameMatcher(names))  # type: ignore[arg-type]
        hits = _run(matcher, row["text"], row["kind"], threshold)
        expected = row["expected"] == "yes"
        if hits and expected:
            tp += 1
            kinds[hits[0].match] += 1
        elif hits:
            fp += 1
            wrong.append(f"false positive: {row['text']} ({row['note']}): {hits[0]}")
        elif expected:
            fn += 1
            wrong.append(f"missed: {row['text']} ({row['note']})")
        else:
            tn += 1
    return tp, fp, fn, tn, kinds, wrong


def test_labelled_set_is_large_and_balanced() -> None:
    rows = _labelled()
    assert len(rows) >= 200
    assert {r["kind"] for r in rows} == {"domain", "url", "title"}
    labels = Counter(r["expected"] for r in rows)
    assert labels["yes"] >= 80 and labels["no"] >= 80


def test_precision_and_recall_at_the_operating_threshold() -> None:
    tp, fp, fn, _tn, kinds, wrong = _evaluate(DEFAULT_THRESHOLD)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.97 and recall >= 0.97, (precision, recall, wrong)
    # Every variant kind is exercised by at least one true positive in the set.
    assert {"exact", "separator", "translit", "confusable", "leet", "typo"} <= set(kinds), kinds


def test_precision_and_recall_on_the_holdout_rows() -> None:
    """45 rows written and labelled before the matcher ran on them; the two misses are the documented ones."""
    tp, fp, fn, _tn, _kinds, wrong = _evaluate(DEFAULT_THRESHOLD, holdout=True)
    assert tp + fn >= 25
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.95, wrong


def test_threshold_trades_precision_for_recall() -> None:
    """Lower thresholds let in initials and typos inside longer runs (false positives on the set)."""
    _, fp_low, _, _, _, _ = _evaluate(70)
    _, fp_default, fn_default, _, _, _ = _evaluate(DEFAULT_THRESHOLD)
    _, _, fn_high, _, _, _ = _evaluate(95)
    assert fp_low > fp_default
    assert fn_high > fn_default


@pytest.mark.parametrize(
    ("domain", "match", "score"),
    [
        ("mia-khalifa.com", "separator", 95),
        ("miakhalifa.net", "separator", 95),
        ("watchmiakhalifa.net", "separator", 85),
        ("khalifa-mia.com", "separator", 90),
        ("m1a-kh4l1fa.com", "leet", 88),
        ("rniakhalifa.com", "confusable", 90),
        (_idn("mіa-khalifa.com"), "confusable", 90),
        (_idn("миа-халифа.рф"), "translit", 90),
        ("miakhalfa.com", "typo", 85),
        ("maikhalifa.com", "typo", 85),
    ],
)
def test_variant_kinds_and_scores(domain: str, match: str, score: int) -> None:
    [hit] = MIA.match_domain(domain)
    assert (hit.match, hit.score, hit.name, hit.name_kind, hit.where) == (match, score, "Mia Khalifa", "name", "domain")


def test_exact_keeps_the_original_text() -> None:
    [hit] = MIA.match_text("Watch MÍA KHALIFA now", "title")
    assert (hit.match, hit.score, hit.matched, hit.where) == ("exact", 100, "MÍA KHALIFA", "title")
    assert hit.variant == "mia khalifa"
    [hit] = MIA.match_text("Ｍｉａ　Ｋｈａｌｉｆａ")
    assert hit.match == "exact" and hit.matched == "Ｍｉａ　Ｋｈａｌｉｆａ"


@pytest.mark.parametrize(
    "text",
    ["miami.com", "khalifa-street-cafe.com", "samia-khalifa.com", "khalifamiami.com", "miamikhalifa.com", "mia.com"],
)
def test_parts_of_the_name_and_other_people_do_not_match(text: str) -> None:
    assert MIA.match_domain(text) == []


def test_initials_only_below_the_default_threshold() -> None:
    assert MIA.match_domain("m-khalifa.com") == []
    [hit] = MIA.match_domain("m-khalifa.com", threshold=70)
    assert (hit.match, hit.score, hit.variant) == ("initials", 70, "m khalifa")


def test_single_word_alias_only_as_whole_word() -> None:
    matcher = NameMatcher([("Nastya", "alias")])
    assert [h.where for h in matcher.match_url("https://nastya.example.com/x")] == ["subdomain"]
    assert matcher.match_domain("nastyagirl.com") == []
    assert matcher.match_text("A nasty day") == []
    assert matcher.match_domain("nastyx.com") == []  # six letters: no typos


def test_usernames_embed_only_when_long() -> None:
    long, short = NameMatcher([("zoelindy", "username")]), NameMatcher([("jokim", "username")])
    assert long.match_domain("thezoelindy.com")[0].score == 90  # exact, minus 10 inside a longer run
    assert short.match_domain("jokimono.jp") == []
    assert short.match_domain("jokim.jp")[0].match == "exact"


def test_typo_budget_scales_with_length() -> None:
    assert [typo_budget(n) for n in (4, 8, 9, 13, 14, 30)] == [0, 0, 1, 1, 2, 2]
    long = NameMatcher([("Anastasia Petrova", "name")])
    assert long.match_domain("anastasiya-petrava.com")[0].match == "typo"  # one edit in each word
    assert long.match_domain("anastasia-petrovic.rs") == []  # two edits in one word: another person
    hernandez = NameMatcher([("Sofía Hernández", "name")])
    assert hernandez.match_domain("sofia-hernandes.com")[0].match == "typo"
    assert hernandez.match_domain("sofia-fernandez.com") == []  # a word's first letter is never a typo
    assert MIA.match_domain("niakhalifa.com") == []


def test_match_url_parts_and_title() -> None:
    hits = MIA.match_url("https://mia-khalifa.example.com/videos/mia_khalifa?q=Mia+Khalifa", title="Mia Khalifa")
    assert sorted(h.where for h in hits) == ["path", "query", "subdomain", "title"]
    assert MIA.match_url("https://203.0.113.9/mia-khalifa")[0].where == "path"
    assert MIA.match_url("not a url at all") == []
    assert MIA.match_url("http://[::1/mia-khalifa") == []  # unparseable: no hit, no exception


def test_domain_crossing_into_part_of_the_registrable_label() -> None:
    assert MIA.match_domain("mia.khalifa-bank.com") == []
    assert MIA.match_domain("mia.khalifa.com")[0].where == "domain"
    assert MIA.match_domain("mia-khalifa.shop.example.com")[0].where == "subdomain"


def test_suffix_is_never_matched() -> None:
    matcher = NameMatcher([("Co Uk", "name")])
    assert matcher.match_domain("example.co.uk") == []


@pytest.mark.parametrize("position", [0, 3000, 3890, 3900, 3990, 4090, 7800, 8000, 12000])
def test_long_text_is_chunked_and_still_found(position: int) -> None:
    filler = "lorem ipsum dolor " * 800
    text = filler[:position] + " Mia Khalifa " + filler[position:]
    [hit] = MIA.match_text(text)
    assert hit.matched == "Mia Khalifa"


@pytest.mark.parametrize("position", range(3600, 4200, 7))
def test_chunk_edges_never_cut_a_word_into_a_hit(position: int) -> None:
    filler = "x" * 12000
    assert MIA.match_text(filler[:position] + "samia khalifah" + filler[position:]) == []


def test_bad_names_and_domains_raise_named_errors() -> None:
    with pytest.raises(InvalidName):
        NameMatcher([("!!!", "name")])
    with pytest.raises(InvalidName):
        NameMatcher([("Mia", "nickname")])
    with pytest.raises(InvalidName):
        NameMatcher([("x" * 500, "name")])
    for bad in ("", "bad domain.com", "a" * 70 + ".com", "-x.com", ("a." * 130) + "com"):
        with pytest.raises(InvalidDomain):
            MIA.match_domain(bad)


def test_matcher_accepts_stored_case_names() -> None:
    class Stored:
        def __init__(self, value: str, kind: str) -> None:
            self.value, self.kind = value, kind

    matcher = NameMatcher([Stored("Mia Khalifa", "name")])
    assert matcher.names == [("Mia Khalifa", "name")]


# --- variants and folding ---------------------------------------------------------------------------------------


def test_fold_maps_back_to_the_original() -> None:
    folded = fold("Mía–Khalífa_ШЕВ")
    assert folded.text == "mia khalifa shev"
    start = folded.text.index("khalifa")
    assert folded.original(start, start + len("khalifa")) == "Khalífa"
    assert folded.original(folded.text.index("shev"), len(folded.text)) == "ШЕВ"


def test_name_forms_and_spellings() -> None:
    tokens = fold_name("Mia Khalifa")
    assert [f.label for f in name_forms(tokens)] == ["mia khalifa", "khalifa mia", "m khalifa"]
    assert [f.form for f in name_forms(("anna", "maria", "lee"))] == ["name", "short", "reversed"]
    assert separator_spellings(tokens) == ["miakhalifa", "mia-khalifa", "mia_khalifa", "mia.khalifa", "mia khalifa"]
    spellings = list(leet_spellings("mia", limit=100))
    assert "m1a" in spellings and "mi4" in spellings and "mia" not in spellings


def test_skeleton_follows_tr39() -> None:
    assert skeleton("𝔭𝒶ỿ𝕡𝕒ℓ") == "paypal"
    assert skeleton("раураl") == skeleton("paypal")  # Cyrillic р а у
    assert skeleton("pay\u200bpal") == skeleton("paypal")  # default-ignorable dropped
    assert skeleton("m") == "rn"
    assert confusable_fold("К") == confusable_fold("к") == "k"
    assert confusable_fold("I") == confusable_fold("1") == confusable_fold("i") == "i"


def test_idn_decoding() -> None:
    assert decode_idn("xn--mia-khalifa-usb.com") != "xn--mia-khalifa-usb.com"
    assert decode_idn(_idn("zoë-lindqvist.se")) == "zoë-lindqvist.se"
    assert decode_idn("xn--zz-bogus-!!.com") == "xn--zz-bogus-!!.com"  # not punycode: unchanged
    assert split_domain(_idn("миахалифа.рф")).registrable == "миахалифа"
    assert clean_domain("*.Mia-Khalifa.COM.") == "mia-khalifa.com"


# --- invariants -------------------------------------------------------------------------------------------------

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=9)
_VOWEL_MARKS = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü"}


@settings(max_examples=150, deadline=None)
@given(first=_words, last=_words, sep=st.sampled_from(["", "-", "_", ".", " "]), data=st.data())
def test_every_separator_case_and_accent_variant_matches(first: str, last: str, sep: str, data: st.DataObject) -> None:
    matcher = NameMatcher([(f"{first} {last}", "name")])
    text = sep.join((first, last))
    flags = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    accents = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    varied = "".join(
        (_VOWEL_MARKS.get(c, c) if accent else c).upper() if upper else (_VOWEL_MARKS.get(c, c) if accent else c)
        for c, upper, accent in zip(text, flags, accents, strict=True)
    )
    hits = matcher.match_text(f"see {varied} here")
    assert hits and hits[0].score >= DEFAULT_THRESHOLD
    assert hits[0].match in {"exact", "separator"}


@settings(max_examples=150, deadline=None)
@given(first=_words, last=_words, data=st.data())
def test_every_leet_variant_matches(first: str, last: str, data: st.DataObject) -> None:
    matcher = NameMatcher([(f"{first} {last}", "name")])
    text = f"{first}-{last}"
    swapped = "".join(
        data.draw(st.sampled_from([c, *LEET[c]])) if c in LEET else c for c in text
    )
    hits = matcher.match_text(f"x {swapped} y")
    assert hits and hits[0].score >= DEFAULT_THRESHOLD


_texty = st.text(
    alphabet=st.sampled_from(list("miakhlfzoe -_.1!4@0МиаКхалифаіαοéÍ\u200bｍ")), min_size=0, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(text=_texty)
def test_fold_is_idempotent_and_matching_survives_it(text: str) -> None:
    folded = fold(text).text
    assert fold(folded).text == folded
    matcher = NameMatcher([("Mia Khalifa", "name"), ("Zoe", "alias")])
    before = {h.name for h in matcher.match_text(text) if h.match != "confusable"}
    after = {h.name for h in matcher.match_text(folded)}
    assert before <= after


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_fast_path_equals_the_per_character_fold(text: str) -> None:
    for fast, char_fold in ((fold(text), variants._fold_char), (fold_confusable(text), variants._fold_confusable_char)):
        slow = variants._fold_with(text, char_fold)
        assert (fast.text, fast.origin) == (slow.text, slow.origin)
        for start in range(len(fast.text)):
            assert fast.original(start, start + 1) in text


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_is_safe(text: str) -> None:
    for hit in MIA.match_text(text, threshold=0):
        assert 0 <= hit.score <= 100 and hit.matched
    MIA.match_url(text, title=text, threshold=0)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_skeleton_is_idempotent(text: str) -> None:
    assume("\x00" not in text)
    assert skeleton(skeleton(text)) == skeleton(text)
