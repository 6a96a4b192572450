"""The one-time-use cache on SQL (:class:`~broker.storage.model.OnceStore`)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.storage.schema import used_once
from broker.storage.sql.base import SQLBase, storage_error


class SQLOnceStore(SQLBase):
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
            raise storage_error(exc) from None
        return True

    def seen_once(self, key: str, now: int) -> bool:
        """Whether ``key`` is in the one-time cache and not expired (a claim still held)."""
        query = select(used_once.c.key).where(used_once.c.key == key, used_once.c.expires_at > now)
        return self._first(query) is not None

    def forget_once(self, key: str) -> None:
        """Drop ``key`` from the one-time cache (a claim given back)."""
        self._execute(delete(used_once).where(used_once.c.key == key))
