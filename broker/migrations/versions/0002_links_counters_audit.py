"""Links between IdP identities and customers, attempt counters, the audit log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_login_at", sa.BigInteger),
        sa.Column("verified_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("store", "issuer", "subject", name="uq_links_identity"),
    )
    op.create_index("ix_links_store_customer", "links", ["store", "customer_id"])
    op.create_table(
        "counters",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("connection", sa.String(64)),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255)),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("ip", sa.String(64)),
        sa.Column("detail", sa.String(255)),
    )
    op.create_index("ix_audit_log_store_at", "audit_log", ["store", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("counters")
    op.drop_table("links")
