"""The one-time-use cache on SQL (:class:`~broker.storage.model.OnceStore`).

``use_once`` is one statement on its own: an INSERT that, when the key is already there,
takes it over only if that entry has expired (``ON CONFLICT (key) DO UPDATE ... WHERE
expires_at <= now``, which SQLite 3.24+ and PostgreSQL both have). One statement holds the
key's row (PostgreSQL) or the database (SQLite) while it decides, so of any number of
processes using one key at once exactly one is told True; the others' statement changes no
row, and returns nothing (``RETURNING key`` tells the two apart: a driver's rowcount for an
upsert is not to be trusted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from broker.storage.schema import used_once
from broker.storage.sql.base import SQLBase


def _use_once(insert: Any) -> Any:
    statement = insert(used_once).values(key=bindparam("key"), expires_at=bindparam("expires_at"))
    return statement.on_conflict_do_update(
        index_elements=[used_once.c.key],
        set_={"expires_at": statement.excluded.expires_at},
        where=used_once.c.expires_at <= bindparam("now"),
    ).returning(used_once.c.key)


# Built once, per dialect (see pending.py).
_USE_ONCE = {"postgresql": _use_once(postgresql.insert), "sqlite": _use_once(sqlite.insert)}


class SQLOnceStore(SQLBase):
    def use_once(self, key: str, expires_at: int, now: int) -> bool:
        params = {"key": key, "expires_at": expires_at, "now": now}
        return self.driver.one(_USE_ONCE[self.engine.dialect.name], params) is not None

    def seen_once(self, key: str, now: int) -> bool:
        """Whether ``key`` is in the one-time cache and not expired (a claim still held)."""
        query = select(used_once.c.key).where(used_once.c.key == key, used_once.c.expires_at > now)
        return self._first(query) is not None

    def forget_once(self, key: str) -> None:
        """Drop ``key`` from the one-time cache (a claim given back)."""
        self._execute(delete(used_once).where(used_once.c.key == key))
