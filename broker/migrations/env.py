"""Alembic environment: always run by broker.storage.migrate with a connection in hand."""

from __future__ import annotations

from alembic import context

from broker.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
