"""Browser session tokens: the cookie carries a random token, the database only its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_id(token: str) -> str:
    """The database key for a cookie token (a stolen table gives no usable cookies)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets; None never matches."""
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())
