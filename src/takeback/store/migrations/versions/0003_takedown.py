"""Takedown: parties (and which were found for each finding), notices, notice URLs and events, TAKE IT DOWN
intake requests, evidence log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("web_form", sa.String(2048), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_parties"),
        sa.UniqueConstraint("key", name="uq_parties_key"),
    )
    op.create_table(
        "finding_parties",
        sa.Column("finding_id", BigId, nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resolved_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["findings.id"], name="fk_finding_parties_finding_id_findings", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name="fk_finding_parties_party_id_parties", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("finding_id", "party_id", name="pk_finding_parties"),
    )
    op.create_table(
        "notices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=True),
        sa.Column("web_form", sa.String(2048), nullable=True),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_notices_case_id_cases", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name="fk_notices_party_id_parties", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["notices.id"], name="fk_notices_parent_id_notices", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
    )
    op.create_index("ix_notices_case_id", "notices", ["case_id"])
    op.create_index("ix_notices_state_due_at", "notices", ["state", "due_at"])
    op.create_table(
        "notice_urls",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("notice_id", BigId, nullable=False),
        sa.Column("finding_id", BigId, nullable=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("checked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name="fk_notice_urls_notice_id_notices", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["findings.id"], name="fk_notice_urls_finding_id_findings", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notice_urls"),
    )
    op.create_index("ix_notice_urls_notice_id", "notice_urls", ["notice_id"])
    op.create_index("ix_notice_urls_finding_id", "notice_urls", ["finding_id"])
    op.create_table(
        "notice_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("notice_id", BigId, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name="fk_notice_events_notice_id_notices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notice_events"),
    )
    op.create_index("ix_notice_events_notice_id_id", "notice_events", ["notice_id", "id"])
    op.create_table(
        "intake_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("signals", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("bank_id", sa.Integer(), nullable=True),
        sa.Column("signals_added", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["banks.id"], name="fk_intake_requests_bank_id_banks", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_intake_requests"),
        sa.UniqueConstraint("reference", name="uq_intake_requests_reference"),
    )
    op.create_table(
        "evidence_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_evidence_log_case_id_cases", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_evidence_log"),
        sa.UniqueConstraint("case_id", "position", name="uq_evidence_log_case_id_position"),
    )


def downgrade() -> None:
    op.drop_table("evidence_log")
    op.drop_table("intake_requests")
    op.drop_index("ix_notice_events_notice_id_id", table_name="notice_events")
    op.drop_table("notice_events")
    op.drop_index("ix_notice_urls_finding_id", table_name="notice_urls")
    op.drop_index("ix_notice_urls_notice_id", table_name="notice_urls")
    op.drop_table("notice_urls")
    op.drop_index("ix_notices_state_due_at", table_name="notices")
    op.drop_index("ix_notices_case_id", table_name="notices")
    op.drop_table("notices")
    op.drop_table("finding_parties")
    op.drop_table("parties")
