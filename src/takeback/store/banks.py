"""Cases and banks.  A bank is a named set of signals; deleting one deletes its signals (database cascade) and
journals the removal as ONE ``signal_removals`` row with ``signal_id`` NULL (a whole-bank removal), so deleting
a bank of millions of signals stays one small write for the matcher to replay."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from takeback.store._sql import check_text, chunked, insert_ignore, is_id, serialise_signal_writes
from takeback.store.errors import BankExists, InvalidInput, UnknownClient
from takeback.store.models import ApiClient, Bank, Case, ClientBank, SignalRemoval, utcnow
from takeback.store.records import BankInfo, CaseInfo

NAME_MAX = 200

_BANK_COLUMNS = (Bank.id, Bank.name, Bank.description, Bank.case_id, Bank.created_at)


def _bank(row: object) -> BankInfo:
    id_, name, description, case_id, created_at = row  # type: ignore[misc]
    return BankInfo(id=id_, name=name, description=description, case_id=case_id, created_at=created_at)


# --- cases -----------------------------------------------------------------------------------------------------


def create_case(session: Session, name: str) -> CaseInfo:
    check_text("name", name, NAME_MAX)
    row = session.execute(
        insert(Case).values(name=name, created_at=utcnow()).returning(Case.id, Case.name, Case.created_at)
    ).one()
    return CaseInfo(*row)


def get_case(session: Session, case_id: int) -> CaseInfo | None:
    if not is_id(case_id):
        return None
    row = session.execute(select(Case.id, Case.name, Case.created_at).where(Case.id == case_id)).first()
    return CaseInfo(*row) if row else None


def list_cases(session: Session) -> list[CaseInfo]:
    return [CaseInfo(*row) for row in session.execute(select(Case.id, Case.name, Case.created_at).order_by(Case.id))]


# --- banks -----------------------------------------------------------------------------------------------------


def create_bank(
    session: Session, name: str, description: str = "", *, case_id: int | None = None, grant_to: int | None = None
) -> BankInfo:
    """Create a bank; raises ``BankExists`` when the name is taken.  ``grant_to``: a client id that gets access
    (the creating client), in the same transaction."""
    check_text("name", name, NAME_MAX)
    check_text("description", description or "")
    if case_id is not None and get_case(session, case_id) is None:
        raise InvalidInput("case_id", f"no case {case_id}")
    stmt = (
        insert_ignore(session, Bank.__table__, ["name"])
        .values(name=name, description=description or "", case_id=case_id, created_at=utcnow())
        .returning(*_BANK_COLUMNS)
    )
    row = session.execute(stmt).first()
    if row is None:
        raise BankExists(name)
    bank = _bank(row)
    if grant_to is not None:
        if not is_id(grant_to) or session.get(ApiClient, grant_to) is None:
            raise UnknownClient(grant_to)
        session.execute(insert(ClientBank).values(client_id=grant_to, bank_id=bank.id))
    return bank


def get_bank(session: Session, bank_id: int) -> BankInfo | None:
    if not is_id(bank_id):
        return None
    row = session.execute(select(*_BANK_COLUMNS).where(Bank.id == bank_id)).first()
    return _bank(row) if row else None


def get_bank_by_name(session: Session, name: str) -> BankInfo | None:
    if not _storable_name(name):
        return None
    row = session.execute(select(*_BANK_COLUMNS).where(Bank.name == name)).first()
    return _bank(row) if row else None


def get_banks_by_names(session: Session, names: Iterable[str]) -> dict[str, BankInfo]:
    """The banks that exist among ``names``, by name (missing names are simply absent)."""
    wanted = sorted({n for n in names if _storable_name(n)})
    found: dict[str, BankInfo] = {}
    for part in chunked(wanted):
        for row in session.execute(select(*_BANK_COLUMNS).where(Bank.name.in_(part))):
            bank = _bank(row)
            found[bank.name] = bank
    return found


def list_banks(session: Session, client_id: int | None = None) -> list[BankInfo]:
    """All banks by id, or only those granted to ``client_id``."""
    stmt = select(*_BANK_COLUMNS).order_by(Bank.id)
    if client_id is not None:
        if not is_id(client_id):
            return []
        stmt = stmt.join(ClientBank, ClientBank.bank_id == Bank.id).where(ClientBank.client_id == client_id)
    return [_bank(row) for row in session.execute(stmt)]


def delete_bank(session: Session, bank_id: int) -> bool:
    """Delete the bank, its signals and grants; journal one whole-bank removal.  False if there was no such bank."""
    if not is_id(bank_id):
        return False
    serialise_signal_writes(session)
    gone = session.execute(delete(Bank).where(Bank.id == bank_id).returning(Bank.id)).first()
    if gone is None:
        return False
    session.execute(insert(SignalRemoval).values(signal_id=None, bank_id=bank_id, removed_at=utcnow()))
    return True


def _storable_name(name: object) -> bool:
    """A name that could be in the table; others cannot match and must not reach PostgreSQL (NUL is refused)."""
    return isinstance(name, str) and "\x00" not in name and len(name) <= NAME_MAX
