"""TOTP second factor (RFC 6238, 30-second steps, 6 digits) through pyotp, with replay protection.

A code is accepted for the current step or one step either side (clock drift), and only once: the caller keeps
the last accepted step (``users.totp_last_step``) and passes it back in.
"""

from __future__ import annotations

import time

import pyotp

STEP_S = 30
ISSUER = "takeback"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads (typed in or scanned)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def current_code(secret: str, at: float | None = None) -> str:
    """The code for time ``at`` (tests and the demo use it)."""
    return pyotp.TOTP(secret).at(at if at is not None else time.time())


def accept(secret: str, code: str, last_step: int | None, at: float | None = None) -> int | None:
    """The step the code belongs to when it is valid and newer than ``last_step``; None otherwise."""
    code = "".join(code.split())
    if not (len(code) == 6 and code.isdigit()):
        return None
    now = at if at is not None else time.time()
    totp = pyotp.TOTP(secret)
    step = int(now // STEP_S)
    for candidate in (step, step - 1, step + 1):
        if (last_step is None or candidate > last_step) and pyotp.utils.strings_equal(
            totp.at(candidate * STEP_S), code
        ):
            return candidate
    return None
