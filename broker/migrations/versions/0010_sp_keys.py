"""The broker's own SAML SP key pairs, for connections that name no key files: made on first
use, rolled over by ``broker keys --rollover`` (docs/design.md, "SP keys").

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sp_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_pem", sa.Text, nullable=False),
        sa.Column("cert_pem", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("activates_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sp_keys")
