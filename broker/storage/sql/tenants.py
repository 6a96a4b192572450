"""Stores held in the database, on SQL (:class:`~broker.storage.model.TenantStore`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.storage.model import TenantDocument
from broker.storage.schema import tenant_changes, tenant_stores
from broker.storage.sql.base import SQLBase, storage_error

# Every reader asks for the version often: the statements are built once (see pending.py).
_TENANTS_VERSION = select(tenant_changes.c.version).where(tenant_changes.c.id == 1)
_BUMP_TENANTS = (
    update(tenant_changes)
    .where(tenant_changes.c.id == 1)
    .values(version=tenant_changes.c.version + 1)
    .returning(tenant_changes.c.version)
)


def _document(row: Any) -> TenantDocument:
    return TenantDocument(
        key=row.key,
        document=json.loads(row.document),
        version=int(row.version),
        updated_at=int(row.updated_at),
    )


class _Stale(Exception):
    """The stored store changed between the read and the write."""


class SQLTenantStore(SQLBase):
    def tenants_version(self) -> int:
        """The version of the last change to any stored store (0: none ever)."""
        row = self._first(_TENANTS_VERSION)
        return 0 if row is None else int(row[0])

    def tenant_documents(self) -> dict[str, TenantDocument]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(tenant_stores)).all()
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return {row.key: _document(row) for row in rows}

    def tenant_document(self, key: str) -> TenantDocument | None:
        """One stored store (an edit reads only its own, not every store's)."""
        row = self._first(select(tenant_stores).where(tenant_stores.c.key == key))
        return None if row is None else _document(row)

    def put_tenant(self, key: str, document: Mapping[str, Any], now: int) -> int:
        """Create or replace a stored store; returns its new version (every change raises the
        shared counter in the same transaction, so readers see both or neither)."""
        try:
            with self.engine.begin() as conn:
                version = self._write_tenant(conn, key, document, now)
        except IntegrityError:
            return self.put_tenant(key, document, now)  # created meanwhile: replace it
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return version

    def replace_tenant(
        self, key: str, document: Mapping[str, Any], *, expected_version: int, now: int
    ) -> int | None:
        """Replace a stored store only if it is still at ``expected_version`` (an edit made
        from what was read): the new version, or None when another change came first."""
        body = json.dumps(dict(document))
        try:
            with self.engine.begin() as conn:
                current = conn.execute(
                    select(tenant_stores.c.version).where(tenant_stores.c.key == key)
                ).first()
                if current is None or int(current[0]) != expected_version:
                    return None
                version = self._bump_tenants(conn)
                changed = conn.execute(
                    update(tenant_stores)
                    .where(tenant_stores.c.key == key, tenant_stores.c.version == expected_version)
                    .values(document=body, version=version, updated_at=now)
                ).rowcount
                if not changed:
                    raise _Stale  # changed after our read: undo the bump with the rest
        except _Stale:
            return None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return version

    def delete_tenant(self, key: str) -> bool:
        try:
            with self.engine.begin() as conn:
                gone = conn.execute(delete(tenant_stores).where(tenant_stores.c.key == key))
                if gone.rowcount:
                    self._bump_tenants(conn)
                return bool(gone.rowcount)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    @classmethod
    def _write_tenant(cls, conn: Any, key: str, document: Mapping[str, Any], now: int) -> int:
        """Create or replace one stored store in ``conn``'s transaction; its new version."""
        body = json.dumps(dict(document))
        version = cls._bump_tenants(conn)
        changed = conn.execute(
            update(tenant_stores)
            .where(tenant_stores.c.key == key)
            .values(document=body, version=version, updated_at=now)
        ).rowcount
        if not changed:
            conn.execute(
                insert(tenant_stores).values(
                    key=key, document=body, version=version, updated_at=now
                )
            )
        return version

    @staticmethod
    def _bump_tenants(conn: Any) -> int:
        row = conn.execute(_BUMP_TENANTS).first()
        if row is not None:
            return int(row[0])
        try:
            with conn.begin_nested():
                conn.execute(insert(tenant_changes).values(id=1, version=1))
            return 1
        except IntegrityError:  # another writer made the row first: take the next number
            row = conn.execute(_BUMP_TENANTS).first()
            return int(row[0])
