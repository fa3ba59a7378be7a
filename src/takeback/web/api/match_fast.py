"""The match endpoints answered before the framework's routing: ``POST /v1/match`` and ``POST /v1/match/batch``.

Why: a platform sends these two requests and almost nothing else, and per request the router walk over every route,
dependency resolution and FastAPI's two-step body parsing (``json.loads``, then validation of the Python objects)
cost more CPU than matching a single hash does. Here the body goes straight from bytes to the request model
(``model_validate_json``), the key is checked by the same function the routes use, and the answer is the same
bytes (`match.answer_one` / `match.answer_batch`).

Only requests the fast path can answer exactly as the routes would are taken: a JSON (or untyped) body that
validates. Anything else, including every malformed body, is handed to the framework with its body replayed, so
error answers, their codes and their order stay those of the documented routes (which also stay in OpenAPI).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from takeback.web.api import match
from takeback.web.auth import authenticate_key, key_from_headers
from takeback.web.errors import ApiError, envelope, store_refusal
from takeback.web.schemas import MatchBatchRequest, MatchRequest
from takeback.web.state import AppState, Principal

log = logging.getLogger("takeback.web")

_Answer = Callable[[AppState, Principal, Any], Awaitable[bytes]]
_ROUTES: dict[str, tuple[type[BaseModel], _Answer]] = {
    "/v1/match": (MatchRequest, match.answer_one),
    "/v1/match/batch": (MatchBatchRequest, match.answer_batch),
}


def _is_json(content_type: bytes | None) -> bool:
    """What FastAPI parses as JSON: no content type, application/json or application/*+json (parameters aside)."""
    if content_type is None:
        return True
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


class MatchFastPath:
    """ASGI middleware: the two match routes without routing, for requests that validate; all else passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        app = scope.get("app")
        state: AppState | None = getattr(app.state, "takeback", None) if app is not None else None
        headers = dict(scope.get("headers") or ())
        if route is None or state is None or not _is_json(headers.get(b"content-type")):
            await self.app(scope, receive, send)
            return
        model, answer = route
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away: nobody to answer
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except ApiError as exc:  # the body limit, raised by the middleware outside this one
            await _send(send, exc.status, _error_bytes(exc), exc.headers)
            return
        raw = b"".join(chunks)
        try:
            body = model.model_validate_json(raw) if raw else None
        except ValidationError:
            body = None
        if body is None:
            await self.app(scope, _replay(raw, receive), send)
            return
        try:
            key = key_from_headers(_text(headers.get(b"authorization")), _text(headers.get(b"x-api-key")))
            principal = await authenticate_key(state, key, "match")
            data = await answer(state, principal, body)
        except ApiError as exc:
            await _send(send, exc.status, _error_bytes(exc), exc.headers)
            return
        except Exception as exc:
            refusal = store_refusal(exc)
            if refusal is not None:
                await _send(send, refusal.status, _error_bytes(refusal), None)
                return
            log.exception("unexpected error on POST %s", scope.get("path"))
            data = pydantic_core.to_json(envelope("internal_error", "internal error; the server log has the details"))
            await _send(send, 500, data, None)
            return
        await _send(send, 200, data, None)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _error_bytes(exc: ApiError) -> bytes:
    return pydantic_core.to_json(envelope(exc.code, exc.message, exc.detail))


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the already-read body over once, then whatever the client sends next."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again


async def _send(send: Send, status: int, data: bytes, extra: dict[str, str] | None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
