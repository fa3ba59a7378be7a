"""The FastAPI application: `create_app(settings)` wires the store, the matcher, webhooks and the /v1 routers.

Start-up (the ASGI lifespan) opens the database (migrating it), loads the matcher and starts the webhook worker;
shut-down stops them in reverse.  `takeback serve` runs this under uvicorn; tests run it in-process.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from takeback import __version__
from takeback.config import Settings
from takeback.discover.urlguard import Resolver, system_resolver
from takeback.jobs import ServerJobs
from takeback.store import errors as store_errors
from takeback.web import errors
from takeback.web.api import (
    banks,
    cases,
    clients,
    health,
    match,
    match_fast,
    notices,
    parties,
    petitions,
    scans,
    webhooks,
)
from takeback.web.auth import SECURITY_SCHEMES
from takeback.web.dashboard import findings as dashboard_findings
from takeback.web.dashboard import inbox as dashboard_inbox
from takeback.web.dashboard import names as dashboard_names
from takeback.web.dashboard import notices as dashboard_notices
from takeback.web.dashboard import operator as dashboard_operator
from takeback.web.dashboard import pages as dashboard_pages
from takeback.web.dashboard import petition as dashboard_petition
from takeback.web.dashboard import scan as dashboard_scan
from takeback.web.matcher import Matcher
from takeback.web.schemas import ErrorEnvelope
from takeback.web.state import AppState
from takeback.web.storage import Store

log = logging.getLogger("takeback.web")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "invalid input (see error.code)",
        401: "missing_key / invalid_key",
        403: "forbidden_scope / forbidden_bank",
        404: "unknown_bank / not_found",
        413: "batch_too_large / upload_too_large",
        422: "validation_error",
        429: "rate_limited (see Retry-After)",
    }.items()
}


class BodyLimit:
    """Refuse request bodies over the upload limit with 413 upload_too_large, before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, receive, send)
                return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.ApiError(
                        413, "upload_too_large", f"the request body is larger than {self.limit} bytes"
                    )
            return message

        await self.app(scope, counting, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = errors.error_response(413, "upload_too_large", f"the request body is larger than {self.limit} bytes")
        await response(scope, receive, send)


def _store_errors(app: FastAPI) -> None:
    """Store errors that can surface from a race (a bank deleted between lookup and write) or from input the routes
    let through; each becomes its 4xx instead of a 500."""

    async def handle(request: Any, exc: Exception) -> Any:
        refusal = errors.store_refusal(exc)
        if refusal is None:
            return await errors.unexpected(request, exc)
        return errors.error_response(refusal.status, refusal.code, refusal.message)

    app.add_exception_handler(store_errors.StoreError, handle)


async def _to_dashboard() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=307)


def create_app(
    settings: Settings,
    *,
    matcher: Any = None,
    webhook_resolver: Resolver | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The takeback match service.  `matcher` replaces the one loaded from the store (tests, embedding);
    `webhook_resolver`/`webhook_transport` replace DNS and the network for webhook checks and deliveries (tests).
    `freeze_heap` is for a process that runs only this app (`takeback serve`): see the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from takeback.store.db import open_store
        from takeback.store.db import session_factory as make_sessions

        engine, session_factory = await run_in_threadpool(open_store, settings)
        own_matcher = matcher is None
        readers = make_sessions(engine, read_only=True)  # the matcher only reads; on SQLite it then never waits
        active = await run_in_threadpool(Matcher.open, readers, settings) if own_matcher else matcher
        store = Store(session_factory, active.apply, settings.default_rate_limit)
        jobs = await ServerJobs.start(settings, engine, session_factory)  # background work (docs/jobs.md)
        dispatcher = jobs.webhook_dispatcher(
            recorder=store.recorder(),
            resolver=webhook_resolver or system_resolver,
            transport=webhook_transport,
        )
        app.state.takeback = AppState(settings=settings, store=store, matcher=active, dispatcher=dispatcher)
        await dispatcher.start()
        if freeze_heap:
            # What start-up loaded lives as long as the server: move it out of the cyclic collector's reach, so its
            # full passes (which walk every tracked object) don't stall requests in proportion to the heap.
            gc.freeze()
        try:
            yield
        finally:
            await dispatcher.stop()
            await jobs.stop()
            if own_matcher:
                await run_in_threadpool(active.close)
            engine.dispose()

    app = FastAPI(
        title="takeback match service",
        version=__version__,
        summary="Match image and video hashes against banks of protected content.",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    errors.install(app)
    _store_errors(app)
    for module in (health, banks, match, clients, webhooks, petitions, cases, scans, notices, parties):
        app.include_router(module.router)
    app.include_router(dashboard_pages.router)
    app.include_router(dashboard_operator.router)
    app.include_router(dashboard_inbox.router)
    app.include_router(dashboard_notices.router)
    for page_module in (dashboard_names, dashboard_scan, dashboard_findings, dashboard_petition):
        app.include_router(page_module.router)
    app.include_router(dashboard_inbox.public)
    app.add_api_route("/", _to_dashboard, include_in_schema=False)
    app.add_middleware(match_fast.MatchFastPath)  # the two match routes, before routing (see its docstring)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)  # outside the fast path: it applies there too
    app.add_middleware(petitions.SignFastPath)  # the petition's burst path, before routing (see its docstring)
    _declare_security(app)
    return app


def _declare_security(app: FastAPI) -> None:
    """Add the key schemes to the OpenAPI document: every operation but /v1/health takes either."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema.get("paths", {}).items():
            if path == "/v1/health":
                continue
            for operation in operations.values():
                if "public" in operation.get("tags", ()):  # petition pages, counts and signing need no key
                    continue
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """For `uvicorn --factory takeback.web.app:create_app_from_env`: settings from TAKEBACK_* variables."""
    return create_app(Settings(), freeze_heap=True)
