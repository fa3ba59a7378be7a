"""Who is calling, may they, and not too often: API keys, scopes, bank grants, rate limits.

Keys arrive as ``Authorization: Bearer tbk_...`` or ``X-API-Key: tbk_...``.  The order of refusals is fixed: no key
401 missing_key, unknown or revoked key 401 invalid_key, over budget 429 rate_limited (with Retry-After), wrong scope
403 forbidden_scope, then per bank 404 unknown_bank or 403 forbidden_bank.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from takeback.web.errors import ApiError
from takeback.web.ratelimit import retry_after_header
from takeback.web.state import AppState, Principal, key_fingerprint
from takeback.web.storage import BankInfo

#: How keys are sent, for the OpenAPI document (`app.openapi` adds them to every operation but /v1/health).  They
#: are not FastAPI security dependencies: two extra dependencies per request cost more than the check itself.
SECURITY_SCHEMES = {
    "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer tbk_..."},
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "X-API-Key: tbk_..."},
}
MAX_KEY_LENGTH = 256


def app_state(request: Request) -> AppState:
    return request.app.state.takeback


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries (None when it carries none); a malformed Authorization header is refused."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise ApiError(
            401, "invalid_key", "Authorization must be 'Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    return x_api_key.strip() if x_api_key and x_api_key.strip() else None


def _key_of(request: Request) -> str | None:
    return key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))


async def authenticate(request: Request) -> Principal:
    """Dependency: any authenticated client within its rate limit."""
    return await authenticate_key(app_state(request), _key_of(request))


async def authenticate_key(state: AppState, key: str | None, scope: str | None = None) -> Principal:
    """The client behind `key`, within its rate limit and holding `scope` when one is named (admin holds every
    scope), refused in the order of the module docstring."""
    if key is None:
        raise ApiError(
            401,
            "missing_key",
            "an API key is required (Authorization: Bearer <key> or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    fingerprint = key_fingerprint(key)
    principal = state.principals.get(fingerprint)
    if principal is None:
        if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            principal = None
        else:
            generation = state.principals.generation()
            principal = await run_in_threadpool(state.store.principal, key)
            if principal is not None:
                state.principals.put(fingerprint, principal, generation)
        if principal is None:
            raise ApiError(
                401, "invalid_key", "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
            )
    wait = state.limiter.acquire(principal.client_id, principal.rate_limit_per_minute)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {principal.rate_limit_per_minute} requests per minute reached",
            headers={"Retry-After": retry_after_header(wait)},
        )
    if scope is not None and not principal.has(scope):
        raise ApiError(403, "forbidden_scope", f"this key lacks the {scope!r} scope")
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: an authenticated client holding `scope` (admin holds every scope)."""

    async def dependency(request: Request) -> Principal:
        return await authenticate_key(app_state(request), _key_of(request), scope)

    dependency.__name__ = f"require_{scope}"
    return dependency


def usable_bank(state: AppState, principal: Principal, name: str) -> BankInfo:
    """The named bank, if it exists and this client was granted it (sync: call from a thread)."""
    bank = state.store.bank_by_name(name)
    if bank is None:
        raise ApiError(404, "unknown_bank", f"no bank named {name!r}")
    if not principal.may_use(bank.id):
        raise ApiError(403, "forbidden_bank", f"this key is not granted bank {name!r}")
    return bank
