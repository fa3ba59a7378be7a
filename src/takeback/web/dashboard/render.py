"""Pages are Jinja2 templates with autoescaping on: everything shown (names, URLs found on hostile sites) is text.

Every page carries headers that keep it self-contained: no framing, no referrer (a finding's URL or a case id
must not leak to a site the person clicks through to), scripts and styles only from this server.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("takeback.web.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    page = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)
