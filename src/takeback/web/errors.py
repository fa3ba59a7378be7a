"""One error shape for every refusal: ``{"error": {"code", "message", "detail"?}}``.

Clients act on `code` (stable, machine-readable) and show `message` to people.  Validation errors, unknown routes,
wrong methods and anything unexpected all come out in this shape; an unexpected exception is logged with its
traceback on the server and answered as 500 ``internal_error`` without one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from takeback.store import errors as store_errors

log = logging.getLogger("takeback.web")

#: Codes for Starlette's own HTTP errors (unknown route, wrong method, ...).
_STATUS_CODES = {
    400: "bad_request",
    401: "invalid_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "upload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    """Raised anywhere in a request to answer with the error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers


def envelope(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return {"error": error}


def store_refusal(exc: Exception) -> ApiError | None:
    """The 4xx a store error stands for (a race such as a bank deleted between lookup and write, or input the
    routes let through), or None when it is a real failure."""
    if isinstance(exc, store_errors.UnknownBank):
        return ApiError(404, "unknown_bank", "the bank does not exist (any more)")
    if isinstance(exc, store_errors.UnknownClient | store_errors.UnknownWebhook):
        return ApiError(404, "not_found", "no such client or webhook")
    if isinstance(exc, store_errors.InvalidInput):
        return ApiError(400, "invalid_input", str(exc))
    if isinstance(exc, store_errors.BankExists):
        return ApiError(409, "bank_exists", "a bank with that name already exists")
    return None


def error_response(status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None):
    return JSONResponse(envelope(code, message, detail), status_code=status, headers=headers)


def _clean(value: Any) -> Any:
    """Validation error details as plain JSON (pydantic may put exceptions or bytes in `ctx`/`input`)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": _clean(list(e.get("loc", ()))), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(422, "validation_error", f"{where}: {first['msg']}" if where else first["msg"], problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error" if exc.status_code < 500 else "internal_error")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}) or None)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, unexpected)
