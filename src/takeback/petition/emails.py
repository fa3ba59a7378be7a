"""E-mail addresses: validation, the normalised form that decides "same person", disposable domains.

Why normalise: one person may type ``Jane.Doe+petition@GoogleMail.com`` and ``janedoe@gmail.com``; both reach the
same mailbox and must count once.  The rules (also in docs/petition.md):

1. Surrounding white space is dropped; the address must be ``local@domain`` with one ``@`` (the last one splits),
   no white space or control characters, local part <= 64, domain <= 253, whole address <= 254 characters.
2. The domain is lower-cased and IDNA-encoded (``bücher.example`` → ``xn--bcher-kva.example``), trailing dot dropped.
3. The local part is case-folded.  Strictly it is case-sensitive (RFC 5321), but no large provider treats it so,
   and "two mailboxes differing only in case" is far rarer than people typing capitals.
4. Known providers' aliasing rules, and only those (elsewhere ``+`` and ``.`` may be part of distinct mailboxes):
   - gmail.com, googlemail.com: one domain (gmail.com); dots ignored; ``+tag`` dropped;
   - Microsoft (outlook.com, hotmail.com, live.com, msn.com), Apple (icloud.com, me.com, mac.com),
     Fastmail (fastmail.com, fastmail.fm), Proton (proton.me, protonmail.com, protonmail.ch, pm.me): ``+tag`` dropped.

The key stored and compared is sha256 of the normalised address (``email_key``): fixed-size for the unique index.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

GMAIL = frozenset({"gmail.com", "googlemail.com"})
PLUS_TAG_PROVIDERS = frozenset(
    {
        "gmail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "fastmail.fm",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
    }
)
#: Characters allowed in a local part besides letters and digits (RFC 5322 dot-atom text).
_LOCAL_SPECIALS = frozenset("!#$%&'*+-/=?^_`{|}~.")


class InvalidEmail(ValueError):
    """Not an address we can send a verification link to.  ``code`` is the API error code."""

    code = "invalid_email"


class DisposableEmail(InvalidEmail):
    """An address at a throwaway-mail service."""

    code = "disposable_email"


@lru_cache(maxsize=8192)
def _domain(domain: str) -> str:
    """The checked ASCII form of a domain.  Cached: a burst's addresses share a few thousand domains at most, and
    IDNA encoding plus the label checks were a visible part of a signature's CPU (errors are raised, never cached)."""
    domain = domain.rstrip(".").lower()
    if not domain or len(domain) > 253:
        raise InvalidEmail("the address has no valid domain")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidEmail("the domain is not a valid host name") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise InvalidEmail("the domain needs a dot (like example.org)")
    for label in labels:
        if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            raise InvalidEmail("the domain is not a valid host name")
        if not all(c.isalnum() or c == "-" for c in label) or not label.isascii():
            raise InvalidEmail("the domain is not a valid host name")
    return ascii_domain


def split_address(address: str) -> tuple[str, str]:
    """(local part, ASCII domain) of a syntactically valid address, else InvalidEmail."""
    if not isinstance(address, str):
        raise InvalidEmail("the address must be text")
    address = address.strip()
    if not address or len(address) > 254:
        raise InvalidEmail("the address is empty or longer than 254 characters")
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise InvalidEmail("the address needs the form name@example.org")
    if len(local) > 64:
        raise InvalidEmail("the part before @ is longer than 64 characters")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail("the part before @ has misplaced dots")
    if not all(c.isalnum() or c in _LOCAL_SPECIALS for c in local):
        raise InvalidEmail("the part before @ contains characters addresses cannot have")
    return local, _domain(domain)


def normalise_email(address: str) -> str:
    """The form two spellings of one mailbox share (rules in the module docstring)."""
    local, domain = split_address(address)
    local = local.casefold()
    if domain in GMAIL:
        domain = "gmail.com"
        local = local.replace(".", "")
    if domain in PLUS_TAG_PROVIDERS:
        local = local.split("+", 1)[0]
    if not local:
        raise InvalidEmail("the part before @ is empty once its +tag is removed")
    return f"{local}@{domain}"


def email_key(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def disposable_domains() -> frozenset[str]:
    text = resources.files("takeback.petition").joinpath("data/disposable_domains.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


@lru_cache(maxsize=8192)
def is_disposable(domain: str) -> bool:
    """The domain or one of its parents is on the disposable list (cached like ``_domain``)."""
    listed = disposable_domains()
    labels = domain.lower().rstrip(".").split(".")
    return any(".".join(labels[i:]) in listed for i in range(len(labels) - 1))


def check_signer_email(address: str) -> tuple[str, str]:
    """(address as stored, email_key) for a signer; InvalidEmail or DisposableEmail otherwise."""
    normalised = normalise_email(address)
    if is_disposable(normalised.rpartition("@")[2]):
        raise DisposableEmail("addresses at throwaway-mail services cannot sign; please use your own address")
    return address.strip(), email_key(normalised)
