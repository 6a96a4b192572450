"""Control-panel staff from IdP groups (``[stores.X.staff]``): the queue of Account API
changes, the store users the broker added, each account's request budget and the group
memberships seen at sign-in.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_queue",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("user_id", sa.String(120)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("open_key", sa.String(420)),
        sa.Column("run_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("open_key", name="uq_staff_queue_open"),
    )
    op.create_index("ix_staff_queue_store_state", "staff_queue", ["store", "state", "run_at"])
    op.create_table(
        "staff_grants",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "staff_budget",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("tat_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "staff_sightings",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("in_group", sa.Boolean, nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_sightings")
    op.drop_table("staff_budget")
    op.drop_table("staff_grants")
    op.drop_index("ix_staff_queue_store_state", table_name="staff_queue")
    op.drop_table("staff_queue")
