"""Proof-of-work against scripted signing, in the ALTCHA format (v1), without a third-party service.

The server picks a secret number n in [0, maxnumber] and a random salt carrying the expiry and the petition
(``<hex>?expires=<unix>&petition=<id>&``), and sends ``challenge = hex(SHA-256(salt + str(n)))`` with
``signature = hex(HMAC-SHA256(key, challenge))``.  The browser tries 0, 1, 2, ... until SHA-256(salt + str(i))
equals the challenge: on average maxnumber/2 hashes (WebCrypto does ~100k/s on a phone), and returns
base64(JSON {algorithm, challenge, number, salt, signature}).  Verifying costs the server one hash and one HMAC.

Nothing is stored when a challenge is issued; a solved challenge is remembered until it expires so it cannot be
reused (``SpentChallenges``), except by a retry of the same request (same idempotency key), which the intake
answers with the original signature anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass

ALGORITHM = "SHA-256"
_MAX_PAYLOAD = 2000


class PowError(ValueError):
    """The proof-of-work is missing, malformed, forged, expired, for another petition, or already used."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Challenge:
    algorithm: str
    challenge: str
    maxnumber: int
    salt: str
    signature: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Solved:
    challenge: str
    petition_id: int
    expires: int


def _hash(salt: str, number: int) -> str:
    return hashlib.sha256(f"{salt}{number}".encode()).hexdigest()


def _sign(key: bytes, challenge: str) -> str:
    """HMAC-SHA256, hex (``hmac.digest``: the one-shot C path, the same value as ``hmac.new(...).hexdigest()``)."""
    return hmac.digest(key, challenge.encode(), "sha256").hex()


def create_challenge(
    key: bytes, petition_id: int, *, max_number: int, expires_s: float, now: float | None = None
) -> Challenge:
    expires = int((time.time() if now is None else now) + expires_s)
    salt = f"{secrets.token_hex(12)}?expires={expires}&petition={petition_id}&"
    number = secrets.randbelow(max_number + 1)
    challenge = _hash(salt, number)
    return Challenge(ALGORITHM, challenge, max_number, salt, _sign(key, challenge))


def solve(challenge: Challenge | dict[str, object], *, start: int = 0) -> int:
    """The number (brute force, as the browser does): for tests and load generators."""
    data = challenge.as_dict() if isinstance(challenge, Challenge) else challenge
    salt, target, top = str(data["salt"]), str(data["challenge"]), int(data["maxnumber"])  # type: ignore[call-overload]
    prefix = hashlib.sha256(salt.encode())
    for number in range(start, top + 1):
        h = prefix.copy()
        h.update(str(number).encode())
        if h.hexdigest() == target:
            return number
    raise ValueError("no solution (not a valid challenge)")


def encode_solution(challenge: Challenge | dict[str, object], number: int) -> str:
    data = challenge.as_dict() if isinstance(challenge, Challenge) else dict(challenge)
    payload = {k: data[k] for k in ("algorithm", "challenge", "salt", "signature")}
    payload["number"] = number
    return base64.b64encode(json.dumps(payload).encode()).decode()


def verify_solution(key: bytes, payload: str, petition_id: int, *, now: float | None = None) -> Solved:
    """Check a solution payload cheaply: shape, the server's signature, expiry, petition, the hash itself."""
    if not isinstance(payload, str) or not payload or len(payload) > _MAX_PAYLOAD:
        raise PowError("invalid_pow", "the anti-bot check is missing; reload the page and try again")
    try:
        data = json.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        raise PowError("invalid_pow", "the anti-bot check is malformed") from None
    if not isinstance(data, dict):
        raise PowError("invalid_pow", "the anti-bot check is malformed")
    challenge, salt, signature, number = (data.get(k) for k in ("challenge", "salt", "signature", "number"))
    if (
        data.get("algorithm") != ALGORITHM
        or not all(isinstance(v, str) and len(v) <= 200 for v in (challenge, salt, signature))
        or type(number) is not int
        or not 0 <= number <= 10**9
    ):
        raise PowError("invalid_pow", "the anti-bot check is malformed")
    assert isinstance(challenge, str) and isinstance(salt, str) and isinstance(signature, str)
    if not hmac.compare_digest(_sign(key, challenge), signature):
        raise PowError("invalid_pow", "the anti-bot check was not issued by this server")
    params = dict(item.partition("=")[::2] for item in salt.partition("?")[2].split("&") if item)
    try:
        expires, for_petition = int(params["expires"]), int(params["petition"])
    except (KeyError, ValueError):
        raise PowError("invalid_pow", "the anti-bot check is malformed") from None
    if for_petition != petition_id:
        raise PowError("invalid_pow", "the anti-bot check was issued for another petition")
    if expires < (time.time() if now is None else now):
        raise PowError("expired_pow", "the anti-bot check expired; reload the page and try again")
    if not hmac.compare_digest(_hash(salt, number), challenge):
        raise PowError("invalid_pow", "the anti-bot check was not solved")
    return Solved(challenge, petition_id, expires)


class SpentChallenges:
    """Solved challenges seen by this process, until they expire: each may sign once (retries of the same request,
    recognised by its idempotency key, pass again).  Thread-safe; memory is bounded by the expiry window."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[int, str | None]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, solved: Solved, owner: str | None, *, now: float | None = None) -> None:
        current = time.time() if now is None else now
        with self._lock:
            if current >= self._next_sweep:
                self._owners = {c: v for c, v in self._owners.items() if v[0] >= current}
                self._next_sweep = current + 30
            previous = self._owners.get(solved.challenge)
            if previous is not None and (owner is None or previous[1] != owner):
                raise PowError("used_pow", "this anti-bot check was already used; reload the page and try again")
            self._owners[solved.challenge] = (solved.expires, owner)

    def release(self, challenge: str) -> None:
        """Forget a claim whose signature was refused (so the signer can correct the form and resubmit)."""
        with self._lock:
            self._owners.pop(challenge, None)
