"""Who is signed in: session cookies, CSRF tokens, sign-in throttling.

The cookie holds a random token (HttpOnly, SameSite=Lax, Secure over HTTPS, ``__Host-`` prefixed when Secure);
the database holds its SHA-256 and the session's CSRF token, which every form posts back.  The sign-in form has
no session yet, so it uses a double-submit token (a cookie and a field that must agree).  Failed sign-ins are
counted in the audit log, so the limit holds across server processes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from takeback import store
from takeback.accounts import tokens
from takeback.config import Settings
from takeback.store.accounts import UiSessionInfo
from takeback.store.models import utcnow
from takeback.web.auth import app_state

LOGIN_CSRF_COOKIE = "takeback_login_csrf"


def cookie_name(request: Request, settings: Settings) -> str:
    return "__Host-takeback_session" if secure(request, settings) else "takeback_session"


def secure(request: Request, settings: Settings) -> bool:
    return settings.ui_cookie_secure or request.url.scheme == "https"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def current(request: Request) -> UiSessionInfo | None:
    """The signed-in session (second factor done or not), or None."""
    state = app_state(request)
    token = request.cookies.get(cookie_name(request, state.settings))
    if not token:
        return None
    with state.store.sessions() as session:
        return store.get_ui_session(session, tokens.session_id(token))


def start(request: Request, response: Response, user_id: int, *, verified: bool) -> None:
    """Create a session for the user and set its cookie on ``response``."""
    state = app_state(request)
    settings = state.settings
    token = tokens.new_token()
    expires = utcnow() + timedelta(hours=settings.ui_session_hours)
    with state.store.sessions() as session:
        store.create_ui_session(
            session, tokens.session_id(token), user_id, tokens.new_token(), expires, verified=verified,
            ip=client_ip(request),
        )
        session.commit()
    response.set_cookie(
        cookie_name(request, settings), token, max_age=int(settings.ui_session_hours * 3600), httponly=True,
        samesite="lax", secure=secure(request, settings), path="/",
    )


def end(request: Request, response: Response) -> None:
    state = app_state(request)
    name = cookie_name(request, state.settings)
    token = request.cookies.get(name)
    if token:
        with state.store.sessions() as session:
            store.delete_ui_session(session, tokens.session_id(token))
            session.commit()
    response.delete_cookie(name, path="/", secure=secure(request, state.settings), httponly=True, samesite="lax")


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/app/login?next={quote(target, safe='')}", status_code=303)


def safe_next(value: str | None) -> str:
    """Only our own pages: an open redirect would let a phishing link borrow our address."""
    if value and value.startswith("/app/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app/"


def csrf_ok(ui: UiSessionInfo, form: Any) -> bool:
    value = form.get("csrf_token")
    return tokens.same(ui.csrf_token, value if isinstance(value, str) else None)


def throttled(request: Request, email: str) -> bool:
    """Too many failed sign-ins lately for this account or from this address."""
    state = app_state(request)
    settings = state.settings
    since = utcnow() - timedelta(minutes=settings.ui_login_window_minutes)
    with state.store.sessions() as session:
        by_account = store.count_audit_since(session, "login_failed", since, subject=email)
        by_ip = store.count_audit_since(session, "login_failed", since, ip=client_ip(request))
    return by_account >= settings.ui_login_max_failures or by_ip >= settings.ui_login_max_failures_per_ip
