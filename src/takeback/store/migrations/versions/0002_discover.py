"""Discover: case names, findings with their latest evidence, finding events (history) and crawl runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_names_case_id_cases", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_case_names"),
        sa.UniqueConstraint("case_id", "kind", "value", name="uq_case_names_case_id_kind_value"),
    )
    op.create_table(
        "findings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("url_key", sa.String(2048), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("last_checked_at", TS, nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_findings_case_id_cases", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    op.create_index("ix_findings_case_id_url_key", "findings", ["case_id", "url_key"], unique=True)
    op.create_table(
        "finding_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("finding_id", BigId, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["findings.id"], name="fk_finding_events_finding_id_findings", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_finding_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_finding_events_finding_id_id", "finding_events", ["finding_id", "id"])
    op.create_table(
        "crawl_runs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_crawl_runs_case_id_cases", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_runs"),
    )
    op.create_index("ix_crawl_runs_case_id_id", "crawl_runs", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_crawl_runs_case_id_id", table_name="crawl_runs")
    op.drop_table("crawl_runs")
    op.drop_index("ix_finding_events_finding_id_id", table_name="finding_events")
    op.drop_table("finding_events")
    op.drop_index("ix_findings_case_id_url_key", table_name="findings")
    op.drop_table("findings")
    op.drop_table("case_names")
