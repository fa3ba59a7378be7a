"""Unicode confusables: TR39 skeletons and IDN (punycode) decoding.

Why: a domain such as ``xn--mа-khalifa`` with a Cyrillic ``а`` reads as the person's name but compares unequal to
it.  UTS #39 answers this with *skeletons*: two strings are confusable when their skeletons are equal.  The mapping
table is Unicode's own ``confusables.txt`` shipped unchanged in ``discover/data`` with its licence (the Python
packages on offer either do not compute skeletons or deliberately skip rows such as ``m → rn``).

``skeleton`` is the standard algorithm (NFD, drop default-ignorable code points, map each character to its
prototype, NFD again).  ``confusable_fold`` is the case- and accent-insensitive equivalence the name matcher uses:
it applies to one character at a time (so a match can point back at the original text) and folds the ASCII
look-alike pair ``l``/``i`` together, because upper-case ``I`` and ``l`` share a prototype while lower-case ``i``
does not.
"""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache
from importlib import resources

import idna

__all__ = ["DATA_VERSION", "confusable_fold", "decode_idn", "decode_idn_label", "is_default_ignorable", "skeleton"]

#: Version of Unicode's confusables.txt shipped in discover/data.
DATA_VERSION = "13.0.0"

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt): invisible characters a spoof can slip between letters.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


class ConfusablesDataError(RuntimeError):
    """The shipped confusables.txt is missing or unreadable (a broken installation)."""


def is_default_ignorable(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _DEFAULT_IGNORABLE)


@cache
def _prototypes() -> dict[str, str]:
    """Parse confusables.txt once: ``source ; target ; type # comment`` with hex code points."""
    try:
        text = resources.files("takeback.discover").joinpath("data/confusables.txt").read_text("utf-8-sig")
    except (OSError, ModuleNotFoundError) as exc:  # pragma: no cover - installation problem
        raise ConfusablesDataError(f"cannot read discover/data/confusables.txt: {exc}") from exc
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        fields = [f.strip() for f in data.split(";")]
        if len(fields) < 2:
            continue
        source = "".join(chr(int(cp, 16)) for cp in fields[0].split())
        target = "".join(chr(int(cp, 16)) for cp in fields[1].split())
        if len(source) == 1:
            table[source] = target
    if len(table) < 5000:  # pragma: no cover - installation problem
        raise ConfusablesDataError("discover/data/confusables.txt looks truncated")
    return table


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text`` (not for display: an internal comparison form)."""
    table = _prototypes()
    nfd = unicodedata.normalize("NFD", text)
    mapped = "".join(table.get(ch, ch) for ch in nfd if not is_default_ignorable(ch))
    return unicodedata.normalize("NFD", mapped)


def _strip_marks(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def confusable_fold(char: str) -> str:
    """Fold one character to its case-insensitive, accent-insensitive prototype (lower-case, mostly ASCII).

    Tries the character as given, then its upper- and lower-case forms, and keeps the first whose prototype is
    ASCII: Cyrillic ``к`` maps to Latin kra ``ĸ`` in the table but its capital ``К`` maps to ``K``.  ``l`` and
    ``i`` fold together (capital ``I`` ≈ ``l``).  Default-ignorable characters fold to nothing.
    """
    if is_default_ignorable(char):
        return ""
    first = ""
    for form in (char, char.upper(), char.lower()):
        folded = _strip_marks(skeleton(form)).casefold()
        folded = _strip_marks(skeleton(folded)).casefold()
        if not first:
            first = folded
        if folded.isascii():
            return folded.replace("l", "i")
    return first.replace("l", "i")


def decode_idn_label(label: str) -> str:
    """Decode one ``xn--`` label to Unicode; anything that is not valid punycode is returned unchanged.

    IDNA 2008 (``idna``) first; labels it refuses (many spoofs use characters IDNA 2008 disallows, which some
    registries and certificate logs still carry) fall back to the bare punycode codec.
    """
    if label[:4].lower() != "xn--":
        return label
    try:
        return idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def decode_idn(domain: str) -> str:
    """Decode every punycode label of a domain (``xn--…`` → Unicode); other labels stay as they are."""
    if "xn--" not in domain.lower():
        return domain
    return ".".join(decode_idn_label(label) for label in domain.split("."))
