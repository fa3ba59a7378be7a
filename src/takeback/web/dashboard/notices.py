"""Notices in the dashboard: draft one for chosen findings on a legal basis (the form names every missing element),
review the exact text, send it over SMTP, log the party's reply, and see deadlines.  All of it goes through
``takeback.takedown.service``, the same code the API and the CLI use.

Which findings a draft may name follows their stages (``store.reports.draft_choices``): new and back again ones;
notified ones only for a follow-up to someone not yet told (so the same party is not sent the same request twice
while it still has to answer); never removed ones.  The form offers exactly those, and the POST checks them again,
since a stage can change between showing the form and sending it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from takeback import store
from takeback.store import reports
from takeback.store.models import utcnow
from takeback.takedown import service
from takeback.takedown.notices import (
    BASES,
    DISCLAIMER,
    EXPLANATIONS,
    GDPR_GROUNDS,
    NOTICE_TYPES,
    IncompleteNotice,
    InvalidNotice,
)
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.pages import Text, _case_access, audit_action
from takeback.web.dashboard.render import render

router = APIRouter(prefix="/app/cases/{case_id}/notices", include_in_schema=False)
#: Yes/no statements a basis may require, as the form's checkbox names.
STATEMENTS = ("good_faith", "accuracy_under_penalty_of_perjury", "good_faith_not_consensual", "bona_fide")
TEXTS = ("work", "explanation", "consent_information", "depiction_description", "additional_information")


def details_from_form(basis: str, form: dict[str, Any]) -> dict[str, Any]:
    """The notice details for ``basis`` from the form's flat fields: only the fields that basis has (the notice
    models refuse unknown ones), statements as booleans."""
    fields = NOTICE_TYPES[basis].model_fields
    details: dict[str, Any] = {
        "sender": {k: str(form.get(f"sender_{k}", "")).strip() for k in ("name", "email", "postal_address", "phone",
                                                                          "acting_for")},
        "signature": str(form.get("signature", "")).strip(),
    }
    for name in STATEMENTS:
        if name in fields:
            details[name] = form.get(name) == "yes"
    for name in TEXTS:
        if name in fields and str(form.get(name, "")).strip():
            details[name] = str(form.get(name)).strip()
    if "grounds" in fields:
        details["grounds"] = [g for g in form.get("grounds", []) if g in GDPR_GROUNDS]
    return details


def _page(request: Request, case_id: int, status: int = 200, **extra: Any) -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, role = access
    with app_state(request).store.sessions() as session:
        case = store.get_case(session, case_id)
        notices = store.list_notices(session, case_id)
        choices = reports.draft_choices(session, case_id)
        findings = store.list_findings(session, case_id, limit=500)
    to_do = [(f, choices[f.id]) for f in findings if f.id in choices and choices[f.id].stage in ("new", "back")]
    notified = [(f, told_text(choices[f.id].told)) for f in findings
                if f.id in choices and choices[f.id].stage == "notified"]
    removed = sum(1 for c in choices.values() if c.stage == "removed")
    context: dict[str, Any] = {"missing": [], "problems": [], "form": {}, "ticked": [], **extra}
    return render(request, "notices.html", status, user=current.user, csrf_token=current.csrf_token, case=case,
                  role=role, notices=notices, to_do=to_do, notified=notified, removed=removed,
                  stage_labels=reports.STAGE_LABELS, bases=BASES, explanations=EXPLANATIONS, disclaimer=DISCLAIMER,
                  grounds=GDPR_GROUNDS, now=utcnow(), **context)


def told_text(told: frozenset[str]) -> str:
    """Who was told, for the person to read: addresses and web forms as they are; a notice that had neither (a
    party with no contact) as such."""
    shown = sorted(a for a in told if not a.startswith("party:"))
    if len(shown) < len(told):
        shown.append("a party without an address")
    return ", ".join(shown)


def refused_findings(choices: dict[int, reports.DraftChoice], urls: dict[int, str], finding_ids: list[int],
                     recipient: str | None) -> list[str]:
    """Why some ticked findings cannot go into this notice (empty: they all can).  Findings not in the case are
    left to ``service.draft_notice``, which refuses them without saying whose they are."""
    to = reports.addressee(recipient)
    problems = []
    for finding_id in finding_ids:
        choice = choices.get(finding_id)
        if choice is None or choice.allows(to):
            continue
        url = urls[finding_id]
        if choice.stage == "removed":
            problems.append(f"{url} is taken down already: it needs no notice (if it comes back, it shows as back "
                            "again and you can write about it then).")
        elif not to:
            problems.append(f"{url} was already notified ({told_text(choice.told)}): a follow-up goes to someone "
                            "else. Type that party's e-mail address under “Send to”.")
        else:
            problems.append(f"{url} was already sent to {recipient}, which has not answered it yet: wait for the "
                            "answer, or send this one to another party (the host, the registrar, a search engine).")
    return problems


@router.get("/")
def notices_page(request: Request, case_id: int) -> Response:
    return _page(request, case_id)


@router.post("/")
async def draft(request: Request, case_id: int) -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    raw = await request.form()
    form: dict[str, Any] = {k: raw.get(k) for k in raw}
    form["grounds"] = raw.getlist("grounds")
    finding_ids = [int(v) for v in raw.getlist("finding") if str(v).isdigit()]
    if not ui.csrf_ok(current, form):
        return render(request, "error.html", 400, user=current.user, message="The form expired. Please try again.")
    basis = str(form.get("basis", ""))
    if basis not in NOTICE_TYPES:
        return _page(request, case_id, 400, problems=["Choose the kind of notice."], form=form, ticked=finding_ids)
    if not finding_ids:
        return _page(request, case_id, 400, problems=["Tick the findings the notice is about."], form=form)
    recipient = str(form.get("recipient", "")).strip() or None
    sessions = app_state(request).store.sessions
    with sessions() as session:
        choices = reports.draft_choices(session, case_id)
        urls = {f.id: f.url for f in (store.get_finding(session, i) for i in finding_ids if i in choices) if f}
    refused = refused_findings(choices, urls, finding_ids, recipient)
    if refused:
        return _page(request, case_id, 400, problems=refused, form=form, ticked=finding_ids)
    try:
        with sessions() as session:
            notice = service.draft_notice(session, case_id, finding_ids, basis, details_from_form(basis, form),
                                          recipient=recipient)
            session.commit()
    except IncompleteNotice as exc:
        return _page(request, case_id, 400, missing=list(exc.missing), form=form, ticked=finding_ids)
    except (InvalidNotice, service.TakedownError) as exc:
        problems = exc.problems if isinstance(exc, InvalidNotice) else [str(exc)]
        return _page(request, case_id, 400, problems=problems, form=form, ticked=finding_ids)
    audit_action(request, "notice_drafted", user_id=current.user.id, case_id=case_id, subject=f"notice:{notice.id}",
                 detail={"basis": basis, "findings": finding_ids})
    return RedirectResponse(f"/app/cases/{case_id}/notices/{notice.id}", status_code=303)


def _notice_page(request: Request, case_id: int, notice_id: int, status: int = 200, **extra: Any) -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    with app_state(request).store.sessions() as session:
        notice = store.get_notice(session, notice_id)
        if notice is None or notice.case_id != case_id:
            return render(request, "error.html", 404, user=current.user, message="There is no such notice.")
        urls = store.notice_urls(session, notice_id)
        events = store.list_notice_events(session, notice_id)
        case = store.get_case(session, case_id)
    context: dict[str, Any] = {"error": None, "message": None, **extra}
    return render(request, "notice.html", status, user=current.user, csrf_token=current.csrf_token, case=case,
                  notice=notice, urls=urls, events=events, states=service.MANUAL_STATES, now=utcnow(), **context)


@router.get("/{notice_id}")
def notice_page(request: Request, case_id: int, notice_id: int) -> Response:
    return _notice_page(request, case_id, notice_id)


@router.post("/{notice_id}/send")
def send(request: Request, case_id: int, notice_id: int, csrf_token: Text) -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return render(request, "error.html", 400, user=current.user, message="The form expired. Please try again.")
    state = app_state(request)
    try:
        with state.store.sessions() as session:
            notice = store.get_notice(session, notice_id)
            if notice is None or notice.case_id != case_id:
                return render(request, "error.html", 404, user=current.user, message="There is no such notice.")
            outcome = service.send_notice(session, state.settings, notice_id)
            session.commit()
    except (service.TakedownError, store.InvalidTransition) as exc:
        return _notice_page(request, case_id, notice_id, 400, error=str(exc))
    audit_action(request, "notice_sent" if outcome.sent else "notice_send_failed", user_id=current.user.id,
                 case_id=case_id, subject=f"notice:{notice_id}")
    if not outcome.sent:
        return _notice_page(request, case_id, notice_id, 502,
                            error=f"The mail server did not take it ({outcome.error}); it is queued to try again.")
    return _notice_page(request, case_id, notice_id, message="Sent.")


@router.post("/{notice_id}/mark")
def mark(
    request: Request, case_id: int, notice_id: int, csrf_token: Text,
    state: Annotated[str, Form(max_length=20)], note: Text = "",
) -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return render(request, "error.html", 400, user=current.user, message="The form expired. Please try again.")
    app = app_state(request)
    try:
        with app.store.sessions() as session:
            notice = store.get_notice(session, notice_id)
            if notice is None or notice.case_id != case_id:
                return render(request, "error.html", 404, user=current.user, message="There is no such notice.")
            service.mark_notice(session, app.settings, notice_id, state, note=note)
            session.commit()
    except (service.TakedownError, store.InvalidTransition) as exc:
        return _notice_page(request, case_id, notice_id, 400, error=str(exc))
    audit_action(request, f"notice_{state}", user_id=current.user.id, case_id=case_id, subject=f"notice:{notice_id}")
    return RedirectResponse(f"/app/cases/{case_id}/notices/{notice_id}", status_code=303)
