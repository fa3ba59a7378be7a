"""Domain names: cleaning feed entries and splitting them into subdomain, registrable label and public suffix.

Why tldextract with its bundled Public Suffix List snapshot and no network or cache: a domain watch reads
untrusted feeds on servers that may have no outbound access, and must not write into anyone's home directory.
Private suffixes (``blogspot.com``, ``github.io``) count as suffixes, so ``mia-khalifa.github.io`` has the
registrable label ``mia-khalifa`` — the part a person, not the hosting platform, chose.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import idna
import tldextract

from takeback.discover.confusables import decode_idn

__all__ = ["DomainParts", "InvalidDomain", "clean_domain", "split_domain", "to_ascii"]

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}$")
MAX_DOMAIN = 253


class InvalidDomain(ValueError):
    """Not a host name a feed could carry (empty, too long, bad characters, bad label)."""


@dataclass(frozen=True, slots=True)
class DomainParts:
    #: The domain as given (lower-case ASCII, punycode kept), e.g. ``www.xn--mia-khalfa-xyz.com``.
    domain: str
    #: The same with punycode decoded to Unicode.
    unicode: str
    subdomain: str
    registrable: str
    suffix: str


@cache
def _extractor() -> tldextract.TLDExtract:
    # The bundled snapshot only: no network fetch, no cache directory.
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), include_psl_private_domains=True)


def to_ascii(domain: str) -> str:
    """A Unicode domain in its ASCII (punycode) form; ASCII stays as it is."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as error:
        # IDNA 2008 refuses some look-alike characters that feeds still carry: encode such labels as bare punycode.
        labels = []
        for label in domain.split("."):
            if label.isascii():
                labels.append(label)
                continue
            if not all(c.isalnum() or c in "-_" or unicodedata.category(c).startswith("M") for c in label):
                raise InvalidDomain(f"characters that are not letters or digits in {domain[:80]!r}") from error
            try:
                labels.append("xn--" + label.encode("punycode").decode("ascii"))
            except UnicodeError as exc:
                raise InvalidDomain(f"cannot encode {domain!r}") from exc
        return ".".join(labels)


def clean_domain(raw: str) -> str:
    """Lower-case ASCII host name from a feed entry: trailing dot and ``*.`` wildcard removed, Unicode encoded to
    punycode, every label checked.  Raises ``InvalidDomain``."""
    domain = raw.strip().lower().rstrip(".")
    while domain.startswith("*."):
        domain = domain[2:]
    if not domain:
        raise InvalidDomain("empty domain")
    domain = to_ascii(domain)
    if len(domain) > MAX_DOMAIN:
        raise InvalidDomain("domain longer than 253 characters")
    labels = domain.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise InvalidDomain(f"bad label in {raw[:80]!r}")
    return domain


def split_domain(domain: str) -> DomainParts:
    """Split a host name (ASCII or Unicode, cleaned or not) into its parts, with punycode decoded."""
    ascii_domain = clean_domain(domain)
    unicode_domain = decode_idn(ascii_domain)
    parts = _extractor().extract_str(unicode_domain)
    return DomainParts(ascii_domain, unicode_domain, parts.subdomain, parts.domain, parts.suffix)
