"""Links and unlinks on SQL (:class:`~broker.storage.model.LinkStore`).

A link is per channel (a subject may be a different customer on each channel), and a
customer has at most one identity per connection across channels. The database enforces it
on one channel (a unique constraint); across channels, ``create_link`` checks for another
subject in the transaction that inserts, after taking the write lock that a concurrent
insert of the same customer would also need (SQLite: the insert itself takes the database's
write lock; PostgreSQL: a transaction-scoped advisory lock on the customer's key), so two
sign-ins racing to give one customer two identities see one winner.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.storage.keys import digest
from broker.storage.model import DEFAULT_CHANNEL, AlreadyExists, Link
from broker.storage.schema import links, scim_blocks, unlinks
from broker.storage.sql.base import SQLBase, storage_error

#: Whether any source blocks the link's customer (read with the link: a sign-in by link then
#: needs no second statement to know). Read as the driver gives it (SQLite: 0 or 1;
#: PostgreSQL: a boolean), made a bool by get_link: the link is read on the driver (.direct).
_BLOCKED = type_coerce(
    exists().where(
        scim_blocks.c.store == links.c.store, scim_blocks.c.customer_id == links.c.customer_id
    ),
    Integer,
).label("blocked")
# The hot path's statements, built once (see pending.py).
_GET_LINK = select(links, _BLOCKED).where(
    links.c.store == bindparam("store"),
    links.c.connection == bindparam("connection"),
    links.c.subject == bindparam("subject"),
    links.c.channel_id == bindparam("channel_id"),
)
_TOUCH_LINK = (
    update(links)
    .where(links.c.id == bindparam("link_id"))
    .values(last_login_at=bindparam("now"), email=bindparam("email"))
)
_TOUCH_VERIFIED_LINK = _TOUCH_LINK.values(verified_at=bindparam("verified_at"))


class SQLLinkStore(SQLBase):
    def get_link(
        self, store: str, connection: str, subject: str, channel_id: int = DEFAULT_CHANNEL
    ) -> Link | None:
        params = {
            "store": store,
            "connection": connection,
            "subject": subject,
            "channel_id": channel_id,
        }
        values = self.driver.one(_GET_LINK, params)
        if values is None:
            return None
        values["blocked"] = bool(values["blocked"])
        return Link(**values)

    def create_link(
        self,
        *,
        store: str,
        connection: str,
        subject: str,
        issuer: str,
        customer_id: int,
        email: str | None,
        now: int,
        channel_id: int = DEFAULT_CHANNEL,
    ) -> Link:
        values = {
            "store": store,
            "issuer": issuer,
            "subject": subject,
            "customer_id": customer_id,
            "connection": connection,
            "email": email,
            "created_at": now,
            "last_login_at": now,
            "verified_at": now,
            "channel_id": channel_id,
        }
        try:
            with self.engine.begin() as conn:
                _lock_customer(conn, store, connection, customer_id)
                result = conn.execute(insert(links).values(**values))
                link_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                other = conn.execute(
                    select(links.c.id)
                    .where(
                        links.c.store == store,
                        links.c.connection == connection,
                        links.c.customer_id == customer_id,
                        links.c.subject != subject,
                    )
                    .limit(1)
                ).first()
                if other is not None:  # leaving the block by raising rolls the insert back
                    raise AlreadyExists("the customer is linked to another identity")
        except IntegrityError:
            raise AlreadyExists("this identity is already linked") from None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return Link(id=link_id, **values)  # type: ignore[arg-type]

    def touch_link(self, link_id: int, *, now: int, email: str | None, verified: bool) -> None:
        params: dict[str, Any] = {"link_id": link_id, "now": now, "email": email}
        statement = _TOUCH_LINK
        if verified:
            statement, params["verified_at"] = _TOUCH_VERIFIED_LINK, now
        self._execute(statement, params)

    def links_for_customer(self, store: str, customer_id: int) -> list[Link]:
        query = (
            select(links)
            .where(links.c.store == store, links.c.customer_id == customer_id)
            .order_by(links.c.id)
        )
        try:
            with self.engine.connect() as conn:
                return [Link(**row._mapping) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def delete_link(self, store: str, link_id: int, *, customer_id: int | None = None) -> bool:
        condition = and_(links.c.store == store, links.c.id == link_id)
        if customer_id is not None:
            condition = and_(condition, links.c.customer_id == customer_id)
        return self._execute(delete(links).where(condition)) > 0

    def delete_links_for_customer(self, store: str, customer_id: int) -> int:
        return self._execute(
            delete(links).where(links.c.store == store, links.c.customer_id == customer_id)
        )

    def record_unlink(
        self, store: str, connection: str, subject: str, customer_id: int, now: int
    ) -> None:
        """Remember that the customer unlinked this identity (kept until they link it again)."""
        row = {
            "store": store,
            "connection": connection,
            "subject": subject,
            "customer_id": customer_id,
            "at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(unlinks).values(**row))
        except IntegrityError:
            return  # already remembered
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def was_unlinked(self, store: str, connection: str, subject: str, customer_id: int) -> bool:
        query = select(unlinks.c.at).where(
            unlinks.c.store == store,
            unlinks.c.connection == connection,
            unlinks.c.subject == subject,
            unlinks.c.customer_id == customer_id,
        )
        return self._first(query) is not None

    def clear_unlink(self, store: str, connection: str, subject: str) -> None:
        """The customer linked this identity again, on purpose."""
        self._execute(
            delete(unlinks).where(
                unlinks.c.store == store,
                unlinks.c.connection == connection,
                unlinks.c.subject == subject,
            )
        )


def _lock_customer(conn: Connection, store: str, connection: str, customer_id: int) -> None:
    """PostgreSQL: hold, until the transaction ends, the lock every link insert for this
    customer and connection takes (SQLite serialises writers by itself)."""
    if conn.dialect.name != "postgresql":
        return
    name = digest(f"link:{store}:{connection}:{customer_id}")
    key = int.from_bytes(bytes.fromhex(name[:16]), "big", signed=True)
    conn.execute(select(func.pg_advisory_xact_lock(key)))
