"""Name normalisation and the variants of a name that sites, usernames and domains use.

Why per character: a hit must point back at the exact text that matched (the evidence in a notice quotes it), so
every folded character remembers which original character it came from.  Folding is case folding, compatibility
normalisation (full-width and styled letters), accent stripping, then transliteration of other scripts to ASCII
with ``anyascii`` (ISC licence; ``Unidecode`` is GPL).  Every other character becomes one separator (a space), so
``mia-khalifa``, ``mia_khalifa``, ``mia.khalifa`` and ``Mia Khalifa`` all fold to ``mia khalifa``; leetspeak
symbols (``@ $ ! | +``) are kept because they stand for letters.

Everything here is pure: no database, no network, no global state beyond per-character caches.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

from anyascii import anyascii

from takeback.discover.confusables import confusable_fold

__all__ = [
    "LEET",
    "LEET_SYMBOLS",
    "SEPARATORS",
    "Folded",
    "NameForm",
    "fold",
    "fold_confusable",
    "fold_name",
    "leet_spellings",
    "name_forms",
    "separator_spellings",
]

#: Letters and the digits/symbols that stand for them in leetspeak (as folded text carries them).
LEET: dict[str, str] = {
    "a": "4@",
    "b": "8",
    "e": "3",
    "g": "69",
    "i": "1!|",
    "l": "1|",
    "o": "0",
    "s": "5$",
    "t": "7+",
    "z": "2",
}
#: Symbols that survive folding because leetspeak uses them as letters.
LEET_SYMBOLS = frozenset("@$!|+")
#: How people glue the words of a name together in usernames, URLs and domains.
SEPARATORS = ("", "-", "_", ".", " ")
_SEP = " "
_RUNS = re.compile(" {2,}")


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded string and, for each of its characters, the index of the original character it came from.

    ASCII input (most domains) is folded with a translation table and its ``origin`` is worked out only when
    asked for, i.e. only for the rare text that matched."""

    source: str
    text: str
    known_origin: tuple[int, ...] | None = None
    fold_char: Callable[[str], str] | None = None

    @property
    def origin(self) -> tuple[int, ...]:
        if self.known_origin is not None:
            return self.known_origin
        assert self.fold_char is not None
        return _fold_with(self.source, self.fold_char).origin

    def original(self, start: int, end: int) -> str:
        """The original text behind ``text[start:end]``."""
        if start >= end:
            return ""
        origin = self.origin
        return self.source[origin[start] : origin[end - 1] + 1]


def _strip_marks(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    if char in LEET_SYMBOLS:
        return char
    folded = _strip_marks(char).casefold()
    if not folded.isascii():
        folded = anyascii(folded).lower()
    return "".join(c if c.isalnum() and c.isascii() else _SEP for c in folded)


def _fold_with(text: str, fold_char: Callable[[str], str]) -> Folded:
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        piece = fold_char(char)
        for c in piece:
            if c == _SEP and (not out or out[-1] == _SEP):
                continue  # one separator for a run of them, none at the start
            out.append(c)
            origin.append(index)
    if out and out[-1] == _SEP:
        out.pop()
        origin.pop()
    return Folded(text, "".join(out), tuple(origin), fold_char)


@cache
def _ascii_table(fold_char: Callable[[str], str]) -> dict[int, str]:
    return {i: fold_char(chr(i)) for i in range(128)}


def _fold_ascii(text: str, fold_char: Callable[[str], str]) -> Folded:
    """The same result as ``_fold_with`` for ASCII text, without the per-character loop."""
    folded = text.translate(_ascii_table(fold_char))
    if "  " in folded:
        folded = _RUNS.sub(_SEP, folded)
    return Folded(text, folded.strip(_SEP), None, fold_char)


def fold(text: str) -> Folded:
    """Case-, accent- and script-insensitive form: lower-case ASCII letters/digits, leet symbols, single spaces."""
    if text.isascii():
        return _fold_ascii(text, _fold_char)
    return _fold_with(text, _fold_char)


@lru_cache(maxsize=65536)
def _fold_confusable_char(char: str) -> str:
    folded = confusable_fold(char)
    return "".join(c if c.isalnum() else _SEP for c in folded)


def fold_confusable(text: str) -> Folded:
    """The TR39-skeleton form (see ``confusables.confusable_fold``), with single spaces for separators."""
    if text.isascii():
        return _fold_ascii(text, _fold_confusable_char)
    return _fold_with(text, _fold_confusable_char)


def fold_name(value: str) -> tuple[str, ...]:
    """The words of a name as folded tokens (letters and digits only)."""
    text = fold(value).text
    return tuple(t for t in re.split(r"[^a-z0-9]+", text) if t)


@dataclass(frozen=True, slots=True)
class NameForm:
    """One way of writing a name: its words in order, and how far it is from the name as given."""

    tokens: tuple[str, ...]
    #: "name" (as given), "reversed" (family name first), "short" (middle names left out), "initials".
    form: str

    @property
    def label(self) -> str:
        return " ".join(self.tokens)

    @property
    def compact(self) -> str:
        return "".join(self.tokens)


def name_forms(tokens: tuple[str, ...], *, initials: bool = True) -> list[NameForm]:
    """Word orders and abbreviations of a multi-word name (first form is the name as given).

    ``Mia Khalifa`` → ``mia khalifa``, ``khalifa mia``, ``m khalifa`` (initials only when the family name has at
    least five letters: ``m lee`` would say nothing).  Longer names also give first + last and last + first.
    """
    if not tokens:
        return []
    forms = [NameForm(tokens, "name")]
    if len(tokens) >= 2:
        first, last = tokens[0], tokens[-1]
        if len(tokens) > 2:
            forms.append(NameForm((first, last), "short"))
        forms.append(NameForm((last, first), "reversed"))
        if initials and len(last) >= 5 and len(first) > 1:
            forms.append(NameForm((first[0], last), "initials"))
    seen: set[tuple[str, ...]] = set()
    unique = []
    for form in forms:
        if form.tokens not in seen:
            seen.add(form.tokens)
            unique.append(form)
    return unique


def separator_spellings(tokens: tuple[str, ...]) -> list[str]:
    """``mia khalifa``, ``miakhalifa``, ``mia-khalifa``, ``mia_khalifa``, ``mia.khalifa``."""
    return [sep.join(tokens) for sep in SEPARATORS]


def leet_spellings(word: str, limit: int = 64) -> Iterator[str]:
    """Leetspeak spellings of ``word`` (each substitutable letter as itself or any of its stand-ins), at most
    ``limit`` of them; the plain word is not included."""
    choices = [(c, *LEET.get(c, "")) for c in word]
    for count, spelling in enumerate(itertools.product(*choices)):
        if count == 0:
            continue  # the plain word
        if count > limit:
            return
        yield "".join(spelling)


def leet_pattern(token: str) -> str:
    """A regular-expression fragment matching ``token`` with any of its letters in leetspeak."""
    parts = []
    for c in token:
        alts = LEET.get(c)
        parts.append("[" + re.escape(c + alts) + "]" if alts else re.escape(c))
    return "".join(parts)
