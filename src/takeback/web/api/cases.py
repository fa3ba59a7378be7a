"""Cases, their names, and their findings (with evidence and history).

Scope: every operation needs ``manage``.  An admin key sees every case; another ``manage`` key sees a case when it
was granted one of the case's banks, or when the case has no bank yet (so whoever sets a case up can finish it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.web.auth import app_state, require
from takeback.web.errors import ApiError
from takeback.web.state import Principal

router = APIRouter(prefix="/v1/cases", tags=["cases"])
Manager = Annotated[Principal, Depends(require("manage"))]
CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]
FindingId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NameKind = Literal["name", "alias", "username"]


class CaseNameIn(BaseModel):
    value: str = Field(min_length=1, max_length=200)
    kind: NameKind = "name"


class CaseNameOut(BaseModel):
    id: int
    value: str
    kind: str


class CaseCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="A label for the case.")
    names: list[CaseNameIn] = Field(default_factory=list, max_length=100)


class CaseOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    names: list[CaseNameOut]
    open_findings: int
    removed_findings: int


class CaseList(BaseModel):
    cases: list[CaseOut]


class FindingOut(BaseModel):
    id: int
    case_id: int
    url: str
    kind: str
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_checked_at: datetime | None
    http_status: int | None
    evidence: dict[str, Any]


class FindingPage(BaseModel):
    findings: list[FindingOut]
    #: Pass as ``after_id`` for the next page; None when this was the last.
    next_after_id: int | None


class FindingEventOut(BaseModel):
    id: int
    event: str
    at: datetime
    http_status: int | None
    details: dict[str, Any]


class FindingDetail(FindingOut):
    events: list[FindingEventOut]


def sessions_of(request: Request) -> sessionmaker[Session]:
    return app_state(request).store.sessions  # type: ignore[no-any-return]


def check_case(session: Session, principal: Principal, case_id: int) -> store.CaseInfo:
    """The case, if this key may use it (404 otherwise: other people's cases are not revealed)."""
    case = store.get_case(session, case_id)
    if case is None:
        raise ApiError(404, "unknown_case", f"no case {case_id}")
    if principal.bank_ids is not None:
        banks = {b.id for b in store.list_banks(session) if b.case_id == case_id}
        if banks and not banks & principal.bank_ids:
            raise ApiError(404, "unknown_case", f"no case {case_id}")
    return case


def _case_out(session: Session, case: store.CaseInfo) -> CaseOut:
    names = [CaseNameOut(id=n.id, value=n.value, kind=n.kind) for n in store.list_case_names(session, case.id)]
    return CaseOut(
        id=case.id,
        name=case.name,
        created_at=case.created_at,
        names=names,
        open_findings=store.count_findings(session, case.id, status="open"),
        removed_findings=store.count_findings(session, case.id, status="removed"),
    )


def finding_out(f: store.FindingInfo) -> FindingOut:
    return FindingOut(
        id=f.id,
        case_id=f.case_id,
        url=f.url,
        kind=f.kind,
        status=f.status,
        first_seen_at=f.first_seen_at,
        last_seen_at=f.last_seen_at,
        last_checked_at=f.last_checked_at,
        http_status=f.http_status,
        evidence=f.evidence,
    )


@router.post("", status_code=201, response_model=CaseOut, summary="Create a case with the names to look for")
def create_case(body: CaseCreate, request: Request, principal: Manager) -> CaseOut:
    with sessions_of(request).begin() as session:
        case = store.create_case(session, body.name)
        for name in body.names:
            store.add_case_name(session, case.id, name.value, name.kind)
        return _case_out(session, case)


@router.get("", response_model=CaseList, summary="The cases this key may use")
def list_cases(request: Request, principal: Manager) -> CaseList:
    out: list[CaseOut] = []
    with sessions_of(request).begin() as session:
        for case in store.list_cases(session):
            try:
                check_case(session, principal, case.id)
            except ApiError:
                continue
            out.append(_case_out(session, case))
    return CaseList(cases=out)


@router.get("/{case_id}", response_model=CaseOut, summary="One case with its names and finding counts")
def get_case(case_id: CaseId, request: Request, principal: Manager) -> CaseOut:
    with sessions_of(request).begin() as session:
        return _case_out(session, check_case(session, principal, case_id))


@router.post("/{case_id}/names", status_code=201, response_model=CaseNameOut, summary="Add a name, alias or username")
def add_name(case_id: CaseId, body: CaseNameIn, request: Request, principal: Manager) -> CaseNameOut:
    with sessions_of(request).begin() as session:
        check_case(session, principal, case_id)
        name = store.add_case_name(session, case_id, body.value, body.kind)
        return CaseNameOut(id=name.id, value=name.value, kind=name.kind)


@router.get("/{case_id}/findings", response_model=FindingPage, summary="A case's findings with their latest evidence")
def list_findings(
    case_id: CaseId,
    request: Request,
    principal: Manager,
    status: Annotated[Literal["open", "removed"] | None, Query()] = None,
    kind: Annotated[Literal["media", "name", "domain"] | None, Query()] = None,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FindingPage:
    with sessions_of(request).begin() as session:
        check_case(session, principal, case_id)
        found = store.list_findings(session, case_id, status=status, kind=kind, limit=limit, after_id=after_id)
    return FindingPage(
        findings=[finding_out(f) for f in found],
        next_after_id=found[-1].id if len(found) == limit else None,
    )


@router.get(
    "/{case_id}/findings/{finding_id}",
    response_model=FindingDetail,
    summary="One finding with its history (found, seen, removed, reopened, fetch errors)",
)
def get_finding(case_id: CaseId, finding_id: FindingId, request: Request, principal: Manager) -> FindingDetail:
    with sessions_of(request).begin() as session:
        check_case(session, principal, case_id)
        finding = store.get_finding(session, finding_id)
        if finding is None or finding.case_id != case_id:
            raise ApiError(404, "unknown_finding", f"no finding {finding_id} in case {case_id}")
        events = store.list_finding_events(session, finding_id)
    return FindingDetail(
        **finding_out(finding).model_dump(),
        events=[
            FindingEventOut(id=e.id, event=e.event, at=e.at, http_status=e.http_status, details=e.details)
            for e in events
        ],
    )
