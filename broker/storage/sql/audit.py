"""The audit log on SQL (:class:`~broker.storage.model.AuditStore`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from broker.storage.model import AuditEntry, flat_row
from broker.storage.schema import audit_log
from broker.storage.sql.base import SQLBase, storage_error

# The hot path's statement, built once (see pending.py).
INSERT_AUDIT = insert(audit_log)
#: Audit text columns and their sizes: longer values are cut, never refused.
_AUDIT_TEXT_SIZES = {"connection": 64, "subject": 255, "ip": 64, "detail": 255}


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """The row of an audit entry; text fields are cut to their columns (never an error)."""
    values = flat_row(entry)
    for name, size in _AUDIT_TEXT_SIZES.items():
        value = values[name]
        values[name] = value[:size] if value else None
    return values


class SQLAuditStore(SQLBase):
    def record_audit(self, entry: AuditEntry) -> None:
        """Write one audit row; text fields are cut to their columns (never an error)."""
        self._execute(INSERT_AUDIT, audit_row(entry))

    def recent_audit(self, store: str, limit: int = 50) -> list[AuditEntry]:
        return self.search_audit(store, limit=limit)

    def search_audit(
        self,
        store: str,
        *,
        limit: int = 50,
        event: str | None = None,
        connection: str | None = None,
        outcome: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[AuditEntry]:
        """A store's audit entries, newest first, narrowed by whichever filters are given."""
        columns = [audit_log.c[f.name] for f in fields(AuditEntry)]
        conditions = [audit_log.c.store == store]
        if event is not None:
            conditions.append(audit_log.c.event == event)
        if connection is not None:
            conditions.append(audit_log.c.connection == connection)
        if outcome is not None:
            conditions.append(audit_log.c.outcome == outcome)
        if since is not None:
            conditions.append(audit_log.c.at >= since)
        if until is not None:
            conditions.append(audit_log.c.at < until)
        query = select(*columns).where(*conditions).order_by(audit_log.c.id.desc()).limit(limit)
        try:
            with self.engine.connect() as conn:
                return [AuditEntry(**row._mapping) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
