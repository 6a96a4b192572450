"""The broker's storage: pending sign-ins and a one-time-use cache, on SQLAlchemy Core.

SQLite by default (``sqlite:///broker.db``); PostgreSQL (``postgresql+psycopg://...``) when
several broker processes or hosts must share state. Every verb is atomic on its own, so two
workers racing over the same key see one winner.

Verbs:
- ``save_pending(key, data, expires_at)`` / ``take_pending(key, now)``: a started sign-in
  (state, nonce, PKCE verifier...) kept server-side; taking it deletes it, so a callback can be
  used once. Expired entries are never returned.
- ``use_once(key, expires_at, now)``: True the first time a key is seen, False after, until it
  expires (replay protection for assertion ids and logout tokens).
- ``gc(now)``: delete what has expired.

The schema is versioned with Alembic (``broker/migrations``). :func:`migrate` brings a
database to the newest version under a lock (a PostgreSQL advisory lock; a lock file beside a
SQLite database), so several workers starting at once migrate it exactly once. ``broker
migrate`` runs it, and so do ``broker serve`` and ``create_app``.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from broker.errors import StorageError


class AlreadyExists(StorageError):
    code = "already_exists"


metadata = MetaData()

pending_flows = Table(
    "pending_flows",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

used_once = Table(
    "used_once",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


class Storage(Protocol):
    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None: ...
    def take_pending(self, key: str, now: int) -> dict[str, Any] | None: ...
    def use_once(self, key: str, expires_at: int, now: int) -> bool: ...
    def gc(self, now: int) -> int: ...
    def ping(self) -> None: ...


class SQLStorage:
    """The one implementation, for SQLite and PostgreSQL alike."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None:
        row = {"key": key, "data": json.dumps(dict(data)), "expires_at": expires_at}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(pending_flows).values(**row))
        except IntegrityError:
            raise AlreadyExists("duplicate pending key") from None
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    def take_pending(self, key: str, now: int) -> dict[str, Any] | None:
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(pending_flows.c.data, pending_flows.c.expires_at).where(
                        pending_flows.c.key == key
                    )
                ).first()
                if row is None:
                    return None
                # Only the transaction whose delete removed the row owns it.
                deleted = conn.execute(delete(pending_flows).where(pending_flows.c.key == key))
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
        if deleted.rowcount != 1 or row.expires_at <= now:
            return None
        data: dict[str, Any] = json.loads(row.data)
        return data

    def use_once(self, key: str, expires_at: int, now: int) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(used_once).where(used_once.c.key == key, used_once.c.expires_at <= now)
                )
                conn.execute(insert(used_once).values(key=key, expires_at=expires_at))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
        return True

    def gc(self, now: int) -> int:
        try:
            with self.engine.begin() as conn:
                a = conn.execute(delete(pending_flows).where(pending_flows.c.expires_at <= now))
                b = conn.execute(delete(used_once).where(used_once.c.expires_at <= now))
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
        return int(a.rowcount or 0) + int(b.rowcount or 0)

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    def close(self) -> None:
        self.engine.dispose()


def open_storage(url: str, *, migrate_schema: bool = True) -> SQLStorage:
    """Build the storage for a database URL, migrated to the newest schema unless told not to."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 15}}
        if memory:
            options["poolclass"] = StaticPool
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    storage = SQLStorage(engine)
    if migrate_schema:
        migrate(engine)
    return storage


#: Any constant shared by every broker process: the PostgreSQL advisory lock for migrations.
_MIGRATION_LOCK_ID = 0x5350_4F42  # "SSOB"


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest schema; safe to call from many processes at once."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _storage_error(exc: SQLAlchemyError) -> StorageError:
    return StorageError(
        "The sign-in service cannot reach its database. Please try again shortly.",
        detail=type(exc).__name__,
    )
