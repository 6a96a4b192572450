"""Attempt budgets and failure counters on SQL (:class:`~broker.storage.model.CounterStore`)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.errors import StorageError
from broker.storage.schema import counters
from broker.storage.sql.base import SQLBase, storage_error


class SQLCounterStore(SQLBase):
    def reserve_attempt(self, key: str, *, limit: int, window: int, now: int) -> int | None:
        """Take one of ``limit`` attempts under ``key`` in a ``window`` from the first one.

        Reserve first, then act: the count is raised only while it is below the limit, in one
        statement, so any number of concurrent requests get at most ``limit`` attempts. Returns
        the attempt's number (1..limit), or None when none is left."""
        reserve = (
            update(counters)
            .where(counters.c.key == key, counters.c.expires_at > now, counters.c.count < limit)
            .values(count=counters.c.count + 1)
            .returning(counters.c.count)
        )
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(reserve).first()
                    if row is not None:
                        return int(row[0])
                    live = conn.execute(
                        select(counters.c.count).where(
                            counters.c.key == key, counters.c.expires_at > now
                        )
                    ).first()
                    if live is not None:
                        return None  # at the limit
                    if limit < 1:
                        return None
                    # Only an expired window goes: one another request just started stays,
                    # and our insert then fails and reserves again.
                    conn.execute(
                        delete(counters).where(counters.c.key == key, counters.c.expires_at <= now)
                    )
                    conn.execute(insert(counters).values(key=key, count=1, expires_at=now + window))
                    return 1
            except IntegrityError:
                continue  # another request started the window first: reserve again
            except SQLAlchemyError as exc:
                raise storage_error(exc) from None
        raise StorageError(
            "The sign-in service is very busy. Please try again shortly.",
            detail="attempt counter contended",
        )

    def release_attempt(self, key: str, now: int) -> None:
        """Give back one reserved attempt (the attempt did not happen, or succeeded)."""
        self._execute(
            update(counters)
            .where(counters.c.key == key, counters.c.expires_at > now, counters.c.count > 0)
            .values(count=counters.c.count - 1)
        )

    def count_failure(self, key: str, *, window: int, now: int) -> int:
        """Add one failure under ``key``; a counter lives ``window`` seconds from its first."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(counters).where(counters.c.key == key, counters.c.expires_at <= now)
                )
                bumped = conn.execute(
                    update(counters).where(counters.c.key == key).values(count=counters.c.count + 1)
                )
                if bumped.rowcount == 0:
                    conn.execute(insert(counters).values(key=key, count=1, expires_at=now + window))
                row = conn.execute(select(counters.c.count).where(counters.c.key == key)).first()
        except IntegrityError:  # another process inserted it first: count again, once
            return self.count_failure(key, window=window, now=now)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return int(row[0]) if row is not None else 1

    def failures(self, key: str, now: int) -> int:
        row = self._first(
            select(counters.c.count).where(counters.c.key == key, counters.c.expires_at > now)
        )
        return 0 if row is None else int(row[0])

    def clear_failures(self, key: str) -> None:
        self._execute(delete(counters).where(counters.c.key == key))
