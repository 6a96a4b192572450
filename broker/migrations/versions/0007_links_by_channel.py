"""Links by channel: an IdP subject may be a different customer on each of a store's channels.

BigCommerce keeps e-mails unique per channel, so one person can be one customer on channel 1
and another on channel 2 (docs/bigcommerce-api.md, "Multi-storefront"). Links gain
``channel_id``; the identity is unique on ``(store, connection, channel_id, subject)`` and a
customer has one identity per connection on each channel (and across channels, checked where
links are created: :mod:`broker.storage.sql.links`).

Existing rows get ``channel_id = 0``: the store's default channel, whichever channel its
``channel_id`` names. The migration cannot know that id (a store of the file is not in the
database), and 0 keeps each link where it signed in before: on the store's one channel.
Going down keeps the default channel's links and drops the others (the old keys cannot hold
them).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(
            sa.Column("channel_id", sa.Integer, nullable=False, server_default="0"),
        )
        batch.drop_constraint("uq_links_connection_subject", type_="unique")
        batch.drop_constraint("uq_links_connection_customer", type_="unique")
        batch.create_unique_constraint(
            "uq_links_channel_subject", ["store", "connection", "channel_id", "subject"]
        )
        batch.create_unique_constraint(
            "uq_links_channel_customer", ["store", "connection", "channel_id", "customer_id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM links WHERE channel_id <> 0")
    with op.batch_alter_table("links") as batch:
        batch.drop_constraint("uq_links_channel_subject", type_="unique")
        batch.drop_constraint("uq_links_channel_customer", type_="unique")
        batch.drop_column("channel_id")
        batch.create_unique_constraint(
            "uq_links_connection_subject", ["store", "connection", "subject"]
        )
        batch.create_unique_constraint(
            "uq_links_connection_customer", ["store", "connection", "customer_id"]
        )
