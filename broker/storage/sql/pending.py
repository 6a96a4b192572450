"""Pending flows on SQL (:class:`~broker.storage.model.PendingStore`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.storage.model import AlreadyExists
from broker.storage.schema import pending_flows
from broker.storage.sql.base import SQLBase, storage_error

# The hot path's statements, built once: SQLAlchemy then only binds values (the benchmark in
# bench/ found statement building to be most of the storage's CPU per sign-in).
_INSERT_PENDING = insert(pending_flows)
_TAKE_PENDING = (
    delete(pending_flows)
    .where(pending_flows.c.key == bindparam("key"))
    .returning(pending_flows.c.data, pending_flows.c.expires_at)
)


class SQLPendingStore(SQLBase):
    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None:
        row = {"key": key, "data": json.dumps(dict(data)), "expires_at": expires_at}
        try:
            with self._single_statement() as conn:
                conn.execute(_INSERT_PENDING, row)
        except IntegrityError:
            raise AlreadyExists("duplicate pending key") from None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def take_pending(self, key: str, now: int) -> dict[str, Any] | None:
        # One DELETE ... RETURNING, a statement on its own: of any number of takers, in any
        # number of processes, only the one whose delete removed the row gets it.
        try:
            with self._single_statement() as conn:
                row = conn.execute(_TAKE_PENDING, {"key": key}).first()
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        if row is None or row.expires_at <= now:
            return None
        data: dict[str, Any] = json.loads(row.data)
        return data

    def peek_pending(self, key: str, now: int) -> dict[str, Any] | None:
        query = select(pending_flows.c.data).where(
            pending_flows.c.key == key, pending_flows.c.expires_at > now
        )
        row = self._first(query)
        return None if row is None else dict(json.loads(row.data))
