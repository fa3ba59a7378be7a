"""Signed links in verification mails: verify, unsubscribe, erase.

A token is ``<signature id>.<issued, unix seconds>.<mac>`` where mac = HMAC-SHA256(key(purpose), id.issued),
truncated to 128 bits and base64url-encoded.  The key is derived per purpose from the server secret, so an
unsubscribe link cannot be replayed as an erasure link.  Nothing secret is inside (the id is not personal), and
nothing needs storing: a token is single-use because what it does happens once (pending → verified is a
conditional UPDATE; an erased row stays erased), and the service reports a second use as ``token_used``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

PURPOSES = frozenset({"verify", "unsubscribe", "erase"})
_MAX_TOKEN = 100


class TokenError(ValueError):
    """A link that cannot be honoured; ``code`` is the API error code."""

    code = "invalid_token"


class ExpiredToken(TokenError):
    code = "expired_token"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    signature_id: int
    issued_at: int


def _key(secret: bytes, purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return hmac.new(secret, f"takeback-petition-token:{purpose}".encode(), hashlib.sha256).digest()


def _mac(secret: bytes, purpose: str, body: str) -> str:
    digest = hmac.new(_key(secret, purpose), body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(secret: bytes, purpose: str, signature_id: int, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    body = f"{signature_id}.{issued}"
    return f"{body}.{_mac(secret, purpose, body)}"


def read_token(secret: bytes, purpose: str, token: str, *, max_age_s: float, now: float | None = None) -> TokenClaims:
    """The claims of an authentic, unexpired token for ``purpose``; TokenError/ExpiredToken otherwise."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or not token.isascii():
        raise TokenError("the link is malformed")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise TokenError("the link is malformed")
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(secret, purpose, body), parts[2]):
        raise TokenError("the link is not authentic (altered or for another purpose)")
    issued = int(parts[1])
    current = time.time() if now is None else now
    if current - issued > max_age_s:
        raise ExpiredToken("the link has expired; sign again to receive a new one")
    return TokenClaims(int(parts[0]), issued)
