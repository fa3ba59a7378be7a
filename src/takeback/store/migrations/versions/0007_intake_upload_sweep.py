"""Inbound mode: the uploads found to be copies when a TAKE IT DOWN request was accepted.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intake_requests") as batch:
        batch.add_column(sa.Column("upload_matches", sa.Text(), nullable=True))
        batch.add_column(sa.Column("uploads_matched", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("intake_requests") as batch:
        batch.drop_column("uploads_matched")
        batch.drop_column("upload_matches")
