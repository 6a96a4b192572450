"""SCIM 2.0: users and groups per connection, group members, and blocks on customers.

A connection's IdP provisions its shoppers over SCIM (``/{store}/scim/{conn}/v2/...``). Each
user's SCIM JSON is kept as last written, with the columns filters and uniqueness need: the
user name lower-cased (unique per connection, so racing creates see one winner), the external
id, the primary e-mail lower-cased and the customer. Deprovisioning blocks a customer on every
connection of the store (``scim_blocks``, one row per source). New tables only: nothing to
bring over; going down drops them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_users",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.Text, nullable=False),
        sa.Column("user_name_key", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("email", sa.String(320)),
        sa.Column("email_key", sa.String(320)),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("store", "connection", "user_name_key", name="uq_scim_users_user_name"),
        sa.UniqueConstraint("store", "connection", "external_id", name="uq_scim_users_external_id"),
    )
    op.create_index("ix_scim_users_email", "scim_users", ["store", "connection", "email_key"])
    op.create_index("ix_scim_users_customer", "scim_users", ["store", "customer_id"])
    op.create_table(
        "scim_groups",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("display_name_key", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "store", "connection", "external_id", name="uq_scim_groups_external_id"
        ),
    )
    op.create_index(
        "ix_scim_groups_display_name", "scim_groups", ["store", "connection", "display_name_key"]
    )
    op.create_table(
        "scim_members",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_scim_members_user", "scim_members", ["store", "connection", "user_id"])
    op.create_table(
        "scim_blocks",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.String(80), primary_key=True),
        sa.Column("since", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scim_blocks")
    op.drop_index("ix_scim_members_user", table_name="scim_members")
    op.drop_table("scim_members")
    op.drop_index("ix_scim_groups_display_name", table_name="scim_groups")
    op.drop_table("scim_groups")
    op.drop_index("ix_scim_users_customer", table_name="scim_users")
    op.drop_index("ix_scim_users_email", table_name="scim_users")
    op.drop_table("scim_users")
