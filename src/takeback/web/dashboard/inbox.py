"""TAKE IT DOWN inbox for platforms: the public request form and the operators' list with 48-hour clocks.

The Act (Pub. L. 119-12, §3) makes a covered platform provide a clear way to ask for removal of a non-consensual
intimate depiction, and remove it within 48 hours of a valid request, with reasonable efforts to remove known
identical copies.  The form asks exactly for the four elements of a valid request, stores the request before
anything else (an acknowledgement e-mail that fails loses nothing), and shows the requester a reference number.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from takeback import store
from takeback.accounts import tokens
from takeback.mail import Mail, MailError, send_mail
from takeback.store import inbox
from takeback.store.models import utcnow
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.operator import _operator
from takeback.web.dashboard.pages import Text, audit_action
from takeback.web.dashboard.render import render

log = logging.getLogger(__name__)
public = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/app/operator/inbox", include_in_schema=False)
FORM_COOKIE = "takeback_request_csrf"


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"“{url[:100]}” is not a web address (it should start with https://)"
    if len(url) > 2048:
        return "a web address is longer than 2048 characters"
    return None


@public.get("/takedown-request")
def request_form(request: Request) -> Response:
    settings = app_state(request).settings
    if not settings.inbox_public_form:
        return render(request, "error.html", 404, user=None, message="There is no such page.")
    token = tokens.new_token()
    response = render(request, "request_form.html", platform=settings.platform_name, csrf_token=token, errors=[],
                      form={})
    response.set_cookie(FORM_COOKIE, token, max_age=7200, httponly=True, samesite="strict",
                        secure=ui.secure(request, settings), path="/takedown-request")
    return response


@public.post("/takedown-request")
def submit_request(
    request: Request,
    csrf_token: Text,
    name: Text = "",
    email: Text = "",
    signature: Text = "",
    urls: Text = "",
    description: Text = "",
    good_faith: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    state = app_state(request)
    settings = state.settings
    if not settings.inbox_public_form:
        return render(request, "error.html", 404, user=None, message="There is no such page.")
    form = {"name": name, "email": email, "signature": signature, "urls": urls, "description": description}
    if not tokens.same(request.cookies.get(FORM_COOKIE), csrf_token):
        return render(request, "request_form.html", 400, platform=settings.platform_name, csrf_token=csrf_token,
                      errors=["The form expired. Please send it again."], form=form)
    links = [line.strip() for line in urls.splitlines() if line.strip()]
    errors: list[str] = []
    if not name.strip():
        errors.append("Your name is missing (so we can contact you).")
    if "@" not in email or len(email) > 320:
        errors.append("An e-mail address is missing (so we can tell you what we did).")
    if not signature.strip():
        errors.append("Your signature is missing: type your full name as your electronic signature.")
    if not links:
        errors.append("Give the web address (URL) of each image or video to remove.")
    elif len(links) > inbox.MAX_URLS:
        errors.append(f"Give at most {inbox.MAX_URLS} web addresses per request (send another for the rest).")
    errors.extend(problem for problem in map(_url_problem, links) if problem)
    if good_faith != "yes":
        errors.append("Confirm the statement that the image or video was published without consent.")
    if len(name) > 200 or len(signature) > 200:
        errors.append("Name and signature must be at most 200 characters.")
    if errors:
        return render(request, "request_form.html", 400, platform=settings.platform_name, csrf_token=csrf_token,
                      errors=errors, form=form)
    ip = ui.client_ip(request)
    with state.store.sessions() as session:
        recent = inbox.count_recent_requests(session, ip, utcnow() - timedelta(hours=1))
        if recent >= settings.inbox_max_per_ip_per_hour:
            return render(request, "request_form.html", 429, platform=settings.platform_name, csrf_token=csrf_token,
                          errors=["Too many requests from your network in the last hour. Please try again later."],
                          form=form)
        filed = inbox.file_request(session, name=name.strip(), email=email.strip(), signature=signature.strip(),
                                   urls=links, description=description.strip(), good_faith=True, ip=ip)
        store.audit(session, "inbox_request_received", subject=f"inbox:{filed.id}", ip=ip)
        session.commit()
    mailed = True
    try:
        send_mail(settings, Mail(
            to=(filed.requester_email,),
            subject=f"Your removal request {filed.id} to {settings.platform_name}",
            text=(
                f"We received your removal request (reference {filed.id}) on "
                f"{filed.received_at:%Y-%m-%d %H:%M} UTC for {len(filed.urls)} web address(es).\n\n"
                f"Under the TAKE IT DOWN Act we remove the depiction within 48 hours, by {filed.due_at:%Y-%m-%d %H:%M}"
                " UTC, and make reasonable efforts to remove identical copies. We will write to you when it is done.\n"
            ),
        ))
    except MailError as exc:  # the request is stored; only the receipt is missing
        mailed = False
        log.warning("inbox request %s: acknowledgement not sent: %s", filed.id, exc)
    response = render(request, "request_done.html", platform=settings.platform_name, filed=filed, mailed=mailed)
    response.delete_cookie(FORM_COOKIE, path="/takedown-request")
    return response


@router.get("/")
def inbox_page(request: Request, status: str = "") -> Response:
    current = _operator(request)
    if isinstance(current, Response):
        return current
    with app_state(request).store.sessions() as session:
        requests = inbox.list_requests(session, status=status or None)
    now = utcnow()
    return render(request, "inbox.html", user=current.user, csrf_token=current.csrf_token, requests=requests,
                  now=now, status=status)


@router.post("/{request_id}/decide")
def decide(
    request: Request,
    request_id: int,
    csrf_token: Text,
    decision: Annotated[str, Form(max_length=16)],
    note: Text = "",
    copies_removed: Annotated[int, Form(ge=0, le=1_000_000)] = 0,
) -> Response:
    current = _operator(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return render(request, "error.html", 400, user=current.user, message="The form expired. Please try again.")
    state = app_state(request)
    try:
        with state.store.sessions() as session:
            decided = inbox.decide(session, request_id, decision, user_id=current.user.id, note=note,
                                   copies_removed=copies_removed)
            session.commit()
    except inbox.UnknownRequest:
        return render(request, "error.html", 404, user=current.user, message="There is no such request.")
    except (inbox.AlreadyDecided, store.InvalidInput) as exc:
        return render(request, "error.html", 400, user=current.user,
                      message=f"Not changed: {type(exc).__name__.replace('AlreadyDecided', 'already decided')}.")
    audit_action(request, f"inbox_request_{decided.status}", user_id=current.user.id, subject=f"inbox:{request_id}",
                 detail={"copies_removed": copies_removed, "hours_left": round(decided.hours_left(), 1)})
    try:
        send_mail(state.settings, Mail(
            to=(decided.requester_email,),
            subject=f"Your removal request {decided.id}: {decided.status}",
            text=(f"Your removal request {decided.id} to {state.settings.platform_name} was {decided.status}.\n"
                  + (f"\n{note}\n" if note else "")
                  + (f"\nWe also removed {copies_removed} identical copies.\n" if copies_removed else "")),
        ))
    except MailError as exc:
        log.warning("inbox request %s: decision not e-mailed: %s", decided.id, exc)
    return RedirectResponse("/app/operator/inbox/", status_code=303)
