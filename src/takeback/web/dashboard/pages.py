"""Dashboard pages: sign-in (password, then TOTP when set up), the person's cases, one case, members, the audit log,
and the account page.  Every case page asks ``store.case_role`` first and answers 404 to non-members, so a case's
existence is not revealed to others.  Every POST checks the session's CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from takeback import store
from takeback.accounts import passwords, tokens, totp
from takeback.signals import interop
from takeback.store.accounts import UiSessionInfo
from takeback.store.models import utcnow
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.access import Text, audit_action, case_access, forbidden, not_found, signed_in
from takeback.web.dashboard.overview import case_view
from takeback.web.dashboard.render import render
from takeback.web.storage import NewSignal

router = APIRouter(prefix="/app", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
__all__ = ["Text", "audit_action", "not_found", "router"]


# Older page modules import these from here.
_signed_in = signed_in
_forbidden = forbidden
_case_access = case_access


# --- static ------------------------------------------------------------------------------------------------------


@router.get("/static/app.css")
def stylesheet() -> Response:
    return PlainTextResponse((STATIC / "app.css").read_text(), media_type="text/css",
                             headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


# --- sign-in -----------------------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/app/") -> Response:
    token = tokens.new_token()
    response = render(request, "login.html", next=ui.safe_next(next), csrf_token=token, error=None)
    settings = app_state(request).settings
    response.set_cookie(ui.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=ui.secure(request, settings), path="/app/login")
    return response


@router.post("/login")
def login(request: Request, email: Text, password: Text, csrf_token: Text, next: Text = "/app/") -> Response:
    target = ui.safe_next(next)
    if not tokens.same(request.cookies.get(ui.LOGIN_CSRF_COOKIE), csrf_token):
        return render(request, "login.html", 400, next=target, csrf_token=csrf_token,
                      error="The form expired. Please try again.")
    email = store.accounts.normalise_email(email)
    if ui.throttled(request, email):
        audit_action(request, "login_throttled", user_id=None, subject=email)
        return render(request, "login.html", 429, next=target, csrf_token=csrf_token,
                      error="Too many attempts. Please wait a few minutes before trying again.")
    state = app_state(request)
    with state.store.sessions() as session:
        user = store.get_user_by_email(session, email)
    ok = passwords.verify_password(user.password_hash if user else passwords.DUMMY_HASH, password)
    if user is None or not ok or user.disabled:
        audit_action(request, "login_failed", user_id=user.id if user else None, subject=email)
        return render(request, "login.html", 401, next=target, csrf_token=csrf_token,
                      error="That e-mail address and password do not match.")
    with state.store.sessions() as session:
        if passwords.needs_rehash(user.password_hash):
            store.update_user(session, user.id, password_hash=passwords.hash_password(password))
        store.update_user(session, user.id, last_login_at=utcnow())
        session.commit()
    audit_action(request, "login", user_id=user.id, subject=email)
    if user.totp_enabled:
        response: Response = RedirectResponse(f"/app/login/totp?next={target}", status_code=303)
        ui.start(request, response, user.id, verified=False)
    else:
        response = RedirectResponse(target, status_code=303)
        ui.start(request, response, user.id, verified=True)
    response.delete_cookie(ui.LOGIN_CSRF_COOKIE, path="/app/login")
    return response


@router.get("/login/totp")
def totp_page(request: Request, next: str = "/app/") -> Response:
    current = ui.current(request)
    if current is None:
        return ui.to_login(request)
    return render(request, "totp.html", ui_session=current, next=ui.safe_next(next), error=None)


@router.post("/login/totp")
def totp_submit(request: Request, code: Text, csrf_token: Text, next: Text = "/app/") -> Response:
    current = ui.current(request)
    if current is None:
        return ui.to_login(request)
    target = ui.safe_next(next)
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, None, "The form expired. Please sign in again.", 400)
    user = current.user
    email = user.email
    if ui.throttled(request, email):
        return render(request, "totp.html", 429, ui_session=current, next=target,
                      error="Too many attempts. Please wait a few minutes.")
    step = totp.accept(user.totp_secret or "", code, user.totp_last_step) if user.totp_enabled else None
    if step is None:
        audit_action(request, "login_failed", user_id=user.id, subject=email, detail="second factor")
        return render(request, "totp.html", 401, ui_session=current, next=target,
                      error="That code is not right (or was already used). Try the newest one.")
    with app_state(request).store.sessions() as session:
        store.update_user(session, user.id, totp_last_step=step)
        store.mark_ui_session_verified(session, current.id)
        session.commit()
    audit_action(request, "login_second_factor", user_id=user.id, subject=email)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Text) -> Response:
    current = ui.current(request)
    response = RedirectResponse("/app/login", status_code=303)
    if current is not None and ui.csrf_ok(current, {"csrf_token": csrf_token}):
        audit_action(request, "logout", user_id=current.user.id, subject=current.user.email)
        ui.end(request, response)
    return response


# --- cases -------------------------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    with app_state(request).store.sessions() as session:
        cases = store.user_cases(session, current.user.id)
    return render(request, "cases.html", user=current.user, csrf_token=current.csrf_token, cases=cases)


@router.get("/cases/new")
def new_case_page(request: Request) -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    return render(request, "case_new.html", user=current.user, csrf_token=current.csrf_token, error=None)


@router.post("/cases/new")
def create_case(request: Request, name: Text, csrf_token: Text, names: Text = "") -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, current, "The form expired. Please go back and try again.", 400)
    name = name.strip()
    if not name or len(name) > 200:
        return render(request, "case_new.html", 400, user=current.user, csrf_token=current.csrf_token,
                      error="Give the case a name of at most 200 characters.")
    aliases = [line.strip() for line in names.splitlines() if line.strip()][:50]
    with app_state(request).store.sessions() as session:
        case = store.create_case(session, name)
        store.add_member(session, case.id, current.user.id, "owner")
        for alias in aliases:
            store.add_case_name(session, case.id, alias[:200], "name")
        store.audit(session, "case_created", user_id=current.user.id, case_id=case.id, subject=f"case:{case.id}",
                    ip=ui.client_ip(request))
        session.commit()
    return RedirectResponse(f"/app/cases/{case.id}", status_code=303)


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: int, status: str = "", kind: str = "", paused: str = "") -> Response:
    """The case's overview: charts, protected hashes, the latest scan, findings (filtered), names, people.  It
    reloads itself while a scan runs, unless ``paused``."""
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, role = access
    return case_view(request, current, role, case_id, status=status, kind=kind, live=not paused)


@router.post("/cases/{case_id}/hashes")
def load_hashes(request: Request, case_id: int, csrf_token: Text,
                file: Annotated[UploadFile, File()]) -> Response:
    """Load a hash list made on the person's device into the case's bank.  File names that a list may carry
    (``--keep-names``) are dropped: the server keeps hashes only."""
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, current, "The form expired. Please go back and try again.", 400)
    state = app_state(request)
    data = file.file.read(state.settings.max_upload_bytes + 1)
    if len(data) > state.settings.max_upload_bytes:
        return case_view(request, current, role, case_id, http_status=413, error="That file is too large.")
    try:
        parsed = interop.read_signals(data.decode("utf-8"), "auto")
    except (UnicodeDecodeError, ValueError):
        return case_view(request, current, role, case_id, http_status=400,
                          error="That file is not a hash list. Make one with the takeback hash command.")
    if not parsed.signals:
        return case_view(request, current, role, case_id, http_status=400,
                          error="No hashes found in that file.", imported=parsed)
    name = f"case-{case_id}"
    with state.store.sessions() as session:
        bank = store.get_bank_by_name(session, name)
        if bank is None:
            bank = store.create_bank(session, name, "hashes the person made on her device", case_id=case_id)
            session.commit()
    result = state.store.add_signals(bank.id, [NewSignal(s.signal_type, s.value, s.quality) for s in parsed.signals])
    audit_action(request, "hashes_loaded", user_id=current.user.id, case_id=case_id, subject=f"bank:{bank.id}",
           detail={"added": len(result.added), "duplicates": result.duplicates, "rejected": len(parsed.rejected)})
    return case_view(request, current, role, case_id, imported=parsed, added=len(result.added),
                      duplicates=result.duplicates)


@router.post("/cases/{case_id}/members")
def add_member(request: Request, case_id: int, email: Text, csrf_token: Text, role: Text = "advocate") -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, my_role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, current, "The form expired. Please go back and try again.", 400)
    if my_role != "owner":
        return _forbidden(request, current, "Only the case's owner can add people to it.")
    if role not in store.accounts.ROLES:
        return _forbidden(request, current, "Unknown role.", 400)
    with app_state(request).store.sessions() as session:
        member = store.get_user_by_email(session, email)
        if member is None:
            return _forbidden(request, current, "No one with that e-mail address has an account yet.", 404)
        store.add_member(session, case_id, member.id, role)
        store.audit(session, "member_added", user_id=current.user.id, case_id=case_id, subject=member.email,
                    detail={"role": role}, ip=ui.client_ip(request))
        session.commit()
    return RedirectResponse(f"/app/cases/{case_id}", status_code=303)


@router.get("/cases/{case_id}/audit")
def audit_page(request: Request, case_id: int) -> Response:
    access = _case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    with app_state(request).store.sessions() as session:
        case = store.get_case(session, case_id)
        entries = store.list_audit(session, case_id=case_id, limit=500)
    return render(request, "audit.html", user=current.user, csrf_token=current.csrf_token, case=case, entries=entries)


# --- account: password and second factor -------------------------------------------------------------------------


@router.get("/account")
def account_page(request: Request) -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    return _account(request, current)


def _account(request: Request, current: UiSessionInfo, status: int = 200, **extra: Any) -> Response:
    with app_state(request).store.sessions() as session:
        user = store.get_user(session, current.user.id)
    pending = user is not None and user.totp_secret is not None and not user.totp_enabled
    context: dict[str, Any] = {"message": None, "error": None, **extra}
    return render(request, "account.html", status, user=user, csrf_token=current.csrf_token,
                  totp_uri=totp.provisioning_uri(user.totp_secret, user.email) if pending and user else None,
                  **context)


@router.post("/account/password")
def change_password(request: Request, current_password: Text, new_password: Text, csrf_token: Text) -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, current, "The form expired. Please go back and try again.", 400)
    if not passwords.verify_password(current.user.password_hash, current_password):
        audit_action(request, "password_change_failed", user_id=current.user.id, subject=current.user.email)
        return _account(request, current, 400, error="Your current password is not right.")
    try:
        new_hash = passwords.hash_password(new_password, email=current.user.email)
    except passwords.WeakPassword as exc:
        return _account(request, current, 400, error=f"New password: {exc}")
    with app_state(request).store.sessions() as session:
        store.update_user(session, current.user.id, password_hash=new_hash)
        store.delete_user_sessions(session, current.user.id)  # every other device signs in again
        store.audit(session, "password_changed", user_id=current.user.id, subject=current.user.email,
                    ip=ui.client_ip(request))
        session.commit()
    response = RedirectResponse("/app/", status_code=303)
    ui.start(request, response, current.user.id, verified=True)
    return response


@router.post("/account/totp/start")
def totp_start(request: Request, csrf_token: Text) -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, current, "The form expired. Please go back and try again.", 400)
    if current.user.totp_enabled:
        return _account(request, current, 400, error="A second factor is already set up.")
    with app_state(request).store.sessions() as session:
        store.update_user(session, current.user.id, totp_secret=totp.new_secret(), totp_enabled=False)
        session.commit()
    return RedirectResponse("/app/account", status_code=303)


@router.post("/account/totp/confirm")
def totp_confirm(request: Request, code: Text, csrf_token: Text) -> Response:
    current = _signed_in(request)
    if isinstance(current, Response):
        return current
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return _forbidden(request, current, "The form expired. Please go back and try again.", 400)
    with app_state(request).store.sessions() as session:
        user = store.get_user(session, current.user.id)
    if user is None or user.totp_secret is None or user.totp_enabled:
        return RedirectResponse("/app/account", status_code=303)
    step = totp.accept(user.totp_secret, code, None)
    if step is None:
        return _account(request, current, 400, error="That code is not right. Check the time on your phone and try "
                                                     "the newest code.")
    with app_state(request).store.sessions() as session:
        store.update_user(session, user.id, totp_enabled=True, totp_last_step=step)
        store.audit(session, "second_factor_enabled", user_id=user.id, subject=user.email, ip=ui.client_ip(request))
        session.commit()
    return _account(request, current, message="Your second factor is on. You will be asked for a code when you "
                                              "sign in.")


