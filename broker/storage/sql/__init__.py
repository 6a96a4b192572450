"""The storage on SQLAlchemy Core: one repository per aggregate, and :class:`SQLStorage`.

SQLite by default (``sqlite:///broker.db``); PostgreSQL (``postgresql+psycopg://...``) when
several broker processes or hosts must share state. Each module here holds one aggregate's
SQL (a small class on :class:`~.base.SQLBase`); :class:`SQLStorage` composes them, so callers
hold one object that offers every verb of :class:`~broker.storage.model.Storage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, delete, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

import broker.storage.schema as schema
from broker.storage.migrate import migrate
from broker.storage.sql.app import SQLAppStore
from broker.storage.sql.audit import SQLAuditStore
from broker.storage.sql.base import SQLBase, storage_error
from broker.storage.sql.counters import SQLCounterStore
from broker.storage.sql.creations import SQLCreationStore
from broker.storage.sql.links import SQLLinkStore
from broker.storage.sql.liveness import IDLE_SECONDS, ping_when_idle
from broker.storage.sql.once import SQLOnceStore
from broker.storage.sql.pending import SQLPendingStore
from broker.storage.sql.scim import SQLScimStore
from broker.storage.sql.sessions import SQLSessionStore
from broker.storage.sql.signins import SQLSignInStore
from broker.storage.sql.sp_keys import SQLSPKeyStore
from broker.storage.sql.staff import SQLStaffStore
from broker.storage.sql.tenants import SQLTenantStore

if TYPE_CHECKING:
    from broker.storage.model import Storage

__all__ = [
    "SQLAppStore",
    "SQLAuditStore",
    "SQLBase",
    "SQLCounterStore",
    "SQLCreationStore",
    "SQLLinkStore",
    "SQLOnceStore",
    "SQLPendingStore",
    "SQLSPKeyStore",
    "SQLScimStore",
    "SQLSessionStore",
    "SQLSignInStore",
    "SQLStaffStore",
    "SQLStorage",
    "SQLTenantStore",
    "open_storage",
]


#: The tables whose rows expire, in the order gc empties them. (Named through ``schema``: the
#: modules of this package are named like some tables, and an import of one rebinds its name.)
_EXPIRING = (
    schema.pending_flows,
    schema.used_once,
    schema.counters,
    schema.sessions,
    schema.creations,
)


class SQLStorage(
    SQLPendingStore,
    SQLOnceStore,
    SQLLinkStore,
    SQLCreationStore,
    SQLCounterStore,
    SQLAuditStore,
    SQLSessionStore,
    SQLTenantStore,
    SQLAppStore,
    SQLScimStore,
    SQLSignInStore,
    SQLSPKeyStore,
    SQLStaffStore,
):
    """The one implementation, for SQLite and PostgreSQL alike: every aggregate on one engine."""

    def gc(self, now: int, *, audit_before: int | None = None) -> int:
        """Delete what has expired, and audit rows older than ``audit_before`` (retention)."""
        removed = 0
        for table in _EXPIRING:
            removed += self._execute(delete(table).where(table.c.expires_at <= now))
        if audit_before is not None:
            audit_log = schema.audit_log
            removed += self._execute(delete(audit_log).where(audit_log.c.at < audit_before))
        return removed

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def hold_connection(self) -> None:
        self.driver.hold()

    def release_connection(self) -> None:
        self.driver.release()

    def close(self) -> None:
        self.engine.dispose()


if TYPE_CHECKING:

    def _offers_every_verb(storage: SQLStorage) -> Storage:
        return storage  # mypy checks SQLStorage against the Protocol here


def open_storage(
    url: str, *, migrate_schema: bool = True, ping_after_idle: float = IDLE_SECONDS
) -> SQLStorage:
    """Build the storage for a database URL, migrated to the newest schema unless told not to.
    A server's pooled connections are pinged when they were idle ``ping_after_idle`` seconds
    (:mod:`.liveness`)."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 15}}
        if memory:
            options["poolclass"] = StaticPool
        else:
            # A connection is a file handle; a request holds one (Driver.hold), so as many
            # requests at once as there are, each with its own. Ten stay open between them.
            options.update(pool_size=10, max_overflow=-1)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=10)
        ping_when_idle(engine, ping_after_idle)
    storage = SQLStorage(engine)
    if migrate_schema:
        migrate(engine)
    return storage


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    # With WAL, NORMAL cannot corrupt the database; a power cut may lose the last commits
    # (pending sign-ins, audit rows), and each commit no longer waits for fsync.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
