"""Who can remove a finding: the parties remembered for it, and a fresh resolution (curated directory, the site's
security.txt and own contact links, RDAP for the host, its upstream provider and the registrar).

Scope ``manage``; a finding is visible to whoever may see its case (404 otherwise, like notices).  Resolving reaches
the network only through the guarded fetcher and the RDAP client (``takedown.network``); a lookup that fails leaves
that party unresolved with the reason, so the answer is 200 with the steps, never a 5xx.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from takeback import store
from takeback.takedown import service
from takeback.takedown.directory import DirectoryError, load_directory
from takeback.takedown.resolution import resolve_finding
from takeback.web.api.cases import check_case, sessions_of
from takeback.web.auth import app_state, require
from takeback.web.errors import ApiError
from takeback.web.state import Principal

router = APIRouter(tags=["notices"])
Manager = Annotated[Principal, Depends(require("manage"))]
FindingId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class PartyOut(BaseModel):
    id: int
    kind: str
    name: str
    email: str | None
    web_form: str | None
    #: directory | security.txt | page | rdap | unresolved | manual
    source: str
    #: How the party was found: the recorded steps (what was asked, what came back or why it failed).
    resolution: list[dict[str, Any]]


class PartiesOut(BaseModel):
    finding_id: int
    url: str
    parties: list[PartyOut]
    #: Every step of this resolution (POST only).
    steps: list[dict[str, Any]] = Field(default_factory=list)


class ResolveIn(BaseModel):
    #: Prefer the parties' channels for this basis (a platform's TAKE IT DOWN form, say).
    basis: Literal["dmca", "takeitdown", "gdpr", "dsa", "delisting", "abuse"] | None = None


def _party(p: store.PartyInfo) -> PartyOut:
    return PartyOut(id=p.id, kind=p.kind, name=p.name, email=p.email, web_form=p.web_form, source=p.source,
                    resolution=p.resolution)


def _visible(request: Request, principal: Principal, finding_id: int) -> store.FindingInfo:
    with sessions_of(request)() as session:
        finding = store.get_finding(session, finding_id)
        if finding is None:
            raise ApiError(404, "unknown_finding", f"no finding {finding_id}")
        try:
            check_case(session, principal, finding.case_id)
        except ApiError:
            raise ApiError(404, "unknown_finding", f"no finding {finding_id}") from None
        return finding


@router.get("/v1/findings/{finding_id}/parties", response_model=PartiesOut,
            summary="The parties remembered for a finding, in escalation order")
def stored_parties(finding_id: FindingId, request: Request, principal: Manager) -> PartiesOut:
    finding = _visible(request, principal, finding_id)
    with sessions_of(request)() as session:
        parties = store.finding_parties(session, finding_id)
    return PartiesOut(finding_id=finding_id, url=finding.url, parties=[_party(p) for p in parties])


@router.post("/v1/findings/{finding_id}/parties", response_model=PartiesOut,
             summary="Resolve who can remove a finding now (directory, site contacts, RDAP) and remember them")
def resolve(finding_id: FindingId, request: Request, principal: Manager, body: ResolveIn | None = None) -> PartiesOut:
    finding = _visible(request, principal, finding_id)
    settings = app_state(request).settings
    try:
        directory = load_directory(settings.takedown_platforms_file)
    except DirectoryError:
        directory = load_directory()  # a broken local file: the shipped directory still answers
    try:
        # A worker thread of its own (this route is sync): the network work gets a private event loop.
        _finding, resolution, saved = asyncio.run(resolve_finding(
            sessions_of(request), settings, finding.id, directory=directory, basis=body.basis if body else None))
    except service.UnknownFinding:
        raise ApiError(404, "unknown_finding", f"no finding {finding_id}") from None
    except service.TakedownError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    return PartiesOut(finding_id=finding_id, url=finding.url, parties=[_party(p) for p in saved],
                      steps=list(resolution.steps))
