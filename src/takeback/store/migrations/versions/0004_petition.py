"""Petition: petitions, updates, signatures, counters, review flags, removal log, secrets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _petition_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["petition_id"], ["petitions.id"], name=f"fk_{table}_petition_id_petitions", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "petitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("goal", sa.Integer(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("closes_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_petitions_case_id_cases", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_petitions"),
        sa.UniqueConstraint("slug", name="uq_petitions_slug"),
    )
    op.create_index("ix_petitions_case_id", "petitions", ["case_id"])
    op.create_table(
        "petition_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _petition_fk("petition_updates"),
        sa.PrimaryKeyConstraint("id", name="pk_petition_updates"),
    )
    op.create_index("ix_petition_updates_petition_id", "petition_updates", ["petition_id"])
    op.create_table(
        "signatures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("postcode", sa.String(16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("consent_updates", sa.Boolean(), nullable=False),
        sa.Column("consent_public", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=True),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("verified_at", TS, nullable=True),
        _petition_fk("signatures"),
        sa.PrimaryKeyConstraint("id", name="pk_signatures"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_signatures_petition_id_email_key", "signatures", ["petition_id", "email_key"], unique=True)
    op.create_index(
        "ix_signatures_petition_id_idempotency_key", "signatures", ["petition_id", "idempotency_key"], unique=True
    )
    op.create_index("ix_signatures_petition_id_created_at", "signatures", ["petition_id", "created_at"])
    op.create_table(
        "petition_counts",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("verified", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        _petition_fk("petition_counts"),
        sa.PrimaryKeyConstraint("petition_id", "kind", "key", name="pk_petition_counts"),
    )
    op.create_table(
        "petition_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("signatures", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        _petition_fk("petition_flags"),
        sa.PrimaryKeyConstraint("id", name="pk_petition_flags"),
    )
    op.create_index(
        "ix_petition_flags_window", "petition_flags", ["petition_id", "kind", "key", "window_start"], unique=True
    )
    op.create_table(
        "petition_removals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("signature_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("previous_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=True),
        sa.Column("removed_at", TS, nullable=False),
        _petition_fk("petition_removals"),
        sa.PrimaryKeyConstraint("id", name="pk_petition_removals"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_petition_removals_petition_id", "petition_removals", ["petition_id"])
    op.create_table(
        "petition_secrets",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_petition_secrets"),
    )


def downgrade() -> None:
    op.drop_table("petition_secrets")
    op.drop_table("petition_removals")
    op.drop_table("petition_flags")
    op.drop_table("petition_counts")
    op.drop_table("signatures")
    op.drop_table("petition_updates")
    op.drop_table("petitions")
