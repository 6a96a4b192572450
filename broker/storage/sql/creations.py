"""Customers the broker creates, on SQL (:class:`~broker.storage.model.CreationStore`)."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from broker.storage.model import Creation
from broker.storage.schema import creations
from broker.storage.sql.base import SQLBase, storage_error


class SQLCreationStore(SQLBase):
    def begin_creation(self, creation: Creation) -> None:
        """Record that ``creation.subject`` is about to create the e-mail's customer.

        Called by the one holder of the e-mail's create claim, so a later record replaces an
        earlier one (an expired attempt by someone else)."""
        key = and_(creations.c.store == creation.store, creations.c.email_key == creation.email_key)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(creations).where(key))
                conn.execute(insert(creations).values(**asdict(creation)))
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def finish_creation(self, store: str, email_key: str, customer_id: int) -> None:
        self._execute(
            update(creations)
            .where(creations.c.store == store, creations.c.email_key == email_key)
            .values(customer_id=customer_id)
        )

    def forget_creation(self, store: str, email_key: str) -> None:
        """The create was refused for certain (the e-mail is someone else's)."""
        self._execute(
            delete(creations).where(creations.c.store == store, creations.c.email_key == email_key)
        )

    def creation_for(self, store: str, email_key: str, now: int) -> Creation | None:
        row = self._first(
            select(creations).where(
                creations.c.store == store,
                creations.c.email_key == email_key,
                creations.c.expires_at > now,
            )
        )
        return None if row is None else Creation(**row._mapping)
