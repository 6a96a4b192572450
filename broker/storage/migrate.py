"""The schema's versions: :func:`migrate` to the newest, under a lock; :func:`schema_revision`.

The schema is versioned with Alembic (``broker/migrations``). :func:`migrate` brings a
database to the newest version under a lock (a PostgreSQL advisory lock; a lock file beside a
SQLite database), so several workers starting at once migrate it exactly once. ``broker
migrate`` runs it, and so do ``broker serve`` and ``create_app``.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

#: Where the Alembic scripts are: the package ``broker.migrations``.
MIGRATIONS = Path(__file__).parent.parent / "migrations"
#: Any constant shared by every broker process: the PostgreSQL advisory lock for migrations.
_MIGRATION_LOCK_ID = 0x5350_4F42  # "SSOB"


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest schema; safe to call from many processes at once."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision(engine: Engine) -> str | None:
    """The database's schema version (None before the first migration)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
