"""Petition test fixtures: a migrated database (SQLite and PostgreSQL) with one case and one petition."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from takeback.store import banks, petitions
from takeback.store.db import make_engine, session_factory
from takeback.store.petitions import PetitionInfo


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def petition(sessions: sessionmaker[Session]) -> PetitionInfo:
    with sessions.begin() as session:
        case = banks.create_case(session, "case")
        return petitions.create_petition(
            session, case.id, "give-it-back", "Give it back", "Return her domains.", "The registrar", 1000
        )
