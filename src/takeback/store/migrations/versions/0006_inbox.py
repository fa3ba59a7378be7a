"""TAKE IT DOWN inbox: removal requests a platform received, with their 48-hour deadline.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("requester_name", sa.String(200), nullable=False),
        sa.Column("requester_email", sa.String(320), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("urls", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("good_faith", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("copies_removed", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name="fk_inbox_requests_decided_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_requests"),
    )
    op.create_index("ix_inbox_requests_status_due_at", "inbox_requests", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_requests_status_due_at", table_name="inbox_requests")
    op.drop_table("inbox_requests")
