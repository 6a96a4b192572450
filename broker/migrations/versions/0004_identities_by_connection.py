"""Every identity belongs to its connection: links and sessions keyed by connection.

Links were unique on ``(store, issuer, subject)``, the issuer being whatever the IdP declared:
a second connection declaring the first one's issuer reached its links. They are now unique on
``(store, connection, subject)``; the issuer stays as a record of who vouched. Sessions are
found by connection for logout. Identifiers an IdP chooses (subjects, NameIDs, ``sid``,
SessionIndex) and one-time keys become unbounded text. New tables: ``unlinks`` (a shopper's
unlink is not undone by the next automatic link) and ``creations`` (customers the broker set
out to create, so an uncertain create is reconciled as ours).

Existing rows keep their meaning: each link already names its connection. A customer now has
at most one identity per connection: should one connection hold the same subject twice (only
possible if its issuer was changed in the file), or two subjects for one customer (two people
of one IdP sharing an account, which automatic linking refused), the most recently used link
is kept and the other removed; that person links again at their next sign-in.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DELETE FROM links WHERE id IN (
            SELECT older.id FROM links older JOIN links newer
              ON older.store = newer.store AND older.connection = newer.connection
             AND (older.subject = newer.subject OR older.customer_id = newer.customer_id)
             AND (COALESCE(older.last_login_at, 0) < COALESCE(newer.last_login_at, 0)
                  OR (COALESCE(older.last_login_at, 0) = COALESCE(newer.last_login_at, 0)
                      AND older.id < newer.id))
        )
        """
    )
    with op.batch_alter_table("links", recreate="always") as batch:
        batch.drop_constraint("uq_links_identity", type_="unique")
        batch.alter_column("issuer", type_=sa.Text, existing_nullable=False)
        batch.alter_column("subject", type_=sa.Text, existing_nullable=False)
        batch.create_unique_constraint(
            "uq_links_connection_subject", ["store", "connection", "subject"]
        )
        batch.create_unique_constraint(
            "uq_links_connection_customer", ["store", "connection", "customer_id"]
        )
    op.drop_index("ix_sessions_identity", table_name="sessions")
    op.drop_index("ix_sessions_sid", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        for column in ("issuer", "subject"):
            batch.alter_column(column, type_=sa.Text, existing_nullable=False)
        for column in ("sid", "name_id", "name_id_format", "session_index"):
            batch.alter_column(column, type_=sa.Text, existing_nullable=True)
    op.create_index("ix_sessions_identity", "sessions", ["store", "connection", "subject"])
    op.create_index("ix_sessions_sid", "sessions", ["store", "connection", "sid"])
    with op.batch_alter_table("used_once") as batch:
        batch.alter_column("key", type_=sa.Text, existing_nullable=False)
    with op.batch_alter_table("counters") as batch:
        batch.alter_column("key", type_=sa.Text, existing_nullable=False)
    op.create_table(
        "unlinks",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("subject", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "creations",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("email_key", sa.Text, primary_key=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("creations")
    op.drop_table("unlinks")
    op.drop_index("ix_sessions_identity", table_name="sessions")
    op.drop_index("ix_sessions_sid", table_name="sessions")
    op.create_index("ix_sessions_identity", "sessions", ["store", "issuer", "subject"])
    op.create_index("ix_sessions_sid", "sessions", ["store", "issuer", "sid"])
    with op.batch_alter_table("links", recreate="always") as batch:
        batch.drop_constraint("uq_links_connection_subject", type_="unique")
        batch.drop_constraint("uq_links_connection_customer", type_="unique")
        batch.create_unique_constraint("uq_links_identity", ["store", "issuer", "subject"])
