"""The Alembic migrations build exactly the models' schema, go down and up again, and ship with the package."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.store.db import MIGRATIONS, current_revision
from takeback.store.models import Base

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "cases",
    "banks",
    "signals",
    "signal_removals",
    "api_clients",
    "client_banks",
    "webhooks",
    "webhook_deliveries",
}


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def _head() -> str:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_migrated_schema_matches_models(engine: Engine) -> None:
    assert _diff(engine) == []
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        assert current_revision(conn) == _head()


def test_downgrade_then_upgrade(database_url: str, engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.create_bank(session, "before")
    engine.dispose()
    store.downgrade(database_url)
    assert not TABLES & set(inspect(engine).get_table_names())
    engine.dispose()
    store.upgrade(database_url)
    store.upgrade(database_url)  # a second upgrade is a no-op
    assert _diff(engine) == []
    with sessions.begin() as session:
        assert store.list_banks(session) == []  # the downgrade dropped everything
        bank = store.create_bank(session, "after")
        assert store.add_signals(session, bank.id, [("pdq", "0" * 64, None, None)]).added[0].id == 1


def test_open_store_migrates_an_empty_database(tmp_path: Path) -> None:
    from takeback.config import Settings

    settings = Settings(data_dir=tmp_path / "fresh" / "data")
    engine, factory = store.open_store(settings)
    try:
        assert _diff(engine) == []
        assert (settings.data_dir / "takeback.sqlite3").exists()
        assert settings.data_dir.stat().st_mode & 0o777 == 0o700
        with factory.begin() as session:
            assert store.list_banks(session) == []
    finally:
        engine.dispose()
    # Opening again (the next start) keeps the data and does not re-run migrations.
    engine, factory = store.open_store(settings)
    engine.dispose()


def test_migrations_ship_in_a_non_editable_build(tmp_path: Path) -> None:
    """Build the package the way an installer does (setuptools build_py into a separate directory), then migrate a
    database using only the built copy: the migration scripts must be in it, not just in the source tree."""
    work = tmp_path / "build"
    shutil.copytree(REPO / "src", work / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    pyproject = (REPO / "pyproject.toml").read_text()
    # Older setuptools (the Python 3.11 venv's) cannot read an SPDX license string; the table form means the same
    # thing to this test and does not touch what gets packaged.
    pyproject = re.sub(r'(?m)^license = "([^"]*)"$', r'license = {text = "\1"}', pyproject)
    (work / "pyproject.toml").write_text(pyproject)
    shutil.copy(REPO / "README.md", work / "README.md")
    out = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(out)],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=120,
    )
    built = out / "takeback" / "store" / "migrations"
    assert (built / "env.py").is_file() and (built / "script.py.mako").is_file()
    assert sorted(p.name for p in (built / "versions").glob("*.py")) == sorted(
        p.name for p in (MIGRATIONS / "versions").glob("*.py")
    )
    db = tmp_path / "installed.sqlite3"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import takeback.store.db as db; "
        "assert db.__file__.startswith(sys.argv[1]), db.__file__; "
        "db.upgrade(sys.argv[2]); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(out), f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
