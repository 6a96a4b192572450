"""The broker as a BigCommerce app: installs, their admin users, and API tokens.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_installs",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("owner_id", sa.BigInteger),
        sa.Column("name", sa.String(255)),
        sa.Column("installed_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "admin_users",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("added_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("connection", sa.String(64)),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_index("ix_api_tokens_store", "api_tokens", ["store", "kind"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_store", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("admin_users")
    op.drop_table("app_installs")
