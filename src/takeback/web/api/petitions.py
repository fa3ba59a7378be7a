"""Petition JSON API under /v1/petitions, plus the public pages (``takeback.web.ui.petition``).

Public operations (tag "public", no API key): the petition, its counts and breakdowns, a proof-of-work challenge,
signing, and the verify/unsubscribe/erase links.  Operator operations need the ``manage`` scope: create a petition,
post updates, review flags, remove signatures (with a reason, logged), read the removal log, export (CSV or PDF,
with a signed summary).

The router's lifespan starts the petition service (intake writer, mail outbox) after the app's own start-up and
stops it before the app's shut-down, so queued signatures are committed before the database closes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from takeback.petition import export as export_mod
from takeback.petition.service import PetitionError, PetitionService, SignForm
from takeback.store import petitions as petition_store
from takeback.store.errors import InvalidInput
from takeback.store.petitions import Counts, PetitionInfo
from takeback.web.auth import require
from takeback.web.errors import ApiError, envelope
from takeback.web.state import Principal


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.takeback
    service = await run_in_threadpool(PetitionService, state.settings, state.store.sessions)
    service.start()
    app.state.petition = service
    try:
        yield
    finally:
        await run_in_threadpool(service.stop)


api = APIRouter(prefix="/v1/petitions", tags=["petitions"])
log = logging.getLogger("takeback.web")
_SIGN_PREFIX, _SIGN_SUFFIX = "/v1/petitions/", "/signatures"
#: Largest signing request body (the fields' limits add up to well under this).
MAX_SIGN_BODY = 16 * 1024
PUBLIC = ["public"]
Slug = Annotated[str, Path(max_length=100, description="The petition's address (a-z, 0-9, '-')")]


def service(request: Request) -> PetitionService:
    return request.app.state.petition


def api_error(exc: PetitionError) -> ApiError:
    headers = {"Retry-After": str(int(exc.retry_after + 0.999))} if exc.retry_after else None
    return ApiError(exc.status, exc.code, exc.message, headers=headers)


def petition_or_404(svc: PetitionService, slug: str) -> PetitionInfo:
    try:
        return svc.petition(slug)
    except PetitionError as exc:
        raise api_error(exc) from None


# --- models ----------------------------------------------------------------------------------------------------


class CountsOut(BaseModel):
    verified: int
    pending: int
    goal: int
    progress: float = Field(description="verified / goal, 0..1 (capped)")


class PetitionOut(BaseModel):
    slug: str
    title: str
    text: str
    target: str
    goal: int
    starts_at: datetime
    closes_at: datetime | None
    open: bool
    counts: CountsOut


class PetitionIn(BaseModel):
    case_id: int = Field(ge=1, le=2**31 - 1)
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9-]+$")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=100_000)
    target: str = Field(min_length=1, max_length=200)
    goal: int = Field(ge=1, le=2**31 - 1)
    starts_at: datetime | None = None
    closes_at: datetime | None = None


class UpdateIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=100_000)


class UpdateOut(BaseModel):
    id: int
    title: str
    text: str
    created_at: datetime


class ChallengeOut(BaseModel):
    algorithm: str
    challenge: str
    maxnumber: int
    salt: str
    signature: str


class SignIn(BaseModel):
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2")
    postcode: str | None = Field(default=None, max_length=16)
    comment: str | None = Field(default=None, max_length=1000)
    consent_updates: bool = False
    consent_public: bool = Field(default=False, description="show my name in the delivered list")
    pow: str = Field(max_length=2000, description="base64 ALTCHA solution of GET …/challenge")
    idempotency_key: str | None = Field(default=None, max_length=64)


class SignOut(BaseModel):
    status: Literal["check_your_email", "accepted"]
    message: str
    counts: CountsOut = Field(
        description="the petition's counts as of the commit that stored this signature (the page shows them "
        "together with the message, so a signer never sees a count from before their signature)"
    )


class TokenIn(BaseModel):
    token: str = Field(max_length=100)


class BreakdownRow(BaseModel):
    key: str
    verified: int
    pending: int


class FlagOut(BaseModel):
    id: int
    kind: str
    key: str
    window_start: datetime
    signatures: int
    status: str
    note: str | None
    resolved_at: datetime | None


class FlagAction(BaseModel):
    action: Literal["dismiss", "remove"]
    note: str = Field(default="", max_length=2000)


class RemoveIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=2000)


class RemovedOut(BaseModel):
    removed: list[int]


class RemovalOut(BaseModel):
    id: int
    signature_id: int
    action: str
    previous_status: str
    reason: str
    actor: str
    flag_id: int | None
    removed_at: datetime


def counts_out(petition: PetitionInfo, counts: Counts) -> CountsOut:
    return CountsOut(
        verified=counts.verified,
        pending=counts.pending,
        goal=petition.goal,
        progress=min(1.0, counts.verified / petition.goal),
    )


def petition_out(petition: PetitionInfo, counts: Counts, now: datetime) -> PetitionOut:
    return PetitionOut(
        slug=petition.slug,
        title=petition.title,
        text=petition.text,
        target=petition.target,
        goal=petition.goal,
        starts_at=petition.starts_at,
        closes_at=petition.closes_at,
        open=petition.is_open(now),
        counts=counts_out(petition, counts),
    )


def _now(svc: PetitionService) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(svc.clock(), UTC)


# --- public ----------------------------------------------------------------------------------------------------


@api.get("/{slug}", response_model=PetitionOut, tags=PUBLIC, summary="A petition and its counts")
def get_petition(slug: Slug, request: Request) -> PetitionOut:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    return petition_out(petition, svc.counts(petition), _now(svc))


@api.get("/{slug}/counts", response_model=CountsOut, tags=PUBLIC, summary="Verified and pending signatures")
def get_counts(slug: Slug, request: Request, response: Response) -> CountsOut:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    response.headers["Cache-Control"] = "public, max-age=1"
    response.headers["Access-Control-Allow-Origin"] = "*"  # embeddable counters on other sites
    return counts_out(petition, svc.counts(petition))


@api.get(
    "/{slug}/breakdown/{kind}",
    response_model=list[BreakdownRow],
    tags=PUBLIC,
    summary="Signatures by country, or by hour of signing (UTC) for charts",
)
def get_breakdown(slug: Slug, kind: Literal["country", "hour"], request: Request) -> list[BreakdownRow]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    return [BreakdownRow(key=k, verified=c.verified, pending=c.pending) for k, c in svc.breakdown(petition, kind)]


@api.get("/{slug}/challenge", response_model=ChallengeOut, tags=PUBLIC, summary="A proof-of-work challenge")
def get_challenge(slug: Slug, request: Request, response: Response) -> ChallengeOut:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    response.headers["Cache-Control"] = "no-store"
    return ChallengeOut(**svc.challenge(petition).as_dict())  # type: ignore[arg-type]


@api.post(
    "/{slug}/signatures",
    response_model=SignOut,
    status_code=202,
    tags=PUBLIC,
    summary="Sign (answered after the signature is durably stored; a verification mail follows)",
)
async def sign(
    slug: Slug,
    body: SignIn,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=64)] = None,
) -> SignOut:
    ip = request.client.host if request.client else "unknown"
    base_url = f"{request.url.scheme}://{request.url.netloc}"
    try:
        return await signed(service(request), slug, body, idempotency_key, ip, base_url)
    except PetitionError as exc:
        raise api_error(exc) from None


async def signed(
    svc: PetitionService, slug: str, body: SignIn, idempotency_header: str | None, ip: str, base_url: str
) -> SignOut:
    """Sign (both entry points: the route above and ``SignFastPath``); raises PetitionError."""
    petition = svc.petition(slug)
    form = SignForm(
        name=body.name,
        email=body.email,
        country=body.country,
        postcode=body.postcode,
        comment=body.comment,
        consent_updates=body.consent_updates,
        consent_public=body.consent_public,
        pow=body.pow,
        idempotency_key=body.idempotency_key or idempotency_header,
    )
    result = await svc.sign(petition, form, ip, base_url)
    if result.status == "check_your_email":
        message = "Thank you! Please confirm your signature with the link we e-mailed you."
    else:
        message = "Thank you! Your signature is recorded."
    return SignOut(status=result.status, message=message, counts=counts_out(petition, result.counts))  # type: ignore[arg-type]


class SignFastPath:
    """ASGI middleware answering ``POST /v1/petitions/{slug}/signatures`` before the framework's routing.

    Why: in a viral burst this one operation is nearly all the traffic, and per request the router walk, dependency
    resolution and response validation cost more CPU than signing itself (measured: about 60%).  Same semantics as
    the documented route (which stays in OpenAPI and answers when this middleware is not installed): the body is
    validated by the same ``SignIn`` model, refusals use the same error envelope and codes.  Everything else passes
    straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") != "POST" or not path.startswith(_SIGN_PREFIX) or not path.endswith(_SIGN_SUFFIX):
            await self.app(scope, receive, send)
            return
        slug = path[len(_SIGN_PREFIX) : -len(_SIGN_SUFFIX)]
        app = scope.get("app")
        svc = getattr(app.state, "petition", None) if app is not None else None
        if not slug or "/" in slug or svc is None:
            await self.app(scope, receive, send)
            return
        try:
            status, payload, extra = await self._handle(scope, receive, svc, slug)
        except Exception:
            log.exception("unexpected error on POST %s", path)
            status, payload, extra = 500, envelope("internal_error", "internal error; see the server log"), []
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _handle(
        self, scope: Scope, receive: Receive, svc: PetitionService, slug: str
    ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, envelope("bad_request", "the client went away"), []
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_SIGN_BODY:
                return 413, envelope("upload_too_large", f"a signature is at most {MAX_SIGN_BODY} bytes"), []
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        headers = dict(scope.get("headers") or ())
        idem_raw = headers.get(b"idempotency-key")
        idem = idem_raw.decode("latin-1") if idem_raw is not None else None
        problems: list[dict[str, Any]] = []
        if len(slug) > 100:
            problems.append({"loc": ["path", "slug"], "msg": "String should have at most 100 characters"})
        if idem is not None and len(idem) > 64:
            problems.append({"loc": ["header", "idempotency-key"], "msg": "String should have at most 64 characters"})
        body: SignIn | None = None
        try:
            body = SignIn.model_validate_json(b"".join(chunks))
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_context=False, include_input=False):
                problems.append({"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]})
        if problems or body is None:
            first = problems[0]
            where = ".".join(str(p) for p in first["loc"])
            return 422, envelope("validation_error", f"{where}: {first['msg']}", problems), []
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        host = headers.get(b"host", b"").decode("latin-1") or "localhost"
        base_url = f"{scope.get('scheme', 'http')}://{host}"
        try:
            out = await signed(svc, slug, body, idem, ip, base_url)
        except PetitionError as exc:
            extra = [(b"retry-after", str(int(exc.retry_after + 0.999)).encode())] if exc.retry_after else []
            return exc.status, envelope(exc.code, exc.message), extra
        return 202, out.model_dump(), []


@api.post("/{slug}/verify", tags=PUBLIC, summary="Confirm a signature (token from the mail)", status_code=200)
def verify(slug: Slug, body: TokenIn, request: Request) -> dict[str, str]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    try:
        return {"status": svc.verify(petition, body.token)}
    except PetitionError as exc:
        raise api_error(exc) from None


@api.post("/{slug}/unsubscribe", tags=PUBLIC, summary="No more e-mails about this petition", status_code=200)
def unsubscribe(slug: Slug, body: TokenIn, request: Request) -> dict[str, str]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    try:
        svc.unsubscribe(petition, body.token)
    except PetitionError as exc:
        raise api_error(exc) from None
    return {"status": "unsubscribed"}


@api.post("/{slug}/erase", tags=PUBLIC, summary="Delete my signature and data", status_code=200)
def erase(slug: Slug, body: TokenIn, request: Request) -> dict[str, str]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    try:
        svc.erase(petition, body.token)
    except PetitionError as exc:
        raise api_error(exc) from None
    return {"status": "erased"}


# --- operators -------------------------------------------------------------------------------------------------

Manager = Annotated[Principal, Depends(require("manage"))]


@api.post("", response_model=PetitionOut, status_code=201, summary="Create a petition for a case")
def create_petition(body: PetitionIn, request: Request, principal: Manager) -> PetitionOut:
    svc = service(request)
    try:
        with svc.sessions.begin() as session:
            petition = petition_store.create_petition(
                session,
                body.case_id,
                body.slug,
                body.title,
                body.text,
                body.target,
                body.goal,
                starts_at=body.starts_at,
                closes_at=body.closes_at,
            )
    except petition_store.PetitionExists:
        raise ApiError(409, "petition_exists", f"a petition {body.slug!r} already exists") from None
    except petition_store.UnknownCase:
        raise ApiError(404, "unknown_case", f"no case {body.case_id}") from None
    except (InvalidInput, ValueError) as exc:
        raise ApiError(400, "invalid_input", str(exc)) from None
    return petition_out(petition, Counts(0, 0), _now(svc))


@api.post("/{slug}/updates", response_model=UpdateOut, status_code=201, summary="Post an update to signers")
def post_update(slug: Slug, body: UpdateIn, request: Request, principal: Manager) -> UpdateOut:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    with svc.sessions.begin() as session:
        update = petition_store.add_update(session, petition.id, body.title, body.text)
    return UpdateOut(id=update.id, title=update.title, text=update.text, created_at=update.created_at)


def _flag_out(flag: petition_store.FlagInfo) -> FlagOut:
    return FlagOut(
        id=flag.id,
        kind=flag.kind,
        key=flag.key,
        window_start=flag.window_start,
        signatures=flag.signatures,
        status=flag.status,
        note=flag.note,
        resolved_at=flag.resolved_at,
    )


@api.get("/{slug}/flags", response_model=list[FlagOut], summary="Review flags (bursts), detected on request")
def get_flags(
    slug: Slug,
    request: Request,
    principal: Manager,
    status: Annotated[Literal["open", "dismissed", "removed"] | None, Query()] = None,
) -> list[FlagOut]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    return [_flag_out(f) for f in svc.flags(petition, status=status)]


@api.post("/{slug}/flags/{flag_id}", response_model=FlagOut, summary="Dismiss a flag or remove its signatures")
def act_on_flag(
    slug: Slug,
    flag_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: FlagAction,
    request: Request,
    principal: Manager,
) -> FlagOut:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    try:
        flag, _ = svc.resolve_flag(petition, flag_id, body.action, principal.name, body.note)
    except PetitionError as exc:
        raise api_error(exc) from None
    return _flag_out(flag)


@api.post("/{slug}/removals", response_model=RemovedOut, summary="Remove signatures (logged with the reason)")
def remove_signatures(slug: Slug, body: RemoveIn, request: Request, principal: Manager) -> RemovedOut:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    try:
        return RemovedOut(removed=svc.remove(petition, body.ids, body.reason, principal.name))
    except InvalidInput as exc:
        raise ApiError(400, "invalid_input", str(exc)) from None


@api.get("/{slug}/removals", response_model=list[RemovalOut], summary="The removal log")
def get_removals(
    slug: Slug,
    request: Request,
    principal: Manager,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[RemovalOut]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    with svc.read_sessions() as session:
        rows = petition_store.list_removals(session, petition.id, after_id=after_id, limit=limit)
    return [
        RemovalOut(
            id=r.id,
            signature_id=r.signature_id,
            action=r.action,
            previous_status=r.previous_status,
            reason=r.reason,
            actor=r.actor,
            flag_id=r.flag_id,
            removed_at=r.removed_at,
        )
        for r in rows
    ]


def _export_response(svc: PetitionService, petition: PetitionInfo, fmt: str) -> Response:
    """The file with its row count, SHA-256 and signed summary in headers: the summary that comes with a download
    is always the one for these bytes, even while signatures keep arriving between two requests."""
    built, summary = svc.export(petition, fmt)
    return Response(
        built.data,
        media_type=built.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{petition.slug}-signatures.{built.format}"',
            "X-Export-SHA256": built.sha256,
            "X-Export-Rows": str(built.rows),
            "X-Export-Summary": export_mod.summary_header(summary),
            "Cache-Control": "no-store",
        },
    )


_EXPORT_HEADERS = {
    "X-Export-SHA256": {"description": "SHA-256 of the body", "schema": {"type": "string"}},
    "X-Export-Rows": {"description": "verified signatures in the body", "schema": {"type": "integer"}},
    "X-Export-Summary": {
        "description": "base64 of the signed summary's JSON (as GET …/export/summary) for exactly this body",
        "schema": {"type": "string"},
    },
}


@api.get(
    "/{slug}/export.csv",
    summary="Verified signatures for delivery as CSV (name per consent, country)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "headers": _EXPORT_HEADERS}},
)
def export_csv(slug: Slug, request: Request, principal: Manager) -> Response:
    svc = service(request)
    return _export_response(svc, petition_or_404(svc, slug), "csv")


@api.get(
    "/{slug}/export.pdf",
    summary="Verified signatures for delivery as a printable PDF (name per consent, country)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "headers": _EXPORT_HEADERS}},
)
def export_pdf(slug: Slug, request: Request, principal: Manager) -> Response:
    svc = service(request)
    return _export_response(svc, petition_or_404(svc, slug), "pdf")


@api.get(
    "/{slug}/export/summary",
    summary="Signed summary (count, SHA-256 of the CSV or PDF export, Ed25519 signature)",
)
def export_summary(
    slug: Slug,
    request: Request,
    principal: Manager,
    fmt: Annotated[Literal["csv", "pdf"], Query(alias="format", description="the export the hash is of")] = "csv",
) -> dict[str, Any]:
    svc = service(request)
    petition = petition_or_404(svc, slug)
    _, summary = svc.export(petition, fmt)
    return summary


# The app includes ``router``: the API, the public pages, and the service's lifespan.
from takeback.web.ui.petition import pages  # noqa: E402

router = APIRouter(lifespan=lifespan)
router.include_router(api)
router.include_router(pages.router)
