"""Passwords are stored as argon2id hashes (argon2-cffi's RFC 9106 defaults), never in clear or reversibly.

The policy is NIST SP 800-63B's: a minimum length and a ban on the most common passwords, no composition rules
(they push people to predictable patterns).  A person under stress must be able to pick a long phrase she can
remember.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024
#: A few of the commonest passwords long enough to pass the length rule (breach-corpus top lists).
_COMMON = frozenset(
    {
        "1234567890", "12345678910", "0123456789", "qwertyuiop", "password12", "password123", "password1234",
        "iloveyou123", "qwerty12345", "1q2w3e4r5t", "1qaz2wsx3edc", "abcdefghij", "aaaaaaaaaa", "passw0rd123",
        "football123", "letmein1234", "welcome123", "administrator", "trustno1234", "0987654321",
    }
)

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """The password does not meet the policy; the message says what to change."""


def check_policy(password: str, *, email: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"use at least {MIN_LENGTH} characters (a phrase of a few words is easiest)")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in _COMMON or len(set(password)) < 3:
        raise WeakPassword("this password is too common; pick another")
    if email and lowered == email.lower():
        raise WeakPassword("the password must not be your e-mail address")


def hash_password(password: str, *, email: str = "") -> str:
    """Check the policy, then hash (raises WeakPassword)."""
    check_policy(password, email=email)
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's: rehash at the next sign-in."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


#: A hash of nothing anyone knows: verifying against it for unknown e-mails makes sign-in take the same time
#: whether or not the account exists (no account enumeration by timing).
DUMMY_HASH = _hasher.hash("takeback: no such account")
