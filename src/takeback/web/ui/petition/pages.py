"""Public petition pages: /p/<slug> (count, text, sign form, share links, Open Graph tags), /p/<slug>/widget (an
embeddable counter), and the landing pages of the mailed links (verify, unsubscribe, erase).

Everything a signer or an organiser typed is rendered through Jinja2 with autoescaping, and the pages send a
Content-Security-Policy without inline scripts, so a name or comment full of markup stays text.  Not in the
OpenAPI document (they are HTML for people); the JSON API they use is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from takeback.petition.service import PetitionError, PetitionService, countries
from takeback.store.petitions import PetitionInfo

router = APIRouter(prefix="/p", include_in_schema=False)
env = Environment(
    loader=PackageLoader("takeback.web.ui.petition", "templates"),
    autoescape=select_autoescape(["html"], default=True),
)
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
)
_STATIC = {"petition.js": "text/javascript; charset=utf-8", "petition.css": "text/css; charset=utf-8"}
Slug = Annotated[str, Path(max_length=100)]
Token = Annotated[str, Query(max_length=200)]


def _service(request: Request) -> PetitionService:
    return request.app.state.petition


def _html(body: str, status: int = 200, *, embeddable: bool = False) -> HTMLResponse:
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Content-Security-Policy": _CSP.format(ancestors="*" if embeddable else "'none'"),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def _not_found(slug: str) -> HTMLResponse:
    body = env.get_template("petition_message.html").render(
        petition={"title": "takeback", "slug": slug}, heading="No such petition", message="Check the address."
    )
    return _html(body, 404)


def _base_url(svc: PetitionService, request: Request) -> str:
    return (svc.settings.petition_public_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")


def _common(svc: PetitionService, request: Request, petition: PetitionInfo) -> dict[str, Any]:
    counts = svc.counts(petition)
    page_url = f"{_base_url(svc, request)}/p/{petition.slug}"
    return {
        "petition": petition,
        "counts": counts,
        "percent": min(100, round(100 * counts.verified / petition.goal)),
        "page_url": page_url,
    }


@router.get("/static/{name}")
def static(name: Annotated[str, Path(max_length=40)]) -> Response:
    if name not in _STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    data = resources.files("takeback.web.ui.petition").joinpath("static", name).read_bytes()
    return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "public, max-age=300"})


@router.get("/{slug}")
def petition_page(slug: Slug, request: Request) -> HTMLResponse:
    svc = _service(request)
    try:
        petition = svc.petition(slug)
    except PetitionError:
        return _not_found(slug)
    context = _common(svc, request, petition)
    context.update(svc.page_data(petition))
    url = quote(context["page_url"], safe="")
    text = quote(f"{petition.title} — sign the petition", safe="")
    context.update(
        summary=" ".join(petition.text.split())[:200],
        paragraphs=[p.strip() for p in petition.text.split("\n\n") if p.strip()],
        is_open=petition.is_open(datetime.now(UTC)),
        countries=sorted(countries().items(), key=lambda item: item[1]),
        country_names=countries(),
        share_links=[
            ("X / Twitter", f"https://twitter.com/intent/tweet?url={url}&text={text}"),
            ("Facebook", f"https://www.facebook.com/sharer/sharer.php?u={url}"),
            ("WhatsApp", f"https://wa.me/?text={text}%20{url}"),
            ("Telegram", f"https://t.me/share/url?url={url}&text={text}"),
            ("E-mail", f"mailto:?subject={text}&body={url}"),
        ],
        embed_code=(
            f'<iframe src="{context["page_url"]}/widget" title="{petition.title}" '
            'width="320" height="180" loading="lazy"></iframe>'
        ),
    )
    return _html(env.get_template("petition.html").render(**context))


@router.get("/{slug}/widget")
def widget(slug: Slug, request: Request) -> HTMLResponse:
    svc = _service(request)
    try:
        petition = svc.petition(slug)
    except PetitionError:
        return _not_found(slug)
    return _html(env.get_template("petition_widget.html").render(**_common(svc, request, petition)), embeddable=True)


def _message(petition: PetitionInfo, heading: str, message: str, status: int = 200, **extra: Any) -> HTMLResponse:
    body = env.get_template("petition_message.html").render(
        petition=petition, heading=heading, message=message, **extra
    )
    return _html(body, status)


def _link_action(request: Request, slug: str, action: str, token: str) -> HTMLResponse:
    svc = _service(request)
    try:
        petition = svc.petition(slug)
    except PetitionError:
        return _not_found(slug)
    try:
        if action == "verify":
            svc.verify(petition, token)
            return _message(petition, "Thank you!", "Your signature is confirmed and now counts.")
        if action == "unsubscribe":
            svc.unsubscribe(petition, token)
            return _message(petition, "Unsubscribed", "You will get no more e-mails about this petition.")
        svc.erase(petition, token)
        return _message(petition, "Deleted", "Your signature and everything you gave us are deleted.")
    except PetitionError as exc:
        if exc.code == "token_used":
            return _message(petition, "Already confirmed", "This signature was already confirmed. Thank you!", 409)
        return _message(petition, "This link cannot be used", exc.message, exc.status)


@router.get("/{slug}/verify")
def verify_link(slug: Slug, request: Request, token: Token = "") -> HTMLResponse:
    return _link_action(request, slug, "verify", token)


@router.get("/{slug}/unsubscribe")
def unsubscribe_link(slug: Slug, request: Request, token: Token = "") -> HTMLResponse:
    return _link_action(request, slug, "unsubscribe", token)


@router.post("/{slug}/unsubscribe")
def unsubscribe_one_click(slug: Slug, request: Request, token: Token = "") -> HTMLResponse:
    """RFC 8058 one-click unsubscribe (mail clients POST to the List-Unsubscribe address)."""
    return _link_action(request, slug, "unsubscribe", token)


@router.get("/{slug}/erase")
def erase_confirm(slug: Slug, request: Request, token: Token = "") -> HTMLResponse:
    """Erasing is final, so the link only asks; the button on the page does it (a link preview cannot)."""
    svc = _service(request)
    try:
        petition = svc.petition(slug)
    except PetitionError:
        return _not_found(slug)
    return _message(
        petition,
        "Delete your signature?",
        "This removes your signature, name, address and comment. It cannot be undone.",
        confirm_erase=True,
        token=token,
    )


@router.post("/{slug}/erase")
def erase(slug: Slug, request: Request, token: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    return _link_action(request, slug, "erase", token)
