"""Links remember the B2B Edition company plan last reconciled for their customer, and when.

A returning buyer whose IdP still gives the same company and role, within the store's
``company_user_cache_hours``, then signs in with no B2B Edition request (issue: a store's
150 B2B requests per minute capped returning buyers at 150 sign-ins a minute). Both columns
are empty for existing links: their next sign-in asks B2B Edition once, as before.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("company_plan", sa.String(64)))
        batch.add_column(sa.Column("company_checked_at", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("company_checked_at")
        batch.drop_column("company_plan")
