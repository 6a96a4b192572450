"""Pending flows on SQL (:class:`~broker.storage.model.PendingStore`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, insert, select

from broker.storage.model import AlreadyExists
from broker.storage.schema import pending_flows
from broker.storage.sql.base import SQLBase

# The hot path's statements, built once: SQLAlchemy then only binds values (the benchmark in
# bench/ found statement building to be most of the storage's CPU per sign-in).
_INSERT_PENDING = insert(pending_flows)
_TAKE_PENDING = (
    delete(pending_flows)
    .where(pending_flows.c.key == bindparam("key"))
    .returning(pending_flows.c.data, pending_flows.c.expires_at)
)


def _duplicate() -> AlreadyExists:
    return AlreadyExists("duplicate pending key")


class SQLPendingStore(SQLBase):
    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None:
        row = {"key": key, "data": json.dumps(dict(data)), "expires_at": expires_at}
        self.driver.one(_INSERT_PENDING, row, integrity=_duplicate)

    def take_pending(self, key: str, now: int) -> dict[str, Any] | None:
        # One DELETE ... RETURNING, a statement on its own: of any number of takers, in any
        # number of processes, only the one whose delete removed the row gets it.
        row = self.driver.one(_TAKE_PENDING, {"key": key})
        if row is None or row["expires_at"] <= now:
            return None
        data: dict[str, Any] = json.loads(row["data"])
        return data

    def peek_pending(self, key: str, now: int) -> dict[str, Any] | None:
        query = select(pending_flows.c.data).where(
            pending_flows.c.key == key, pending_flows.c.expires_at > now
        )
        row = self._first(query)
        return None if row is None else dict(json.loads(row.data))
