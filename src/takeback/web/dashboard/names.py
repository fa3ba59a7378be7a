"""Onboarding on an existing case: add a name, alias or username for the scanner to look for, or remove one.

Names are stored through ``store.add_case_name`` (the same call the API and the CLI make); adding one that is already
there is harmless.  Removing one (a misspelling, an old username she no longer wants searched) stops later scans
looking for it and keeps what was already found: findings are evidence and outlive the name that led to them.
Owners and advocates may do both, each audited; anyone else gets the case's 404, and a name of another case is
"not found" here too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from takeback import store
from takeback.store.case_names import VALUE_MAX
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.access import EXPIRED, Text, audit_action, case_access, forbidden, not_found
from takeback.web.dashboard.overview import NAME_KINDS, case_view

router = APIRouter(prefix="/app/cases/{case_id}", include_in_schema=False)


@router.post("/names")
def add_name(request: Request, case_id: int, csrf_token: Text, value: Annotated[str, Form(max_length=1000)] = "",
             kind: Annotated[str, Form(max_length=20)] = "name") -> Response:
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return forbidden(request, current, EXPIRED, 400)
    value = " ".join(value.split())
    if kind not in NAME_KINDS:
        return case_view(request, current, role, case_id, http_status=400,
                         names_error="Choose whether it is a name, an alias or a username.")
    if not value or len(value) > VALUE_MAX:
        return case_view(request, current, role, case_id, http_status=400,
                         names_error=f"Type a name of 1 to {VALUE_MAX} characters.")
    try:
        with app_state(request).store.sessions() as session:
            added = store.add_case_name(session, case_id, value, kind)
            session.commit()
    except store.InvalidInput:
        return case_view(request, current, role, case_id, http_status=400,
                         names_error="That name cannot be stored (it contains characters that are not text).")
    audit_action(request, "case_name_added", user_id=current.user.id, case_id=case_id, subject=f"name:{added.id}",
                 detail={"kind": kind})
    return RedirectResponse(f"/app/cases/{case_id}", status_code=303)


@router.post("/names/{name_id}/remove")
def remove_name(request: Request, case_id: int, name_id: int, csrf_token: Text) -> Response:
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return forbidden(request, current, EXPIRED, 400)
    with app_state(request).store.sessions() as session:
        kind = next((n.kind for n in store.list_case_names(session, case_id) if n.id == name_id), None)
        removed = kind is not None and store.remove_case_name(session, case_id, name_id)
        session.commit()
    if not removed:
        return not_found(request, current, "That name is not (or no longer) watched on this case.")
    audit_action(request, "case_name_removed", user_id=current.user.id, case_id=case_id, subject=f"name:{name_id}",
                 detail={"kind": kind})
    return RedirectResponse(f"/app/cases/{case_id}", status_code=303)
