"""Who may see a dashboard page: the checks every page module shares.

Kept apart from the pages so that each page module (cases, findings, scans, petition, notices, operators) imports
the same rules instead of its neighbours: a signed-in session with the second factor done, then
``store.case_role`` for anything under a case, answering 404 to non-members so a case's existence is not revealed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from takeback import store
from takeback.store.accounts import UiSessionInfo
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.render import render

Text = Annotated[str, Form(max_length=10_000)]
EXPIRED = "The form expired. Please go back and try again."


def signed_in(request: Request) -> UiSessionInfo | Response:
    """The fully signed-in session, or the redirect to give instead."""
    current = ui.current(request)
    if current is None:
        return ui.to_login(request)
    if not current.verified:
        return RedirectResponse("/app/login/totp", status_code=303)
    return current


def forbidden(request: Request, current: UiSessionInfo | None, message: str, status: int = 403) -> Response:
    return render(request, "error.html", status, user=current.user if current else None, message=message)


def not_found(request: Request, current: UiSessionInfo, message: str = "") -> Response:
    return render(request, "error.html", 404, user=current.user,
                  message=message or "There is no such page, or it is not yours.")


def case_access(request: Request, case_id: int) -> tuple[UiSessionInfo, str] | Response:
    """The session and its role on the case, or the response to give instead (sign-in redirect, 404)."""
    current = signed_in(request)
    if isinstance(current, Response):
        return current
    with app_state(request).store.sessions() as session:
        role = store.case_role(session, case_id, current.user.id)
    if role is None:
        return not_found(request, current)
    return current, role


def audit_action(request: Request, action: str, *, user_id: int | None, case_id: int | None = None, subject: str = "",
                 detail: dict[str, Any] | str = "") -> None:
    with app_state(request).store.sessions() as session:
        store.audit(session, action, user_id=user_id, case_id=case_id, subject=subject, detail=detail,
                    ip=ui.client_ip(request))
        session.commit()
