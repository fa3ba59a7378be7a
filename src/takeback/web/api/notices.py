"""Takedown notices: explain the bases, draft, list, show, send, record replies and state changes, escalate, and
export a case's evidence dossier.

Scope: every operation needs ``manage``; a notice is visible to whoever may see its case (see ``cases``).  Incomplete
notices answer 422 ``incomplete_notice`` with every missing element in ``detail``; sending answers 200 when the mail
server accepted the notice and 202 with the notice ``queued`` (and ``last_error``) when it did not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from takeback import store
from takeback.takedown import service
from takeback.takedown.directory import DirectoryError, load_directory
from takeback.takedown.dossier import export_case, render_html, render_pdf
from takeback.takedown.notices import BASES, DISCLAIMER, EXPLANATIONS, NOTICE_TYPES, IncompleteNotice, InvalidNotice
from takeback.web.api.cases import check_case, sessions_of
from takeback.web.auth import app_state, require
from takeback.web.errors import ApiError
from takeback.web.state import Principal

router = APIRouter(tags=["notices"])
Manager = Annotated[Principal, Depends(require("manage"))]
NoticeId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Basis = Literal["dmca", "takeitdown", "gdpr", "dsa", "delisting", "abuse"]


class ElementOut(BaseModel):
    field: str
    label: str
    citation: str


class BasisOut(BaseModel):
    basis: str
    title: str
    citation: str
    explanation: str
    elements: list[ElementOut]


class BasesOut(BaseModel):
    bases: list[BasisOut]
    disclaimer: str


class NoticeDraft(BaseModel):
    finding_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=500)
    basis: Basis
    #: The notice's fields the person provides: sender {name, email, postal_address, phone, acting_for}, signature,
    #: statements (good_faith, accuracy_under_penalty_of_perjury, good_faith_not_consensual, bona_fide), work,
    #: grounds, explanation, queries, additional_information.  GET /v1/notices/bases lists what each basis needs.
    details: dict[str, Any] = Field(default_factory=dict)
    party_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    recipient: str | None = Field(default=None, max_length=254)


class StateChange(BaseModel):
    state: Literal["sent", "acknowledged", "removed", "refused", "expired"]
    note: str = Field(default="", max_length=5000)


class EscalationIn(BaseModel):
    party_id: int = Field(ge=1, le=2**31 - 1)
    basis: Basis | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class NoticeUrlOut(BaseModel):
    url: str
    finding_id: int | None
    status: str
    checked_at: datetime | None


class NoticeEventOut(BaseModel):
    at: datetime
    kind: str
    detail: dict[str, Any]


class NoticeOut(BaseModel):
    id: int
    case_id: int
    party_id: int | None
    parent_id: int | None
    basis: str
    state: str
    channel: str
    recipient: str | None
    web_form: str | None
    subject: str
    body: str
    data: dict[str, Any]
    message_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    due_at: datetime | None
    closed_at: datetime | None
    urls: list[NoticeUrlOut]
    events: list[NoticeEventOut] = Field(default_factory=list)


class NoticeList(BaseModel):
    notices: list[NoticeOut]
    next_after_id: int | None


class EvidenceCheckOut(BaseModel):
    ok: bool
    entries: int
    head: str
    first_bad_position: int | None
    reason: str


def _out(session: Session, notice: store.NoticeInfo, *, events: bool = False) -> NoticeOut:
    return NoticeOut(
        **{k: getattr(notice, k) for k in NoticeOut.model_fields if k not in ("urls", "events")},
        urls=[NoticeUrlOut(url=u.url, finding_id=u.finding_id, status=u.status, checked_at=u.checked_at)
              for u in store.notice_urls(session, notice.id)],
        events=[NoticeEventOut(at=e.at, kind=e.kind, detail=e.detail)
                for e in store.list_notice_events(session, notice.id)] if events else [],
    )


def _visible(session: Session, principal: Principal, notice_id: int) -> store.NoticeInfo:
    notice = store.get_notice(session, notice_id)
    if notice is None:
        raise ApiError(404, "unknown_notice", f"no notice {notice_id}")
    try:
        check_case(session, principal, notice.case_id)
    except ApiError:
        raise ApiError(404, "unknown_notice", f"no notice {notice_id}") from None
    return notice


def _refusal(exc: Exception) -> ApiError:
    if isinstance(exc, IncompleteNotice):
        return ApiError(422, "incomplete_notice", str(exc),
                        detail=[{"field": e.field, "label": e.label, "citation": e.citation} for e in exc.missing])
    if isinstance(exc, InvalidNotice):
        return ApiError(422, "invalid_notice", str(exc), detail=exc.problems)
    if isinstance(exc, service.UnknownFinding):
        return ApiError(404, "unknown_finding", exc.message)
    if isinstance(exc, store.InvalidTransition):
        return ApiError(409, "invalid_transition", str(exc))
    if isinstance(exc, service.NotSendable | service.NotEscalatable):
        return ApiError(409, exc.code, exc.message)
    if isinstance(exc, store.UnknownNotice):
        return ApiError(404, "unknown_notice", "no such notice")
    if isinstance(exc, store.InvalidInput):
        return ApiError(400, "invalid_input", str(exc))
    if isinstance(exc, service.TakedownError):
        return ApiError(400, exc.code, exc.message)
    raise exc


_HANDLED = (IncompleteNotice, InvalidNotice, service.TakedownError, store.StoreError)


@router.get("/v1/notices/bases", response_model=BasesOut, summary="The legal bases in plain words, with elements")
def bases(_: Manager) -> BasesOut:
    return BasesOut(
        bases=[
            BasisOut(basis=b, title=NOTICE_TYPES[b].TITLE, citation=NOTICE_TYPES[b].CITATION,
                     explanation=EXPLANATIONS[b],
                     elements=[ElementOut(field=e.field, label=e.label, citation=e.citation)
                               for e in NOTICE_TYPES[b].ELEMENTS])
            for b in BASES
        ],
        disclaimer=DISCLAIMER,
    )


@router.post("/v1/notices", status_code=201, response_model=NoticeOut, summary="Draft a notice for findings of a case")
def draft(body: NoticeDraft, request: Request, principal: Manager) -> NoticeOut:
    with sessions_of(request).begin() as session:
        first = store.get_finding(session, body.finding_ids[0])
        if first is None:
            raise ApiError(404, "unknown_finding", f"no finding {body.finding_ids[0]}")
        try:
            check_case(session, principal, first.case_id)
        except ApiError:
            raise ApiError(404, "unknown_finding", f"no finding {body.finding_ids[0]}") from None
        try:
            notice = service.draft_notice(session, first.case_id, body.finding_ids, body.basis, body.details,
                                          party_id=body.party_id, recipient=body.recipient)
        except _HANDLED as exc:
            raise _refusal(exc) from None
        return _out(session, notice)


@router.get("/v1/notices", response_model=NoticeList, summary="A case's notices, oldest first")
def list_notices(
    request: Request,
    principal: Manager,
    case_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> NoticeList:
    with sessions_of(request)() as session:
        check_case(session, principal, case_id)
        notices = store.list_notices(session, case_id, state=state, limit=limit, after_id=after_id)
        return NoticeList(notices=[_out(session, n) for n in notices],
                          next_after_id=notices[-1].id if len(notices) == limit else None)


@router.get("/v1/notices/{notice_id}", response_model=NoticeOut, summary="A notice with its URLs and history")
def get_notice(notice_id: NoticeId, request: Request, principal: Manager) -> NoticeOut:
    with sessions_of(request)() as session:
        return _out(session, _visible(session, principal, notice_id), events=True)


@router.post("/v1/notices/{notice_id}/send", response_model=NoticeOut,
             responses={202: {"model": NoticeOut, "description": "not accepted by the mail server: queued"}},
             summary="Send a drafted or queued notice by e-mail")
def send(notice_id: NoticeId, request: Request, principal: Manager) -> Any:
    settings = app_state(request).settings
    with sessions_of(request).begin() as session:
        _visible(session, principal, notice_id)
        try:
            outcome = service.send_notice(session, settings, notice_id)
        except _HANDLED as exc:
            raise _refusal(exc) from None
        out = _out(session, outcome.notice, events=True)
    if outcome.sent:
        return out
    return JSONResponse(out.model_dump(mode="json"), status_code=202)


@router.post("/v1/notices/{notice_id}/state", response_model=NoticeOut,
             summary="Record a reply, a removal, a web-form submission (sent) or a missed deadline")
def change_state(notice_id: NoticeId, body: StateChange, request: Request, principal: Manager) -> NoticeOut:
    settings = app_state(request).settings
    with sessions_of(request).begin() as session:
        _visible(session, principal, notice_id)
        try:
            notice = service.mark_notice(session, settings, notice_id, body.state, note=body.note)
        except _HANDLED as exc:
            raise _refusal(exc) from None
        return _out(session, notice, events=True)


@router.post("/v1/notices/{notice_id}/escalate", status_code=201, response_model=NoticeOut,
             summary="Close an expired or refused notice and draft the next one to another party")
def escalate(notice_id: NoticeId, body: EscalationIn, request: Request, principal: Manager) -> NoticeOut:
    with sessions_of(request).begin() as session:
        _visible(session, principal, notice_id)
        if store.get_party(session, body.party_id) is None:
            raise ApiError(404, "unknown_party", f"no party {body.party_id}")
        try:
            notice = service.escalate(session, notice_id, party_id=body.party_id, basis=body.basis,
                                      details=body.details)
        except _HANDLED as exc:
            raise _refusal(exc) from None
        return _out(session, notice)


@router.get("/v1/notices/{notice_id}/proposal", summary="Who to turn to next (escalation path and regulators)")
def proposal(notice_id: NoticeId, request: Request, principal: Manager) -> dict[str, Any]:
    settings = app_state(request).settings
    try:
        directory = load_directory(settings.takedown_platforms_file)
    except DirectoryError:
        directory = load_directory()
    with sessions_of(request)() as session:
        notice = _visible(session, principal, notice_id)
        p = service.propose_escalation(session, notice, directory)
    party = None if p.party is None else {"id": p.party.id, "kind": p.party.kind, "name": p.party.name,
                                          "email": p.party.email, "web_form": p.party.web_form}
    return {"notice_id": notice_id, "party": party, "basis": p.basis, "regulators": list(p.regulators),
            "reason": p.reason}


class UrlCheckOut(BaseModel):
    url: str
    #: removed (404/410/451) | present (2xx) | unknown (anything else: nothing concluded)
    outcome: str
    status: int | None
    error: str | None


class RecheckOut(BaseModel):
    notice: NoticeOut
    checks: list[UrlCheckOut]
    #: This re-check confirmed the removal (every URL gone).
    removed: bool
    #: A removed URL was back: its finding was reopened and this follow-up notice drafted.
    follow_up_id: int | None


@router.post("/v1/notices/{notice_id}/recheck", response_model=RecheckOut,
             summary="Fetch every URL of the notice again now: confirms removal or reopens the chain")
def recheck(notice_id: NoticeId, request: Request, principal: Manager) -> RecheckOut:
    import asyncio

    from takeback.takedown import network

    settings = app_state(request).settings
    sessions = sessions_of(request)
    with sessions() as session:
        _visible(session, principal, notice_id)

    async def run() -> service.RecheckReport:
        async with network.open_fetcher(settings) as fetcher:
            return await service.recheck_notice(sessions, notice_id, fetcher)

    try:
        report = asyncio.run(run())  # this sync route runs in a worker thread: a private event loop for the fetches
    except _HANDLED as exc:
        raise _refusal(exc) from None
    with sessions() as session:
        out = _out(session, report.notice, events=True)
    return RecheckOut(
        notice=out, removed=report.removed, follow_up_id=report.follow_up.id if report.follow_up else None,
        checks=[UrlCheckOut(url=c.url, outcome=c.outcome, status=c.status, error=c.error) for c in report.checks],
    )


@router.get("/v1/notices/{notice_id}/status", summary="Where a notice stands: deadline, time left, last event, "
            "each URL's last re-check, the next step")
def notice_status(notice_id: NoticeId, request: Request, principal: Manager) -> dict[str, Any]:
    from takeback.takedown.status import notice_status as status_of

    with sessions_of(request)() as session:
        notice = _visible(session, principal, notice_id)
        return status_of(session, app_state(request).settings, notice).as_dict()


@router.get("/v1/cases/{case_id}/evidence/verify", response_model=EvidenceCheckOut,
            summary="Verify the case's hash-chained evidence log")
def verify(
    case_id: CaseId, request: Request, principal: Manager,
    head: Annotated[str | None, Query(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")] = None,
) -> EvidenceCheckOut:
    with sessions_of(request)() as session:
        check_case(session, principal, case_id)
        check = store.verify_evidence(session, case_id, expected_head=head)
    return EvidenceCheckOut(ok=check.ok, entries=check.entries, head=check.head,
                            first_bad_position=check.first_bad_position, reason=check.reason)


@router.get("/v1/cases/{case_id}/evidence", summary="The case dossier: evidence log, findings, notices, statistics",
            responses={200: {"content": {"application/json": {}, "text/html": {}, "application/pdf": {}}}})
def dossier(
    case_id: CaseId, request: Request, principal: Manager,
    format: Annotated[Literal["json", "html", "pdf"], Query()] = "json",
) -> Any:
    with sessions_of(request)() as session:
        check_case(session, principal, case_id)
        data = export_case(session, case_id)
    if format == "html":
        return HTMLResponse(render_html(data))
    if format == "pdf":
        return Response(render_pdf(data), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="dossier-case-{case_id}.pdf"'})
    return JSONResponse(data)


# --- inbound TAKE IT DOWN requests (public intake; moderators decide) ------------------------------------------------


class MaterialIn(BaseModel):
    url: str = Field(max_length=2048)
    note: str = Field(default="", max_length=500)


class SenderIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    postal_address: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=50)
    acting_for: str | None = Field(default=None, max_length=200)


class SignalIn(BaseModel):
    signal_type: str = Field(max_length=32)
    value: str = Field(max_length=200_000)


class TakeItDownRequestIn(BaseModel):
    """Every field is optional here so that a missing one is reported by name (422 incomplete_notice) with the Act's
    provision, not as a generic validation error."""

    materials: list[MaterialIn] | None = Field(default=None, max_length=500)
    sender: SenderIn | None = None
    signature: str | None = Field(default=None, max_length=200)
    good_faith_not_consensual: bool | None = None
    consent_information: str | None = Field(default=None, max_length=2000)
    depiction_description: str | None = Field(default=None, max_length=1000)
    additional_information: str | None = Field(default=None, max_length=5000)
    #: Hashes of the reported media computed on the requester's device (`takeback hash`); never the media.
    signals: list[SignalIn] | None = Field(default=None, max_length=1000)


class IntakeOut(BaseModel):
    id: int | None = None
    reference: str
    status: str
    received_at: datetime
    due_at: datetime
    seconds_left: float
    overdue: bool
    signals: int
    signals_added: int
    note: str | None
    request: dict[str, Any] | None = None
    #: Distinct uploads of the platform found to be copies on acceptance (None: no sweep ran).
    uploads_matched: int | None = None
    #: Those uploads (moderators only): upload_ref, signal_id, signal_type, distance, query (index of the hash).
    upload_matches: list[dict[str, Any]] | None = None


class IntakeList(BaseModel):
    requests: list[IntakeOut]


class DecisionIn(BaseModel):
    accept: bool
    #: The bank the accepted hashes go into (created when missing).
    bank: str = Field(default="takeitdown", min_length=1, max_length=200)
    note: str = Field(default="", max_length=5000)


def _intake_out(info: store.IntakeInfo, *, private: bool) -> IntakeOut:
    from takeback.takedown.intake import clock

    c = clock(info)
    return IntakeOut(
        id=info.id if private else None, reference=info.reference, status=info.status, received_at=info.received_at,
        due_at=c.due_at, seconds_left=c.seconds_left, overdue=c.overdue, signals=len(info.signals),
        signals_added=info.signals_added, note=info.note, request=info.data if private else None,
        uploads_matched=info.uploads_matched, upload_matches=info.upload_matches if private else None,
    )


@router.post("/v1/takeitdown/requests", status_code=201, response_model=IntakeOut, tags=["public"],
             summary="File a TAKE IT DOWN removal request (no key needed); the 48-hour clock starts")
def file_request(body: TakeItDownRequestIn, request: Request) -> IntakeOut:
    from takeback.takedown import intake

    data = body.model_dump(exclude_none=True)
    if "sender" in data:
        data["sender"] = {k: v for k, v in data["sender"].items() if v is not None}
    with sessions_of(request).begin() as session:
        try:
            info = intake.submit(session, data)
        except _HANDLED as exc:
            raise _refusal(exc) from None
        return _intake_out(info, private=False)


@router.get("/v1/takeitdown/requests/{reference}", response_model=IntakeOut, tags=["public"],
            summary="The status of a filed request and the time left (by its reference)")
def request_status(reference: Annotated[str, Path(min_length=1, max_length=32)], request: Request) -> IntakeOut:
    with sessions_of(request)() as session:
        info = store.get_intake_by_reference(session, reference)
    if info is None:
        raise ApiError(404, "unknown_request", "no request with that reference")
    return _intake_out(info, private=False)


@router.get("/v1/takeitdown/requests", response_model=IntakeList,
            summary="Requests to decide, nearest deadline first (moderators)")
def list_requests(
    request: Request, _: Manager,
    status: Annotated[Literal["received", "accepted", "rejected"] | None, Query()] = "received",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> IntakeList:
    with sessions_of(request)() as session:
        return IntakeList(requests=[_intake_out(i, private=True)
                                    for i in store.list_intake(session, status=status, limit=limit)])


@router.post("/v1/takeitdown/requests/{intake_id}/decision", response_model=IntakeOut,
             summary="Accept (hashes go into a bank, so copies are caught; the platform's uploads are swept for "
                     "copies, reported by webhook) or reject a request")
def decide(intake_id: NoticeId, body: DecisionIn, request: Request, principal: Manager) -> IntakeOut:
    from takeback.store.models import utcnow
    from takeback.web import uploads_sweep
    from takeback.web.storage import BankExists, NewSignal

    state = app_state(request)
    with sessions_of(request)() as session:
        info = store.get_intake(session, intake_id)
    if info is None:
        raise ApiError(404, "unknown_request", f"no request {intake_id}")
    if info.status != "received":
        raise ApiError(409, "invalid_transition", f"request {intake_id} was already {info.status}")
    bank_id: int | None = None
    if body.accept and info.signals:
        bank = state.store.bank_by_name(body.bank)
        created = False
        if bank is None:
            try:
                bank = state.store.create_bank(body.bank, "TAKE IT DOWN requests (hashes of reported media)",
                                               grant_to=None if principal.is_admin else principal.client_id)
                created = True  # granted to this key just now (the request's principal predates the grant)
            except BankExists:
                bank = state.store.bank_by_name(body.bank)
            state.changed()
        if bank is None or not (created or principal.may_use(bank.id)):
            raise ApiError(403, "forbidden_bank", f"this key is not granted bank {body.bank!r}")
        result = state.store.add_signals(bank.id, [NewSignal(t, v, None, f"takeitdown {info.reference}")
                                                   for t, v in info.signals])
        bank_id, added_ids = bank.id, [signal.id for signal in result.added]
    else:
        added_ids = []
    sweep = uploads_sweep.sweep_uploads(state, info.signals) if body.accept else None
    try:
        with sessions_of(request).begin() as session:
            decided = store.decide_intake(
                session, intake_id, "accepted" if body.accept else "rejected", at=utcnow(), note=body.note or None,
                bank_id=bank_id, signals_added=len(added_ids),
                upload_matches=sweep.matches if sweep is not None and sweep.bank is not None else None,
            )
    except _HANDLED as exc:
        # Another moderator decided first (the row lock makes the decision once): take back exactly the hashes this
        # attempt banked (after its transaction ended), so a request rejected meanwhile never leaves them matching.
        if bank_id is not None and added_ids:
            state.store.remove_signals(bank_id, added_ids)
        raise _refusal(exc) from None
    if sweep is not None:  # decided once (the row lock above): only now are the platform's systems told
        uploads_sweep.notify(state, sweep, reference=decided.reference, due_at=decided.due_at)
    _tell_requester(state.settings, decided)
    return _intake_out(decided, private=True)


def _tell_requester(settings: Any, decided: store.IntakeInfo) -> None:
    """Best effort: the decision stands whether or not the mail server takes the message (it is logged)."""
    import logging

    from takeback.mail import MailError, send_mail
    from takeback.takedown.intake import decision_mail

    mail = decision_mail(decided, platform=settings.platform_name)
    if mail is None:
        return
    try:
        send_mail(settings, mail)
    except MailError as exc:
        logging.getLogger(__name__).warning("TAKE IT DOWN request %s: decision not e-mailed: %s", decided.id, exc)
