"""The case's petition in the dashboard: counts and goal, signatures over time, countries, review flags to inspect
and act on, the removal log, and the signed export for delivery.

Everything goes through the petition service the JSON API uses (``PetitionService`` on ``app.state.petition``):
counts, breakdowns, burst detection, resolving flags (removals are logged there with who and why), and the
export with its Ed25519-signed summary.  Signers' names and comments are shown as text (autoescaped); their
e-mail addresses are shown masked, enough to spot a pattern in a burst without handing anyone the list.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from takeback import store
from takeback.petition.service import PetitionError, PetitionService, countries
from takeback.store import petitions as petition_store
from takeback.store import reports, signatures
from takeback.store.accounts import UiSessionInfo
from takeback.store.errors import InvalidInput
from takeback.store.models import utcnow
from takeback.store.petitions import PetitionInfo
from takeback.web.auth import app_state
from takeback.web.dashboard import charts
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.access import EXPIRED, Text, audit_action, case_access, forbidden, not_found
from takeback.web.dashboard.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/app/cases/{case_id}/petition", include_in_schema=False)
#: Signatures listed under one flag for inspection (the decision covers all of them, listed or not).
INSPECT_LIMIT = 100
Slug = Annotated[str, Form(max_length=100)]


def _service(request: Request) -> PetitionService:
    return request.app.state.petition  # type: ignore[no-any-return]


def mask_email(email: str) -> str:
    """``j…@example.org``: the domain and first letter show a burst's pattern, not the person's address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


def _choose(request: Request, case_id: int, slug: str) -> tuple[list[PetitionInfo], PetitionInfo | None] | None:
    """The case's petitions and the one asked for (the newest by default); None for a slug not of this case."""
    with app_state(request).store.sessions() as session:
        mine = petition_store.list_petitions(session, case_id)
    if not slug:
        return mine, (mine[-1] if mine else None)
    chosen = next((p for p in mine if p.slug == slug), None)
    return (mine, chosen) if chosen is not None else None


def _page(request: Request, current: UiSessionInfo, case_id: int, slug: str = "", status: int = 200,
          **extra: Any) -> Response:
    chosen = _choose(request, case_id, slug)
    if chosen is None:
        return not_found(request, current, "This case has no petition at that address.")
    mine, petition = chosen
    with app_state(request).store.sessions() as session:
        case = store.get_case(session, case_id)
    context: dict[str, Any] = {"error": None, "message": None, "form": {}, **extra}
    if petition is None:
        return render(request, "petition.html", status, user=current.user, csrf_token=current.csrf_token, case=case,
                      petition=None, petitions=mine, **context)
    svc = _service(request)
    counts = svc.counts(petition, fresh=True)
    flags = svc.flags(petition)
    with svc.read_sessions() as session:
        timeline = reports.signatures_timeline(session, petition.id)
        inspect = {f.id: signatures.flag_signatures(session, petition.id, f.id, limit=INSPECT_LIMIT)
                   for f in flags if f.status == "open"}
        removals = petition_store.list_removals(session, petition.id, limit=1000)[-50:]
    names = countries()
    by_country = [(names.get(code, code), code, c) for code, c in svc.breakdown(petition, "country")]
    by_country.sort(key=lambda row: (-row[2].verified, -row[2].pending, row[0]))
    chart = charts.line_chart(
        "Signatures over time", [d.day for d in timeline],
        {"verified": [d.verified for d in timeline], "pending": [d.pending for d in timeline]}, ident="signatures",
    )
    country_chart = charts.bar_chart("Verified signatures by country", [(n, c.verified) for n, _, c in by_country[:15]],
                                     ident="countries")
    return render(
        request, "petition.html", status, user=current.user, csrf_token=current.csrf_token, case=case,
        petition=petition, petitions=mine, counts=counts, progress=min(1.0, counts.verified / petition.goal),
        is_open=petition.is_open(utcnow()), timeline=timeline, chart=chart, by_country=by_country,
        country_chart=country_chart, flags=flags, inspect=inspect, removals=list(reversed(removals)),
        comments=svc.page_data(petition)["comments"], mask=mask_email, **context,
    )


@router.get("")
def petition_page(request: Request, case_id: int, p: str = "") -> Response:
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    return _page(request, current, case_id, p[:100])


@router.post("")
def create_petition(
    request: Request, case_id: int, csrf_token: Text, slug: Slug = "", title: Annotated[str, Form(max_length=200)] = "",
    target: Annotated[str, Form(max_length=200)] = "", goal: Annotated[str, Form(max_length=12)] = "",
    text: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Start the case's petition (the same store call as ``POST /v1/petitions``)."""
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return forbidden(request, current, EXPIRED, 400)
    form = {"slug": slug, "title": title, "target": target, "goal": goal, "text": text}
    slug = slug.strip().lower()
    problems = [
        message for missing, message in (
            (not title.strip(), "Give the petition a title."),
            (not target.strip(), "Say who the petition is addressed to."),
            (not text.strip(), "Write the petition's text."),
            (not goal.strip().isdigit() or not 1 <= int(goal.strip()) <= 2**31 - 1,
             "Give a goal: the number of signatures you are aiming for."),
            (not slug or not set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"),
             "Choose an address made of lower-case letters, digits and dashes."),
        ) if missing
    ]
    if problems:
        return _page(request, current, case_id, status=400, error=" ".join(problems), form=form)
    try:
        with app_state(request).store.sessions() as session:
            created = petition_store.create_petition(session, case_id, slug, title.strip(), text.strip(),
                                                     target.strip(), int(goal.strip()))
            session.commit()
    except petition_store.PetitionExists:
        return _page(request, current, case_id, status=409, error="That address is taken; choose another.",
                     form=form)
    except (InvalidInput, ValueError) as exc:
        return _page(request, current, case_id, status=400, error=f"The petition could not be created: {exc}",
                     form=form)
    audit_action(request, "petition_created", user_id=current.user.id, case_id=case_id,
                 subject=f"petition:{created.id}")
    return RedirectResponse(f"/app/cases/{case_id}/petition?p={created.slug}", status_code=303)


@router.post("/flags/{flag_id}")
def act_on_flag(
    request: Request, case_id: int, flag_id: int, csrf_token: Text,
    action: Annotated[str, Form(max_length=10)], note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Dismiss a flag (the burst is genuine) or remove its signatures, which needs a reason: the removal log keeps
    it with who decided, and the audit log records the decision."""
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return forbidden(request, current, EXPIRED, 400)
    chosen = _choose(request, case_id, "")
    petitions = chosen[0] if chosen else []
    with app_state(request).store.sessions() as session:
        petition = next((p for p in petitions if petition_store.get_flag(session, p.id, flag_id)), None)
    if petition is None:
        return not_found(request, current, "There is no such review flag in this case.")
    if action not in ("dismiss", "remove"):
        return _page(request, current, case_id, petition.slug, 400, error="Choose to keep or to remove them.")
    note = note.strip()
    if action == "remove" and not note:
        return _page(request, current, case_id, petition.slug, 400,
                     error="Say why you remove these signatures: the reason is kept in the removal log.")
    try:
        flag, removed = _service(request).resolve_flag(petition, flag_id, action, current.user.email, note)
    except (PetitionError, InvalidInput) as exc:
        return _page(request, current, case_id, petition.slug, 400, error=str(exc))
    audit_action(request, "petition_flag_dismissed" if action == "dismiss" else "petition_signatures_removed",
                 user_id=current.user.id, case_id=case_id, subject=f"petition-flag:{flag.id}",
                 detail={"petition": petition.slug, "removed": removed, "reason": note})
    return RedirectResponse(f"/app/cases/{case_id}/petition?p={petition.slug}", status_code=303)


def _export_target(request: Request, case_id: int, p: str) -> tuple[UiSessionInfo, PetitionInfo] | Response:
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    chosen = _choose(request, case_id, p[:100])
    if chosen is None or chosen[1] is None:
        return not_found(request, current, "This case has no petition to export.")
    return current, chosen[1]


@router.get("/export.csv")
def export_csv(request: Request, case_id: int, p: str = "") -> Response:
    """The verified signatures for delivery (names only of those who agreed), as the API's export."""
    target = _export_target(request, case_id, p)
    if isinstance(target, Response):
        return target
    current, petition = target
    built, _summary = _service(request).export(petition)
    audit_action(request, "petition_exported", user_id=current.user.id, case_id=case_id,
                 subject=f"petition:{petition.id}", detail={"rows": built.rows, "sha256": built.sha256})
    return Response(built.csv, media_type="text/csv; charset=utf-8", headers={
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{petition.slug}-signatures.csv"',
        "X-Export-SHA256": built.sha256,
        "X-Export-Rows": str(built.rows),
    })


@router.get("/export-summary.json")
def export_summary(request: Request, case_id: int, p: str = "") -> Response:
    """The signed summary that goes with the CSV: the recipient checks the count and the CSV's hash with it."""
    target = _export_target(request, case_id, p)
    if isinstance(target, Response):
        return target
    _current, petition = target
    _built, summary = _service(request).export(petition)
    return JSONResponse(summary, headers={
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{petition.slug}-summary.json"',
    })
