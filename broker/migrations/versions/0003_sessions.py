"""Broker sessions: who signed in where, for logout.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("status_key", sa.String(64), nullable=False, unique=True),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("sid", sa.String(255)),
        sa.Column("name_id", sa.String(512)),
        sa.Column("name_id_format", sa.String(255)),
        sa.Column("session_index", sa.String(255)),
        sa.Column("id_token", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
    )
    op.create_index("ix_sessions_identity", "sessions", ["store", "issuer", "subject"])
    op.create_index("ix_sessions_sid", "sessions", ["store", "issuer", "sid"])


def downgrade() -> None:
    op.drop_table("sessions")
