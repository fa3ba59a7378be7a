"""A case's names, aliases and usernames: what the name matcher looks for (with its variants) in URLs, titles,
page text and new domains."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from takeback.store._sql import check_text, insert_ignore, is_id
from takeback.store.errors import InvalidInput
from takeback.store.models import Case, utcnow
from takeback.store.models_findings import CaseName

NAME_KINDS = frozenset({"name", "alias", "username"})
VALUE_MAX = 200


@dataclass(frozen=True, slots=True)
class CaseNameInfo:
    id: int
    case_id: int
    value: str
    kind: str


_COLUMNS = (CaseName.id, CaseName.case_id, CaseName.value, CaseName.kind)


def add_case_name(session: Session, case_id: int, value: str, kind: str = "name") -> CaseNameInfo:
    """Add a name to the case (surrounding whitespace trimmed); adding one that is already there returns it."""
    check_text("value", value, VALUE_MAX)
    value = value.strip()
    if not value:
        raise InvalidInput("value", "must not be empty")
    if kind not in NAME_KINDS:
        raise InvalidInput("kind", f"must be one of {sorted(NAME_KINDS)}")
    if not is_id(case_id) or session.execute(select(Case.id).where(Case.id == case_id)).first() is None:
        raise InvalidInput("case_id", f"no case {case_id}")
    session.execute(
        insert_ignore(session, CaseName.__table__, ["case_id", "kind", "value"]).values(
            case_id=case_id, value=value, kind=kind, created_at=utcnow()
        )
    )
    row = session.execute(
        select(*_COLUMNS).where(CaseName.case_id == case_id, CaseName.kind == kind, CaseName.value == value)
    ).one()
    return CaseNameInfo(*row)


def list_case_names(session: Session, case_id: int) -> list[CaseNameInfo]:
    if not is_id(case_id):
        return []
    stmt = select(*_COLUMNS).where(CaseName.case_id == case_id).order_by(CaseName.id)
    return [CaseNameInfo(*row) for row in session.execute(stmt)]


def remove_case_name(session: Session, case_id: int, name_id: int) -> bool:
    if not is_id(case_id) or not is_id(name_id):
        return False
    stmt = delete(CaseName).where(CaseName.id == name_id, CaseName.case_id == case_id).returning(CaseName.id)
    return session.execute(stmt).first() is not None
