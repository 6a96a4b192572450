"""Pending sign-ins and the one-time-use cache.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_flows",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_pending_flows_expires_at", "pending_flows", ["expires_at"])
    op.create_table(
        "used_once",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_used_once_expires_at", "used_once", ["expires_at"])


def downgrade() -> None:
    op.drop_table("used_once")
    op.drop_table("pending_flows")
