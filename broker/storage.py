"""The broker's storage: pending sign-ins and a one-time-use cache, on SQLAlchemy Core.

SQLite by default (``sqlite:///broker.db``); PostgreSQL (``postgresql+psycopg://...``) when
several broker processes or hosts must share state. Every verb is atomic on its own, so two
workers racing over the same key see one winner.

Verbs:
- ``save_pending(key, data, expires_at)`` / ``take_pending(key, now)``: a started sign-in
  (state, nonce, PKCE verifier...) kept server-side; taking it deletes it, so a callback can be
  used once. Expired entries are never returned. ``peek_pending`` reads without taking.
- Links, ``(store, connection, subject) -> customer id``: ``get_link``, ``create_link``
  (raises AlreadyExists for an identity already linked, or a customer already linked through
  that connection), ``touch_link``, ``links_for_customer``, ``delete_link``,
  ``delete_links_for_customer``. An identity is the connection it came through and the
  subject: never the issuer the IdP declares.
- ``record_unlink`` / ``was_unlinked`` / ``clear_unlink``: identities a customer unlinked.
- ``begin_creation`` / ``finish_creation`` / ``forget_creation`` / ``creation_for``:
  customers the broker set out to create, by e-mail, to reconcile an uncertain create.
- ``reserve_attempt(key, limit, window, now)`` / ``release_attempt``: attempt limits that hold
  under any concurrency (reserve, then act); ``count_failure`` / ``failures`` /
  ``clear_failures``: counters that expire.
- ``record_audit(entry)`` / ``recent_audit(store, limit)``: the audit log.
- ``use_once(key, expires_at, now)``: True the first time a key is seen, False after, until it
  expires (replay protection for assertion ids and logout tokens, and claims: one creator per
  e-mail). ``seen_once`` asks without using; ``forget_once`` gives a claim back.
- ``tenants_version`` / ``tenant_documents`` / ``put_tenant`` / ``delete_tenant``: stores held
  in the database (installed as an app), behind one change counter every process reads.
- ``gc(now, audit_before=)``: delete what has expired, and audit rows past their retention.

The schema is versioned with Alembic (``broker/migrations``). :func:`migrate` brings a
database to the newest version under a lock (a PostgreSQL advisory lock; a lock file beside a
SQLite database), so several workers starting at once migrate it exactly once. ``broker
migrate`` runs it, and so do ``broker serve`` and ``create_app``.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from broker.errors import StorageError


class AlreadyExists(StorageError):
    code = "already_exists"


metadata = MetaData()

pending_flows = Table(
    "pending_flows",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

used_once = Table(
    "used_once",
    metadata,
    Column("key", Text, primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("store", String(64), nullable=False),
    Column("issuer", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("connection", String(64), nullable=False),
    Column("email", String(320)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger),
    Column("verified_at", BigInteger, nullable=False),
    # An identity belongs to the connection it came through, never to the issuer it declares.
    UniqueConstraint("store", "connection", "subject", name="uq_links_connection_subject"),
    # One identity per connection per customer: two people of one IdP never share an account,
    # even when their sign-ins race.
    UniqueConstraint("store", "connection", "customer_id", name="uq_links_connection_customer"),
    Index("ix_links_store_customer", "store", "customer_id"),
)

#: Identities a customer unlinked: the next automatic link must not undo their choice.
unlinks = Table(
    "unlinks",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("connection", String(64), primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("customer_id", BigInteger, primary_key=True),
    Column("at", BigInteger, nullable=False),
)

#: Customers the broker set out to create, by e-mail: a customer found after an uncertain
#: create (a timeout after the store committed) or a concurrent one is recognised as ours.
creations = Table(
    "creations",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("email_key", Text, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("customer_id", BigInteger),
    Column("started_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

counters = Table(
    "counters",
    metadata,
    Column("key", Text, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("store", String(64), nullable=False),
    Column("connection", String(64)),
    Column("event", String(32), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("subject", String(255)),
    Column("customer_id", BigInteger),
    Column("ip", String(64)),
    Column("detail", String(255)),
    Index("ix_audit_log_store_at", "store", "at"),
)


sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status_key", String(64), nullable=False, unique=True),
    Column("store", String(64), nullable=False),
    Column("connection", String(64), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("sid", Text),
    Column("name_id", Text),
    Column("name_id_format", Text),
    Column("session_index", Text),
    Column("id_token", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Index("ix_sessions_identity", "store", "connection", "subject"),
    Index("ix_sessions_sid", "store", "connection", "sid"),
)

#: Stores held in the database (the app stage: installed stores), each a document shaped like
#: a ``[stores.X]`` table of the file, with the version of its last change.
tenant_stores = Table(
    "tenant_stores",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: One row: a counter raised by every change of ``tenant_stores``, read cheaply by every
#: worker and instance to notice a change.
tenant_changes = Table(
    "tenant_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# The hot path's statements, built once: SQLAlchemy then only binds values (the benchmark in
# bench/ found statement building to be most of the storage's CPU per sign-in).
_INSERT_PENDING = insert(pending_flows)
_TAKE_PENDING = (
    delete(pending_flows)
    .where(pending_flows.c.key == bindparam("key"))
    .returning(pending_flows.c.data, pending_flows.c.expires_at)
)
_GET_LINK = select(links).where(
    links.c.store == bindparam("store"),
    links.c.connection == bindparam("connection"),
    links.c.subject == bindparam("subject"),
)
_TOUCH_LINK = (
    update(links)
    .where(links.c.id == bindparam("link_id"))
    .values(last_login_at=bindparam("now"), email=bindparam("email"))
)
_TOUCH_VERIFIED_LINK = _TOUCH_LINK.values(verified_at=bindparam("verified_at"))
_INSERT_AUDIT = insert(audit_log)
_TENANTS_VERSION = select(tenant_changes.c.version).where(tenant_changes.c.id == 1)
_BUMP_TENANTS = (
    update(tenant_changes)
    .where(tenant_changes.c.id == 1)
    .values(version=tenant_changes.c.version + 1)
    .returning(tenant_changes.c.version)
)
#: Audit text columns and their sizes: longer values are cut, never refused.
_AUDIT_TEXT_SIZES = {"connection": 64, "subject": 255, "ip": 64, "detail": 255}


@dataclass(frozen=True)
class Link:
    """An IdP identity tied to a BigCommerce customer of one store.

    The identity is ``(store, connection, subject)``: the connection it came through, never
    the issuer it declared (``issuer`` is kept as a record of who vouched)."""

    id: int
    store: str
    issuer: str
    subject: str
    customer_id: int
    connection: str
    #: The e-mail the IdP gave at the last sign-in (the link does not depend on it).
    email: str | None
    created_at: int
    last_login_at: int | None
    #: When the customer was last seen to exist at BigCommerce.
    verified_at: int


@dataclass(frozen=True)
class Creation:
    """A customer the broker set out to create for one identity (``customer_id`` once known)."""

    store: str
    email_key: str
    connection: str
    subject: str
    started_at: int
    expires_at: int
    customer_id: int | None = None


@dataclass(frozen=True)
class TenantDocument:
    """A store held in the database: its ``[stores.X]`` table as data, and its version."""

    key: str
    document: Mapping[str, Any]
    version: int
    updated_at: int


@dataclass(frozen=True)
class AuditEntry:
    at: int
    store: str
    event: str
    outcome: str
    connection: str | None = None
    subject: str | None = None
    customer_id: int | None = None
    ip: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BrokerSession:
    """A sign-in the broker made: what logout needs to end it here and at the IdP.

    ``id`` and ``status_key`` are hashes of the browser's cookie and of the storefront
    script's status token; the tokens themselves are never stored."""

    id: str
    status_key: str
    store: str
    connection: str
    customer_id: int
    issuer: str
    subject: str
    created_at: int
    expires_at: int
    sid: str | None = None
    name_id: str | None = None
    name_id_format: str | None = None
    session_index: str | None = None
    #: The OIDC ID token, for id_token_hint at RP-initiated logout. Never logged or shown.
    id_token: str | None = field(default=None, repr=False)
    ended_at: int | None = None

    def active(self, now: int) -> bool:
        return self.ended_at is None and now < self.expires_at


class Storage(Protocol):
    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None: ...
    def take_pending(self, key: str, now: int) -> dict[str, Any] | None: ...
    def peek_pending(self, key: str, now: int) -> dict[str, Any] | None: ...
    def use_once(self, key: str, expires_at: int, now: int) -> bool: ...
    def seen_once(self, key: str, now: int) -> bool: ...
    def forget_once(self, key: str) -> None: ...
    def get_link(self, store: str, connection: str, subject: str) -> Link | None: ...
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
    ) -> Link: ...
    def touch_link(self, link_id: int, *, now: int, email: str | None, verified: bool) -> None: ...
    def links_for_customer(self, store: str, customer_id: int) -> list[Link]: ...
    def delete_link(self, store: str, link_id: int, *, customer_id: int | None = None) -> bool: ...
    def delete_links_for_customer(self, store: str, customer_id: int) -> int: ...
    def record_unlink(
        self, store: str, connection: str, subject: str, customer_id: int, now: int
    ) -> None: ...
    def was_unlinked(self, store: str, connection: str, subject: str, customer_id: int) -> bool: ...
    def clear_unlink(self, store: str, connection: str, subject: str) -> None: ...
    def begin_creation(self, creation: Creation) -> None: ...
    def finish_creation(self, store: str, email_key: str, customer_id: int) -> None: ...
    def forget_creation(self, store: str, email_key: str) -> None: ...
    def creation_for(self, store: str, email_key: str, now: int) -> Creation | None: ...
    def reserve_attempt(self, key: str, *, limit: int, window: int, now: int) -> int | None: ...
    def release_attempt(self, key: str, now: int) -> None: ...
    def count_failure(self, key: str, *, window: int, now: int) -> int: ...
    def failures(self, key: str, now: int) -> int: ...
    def clear_failures(self, key: str) -> None: ...
    def record_audit(self, entry: AuditEntry) -> None: ...
    def recent_audit(self, store: str, limit: int = 50) -> list[AuditEntry]: ...
    def create_session(self, session: BrokerSession) -> None: ...
    def get_session(self, session_id: str) -> BrokerSession | None: ...
    def session_by_status_key(self, status_key: str) -> BrokerSession | None: ...
    def end_session(self, session_id: str, now: int) -> bool: ...
    def end_sessions(
        self, store: str, connection: str, *, subject: str | None, sid: str | None, now: int
    ) -> int: ...
    def end_saml_sessions(
        self,
        store: str,
        connection: str,
        *,
        name_id: str,
        session_indexes: Sequence[str],
        now: int,
    ) -> int: ...
    def gc(self, now: int, *, audit_before: int | None = None) -> int: ...
    def tenants_version(self) -> int: ...
    def tenant_documents(self) -> dict[str, TenantDocument]: ...
    def put_tenant(self, key: str, document: Mapping[str, Any], now: int) -> int: ...
    def delete_tenant(self, key: str) -> bool: ...
    def ping(self) -> None: ...


class SQLStorage:
    """The one implementation, for SQLite and PostgreSQL alike."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None:
        row = {"key": key, "data": json.dumps(dict(data)), "expires_at": expires_at}
        try:
            with self.engine.begin() as conn:
                conn.execute(_INSERT_PENDING, row)
        except IntegrityError:
            raise AlreadyExists("duplicate pending key") from None
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    def take_pending(self, key: str, now: int) -> dict[str, Any] | None:
        # One DELETE ... RETURNING: of two takers, only the one whose delete removed the row
        # gets it.
        try:
            with self.engine.begin() as conn:
                row = conn.execute(_TAKE_PENDING, {"key": key}).first()
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
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
            raise _storage_error(exc) from None
        return True

    def seen_once(self, key: str, now: int) -> bool:
        """Whether ``key`` is in the one-time cache and not expired (a claim still held)."""
        query = select(used_once.c.key).where(used_once.c.key == key, used_once.c.expires_at > now)
        return self._first(query) is not None

    def forget_once(self, key: str) -> None:
        """Drop ``key`` from the one-time cache (a claim given back)."""
        self._execute(delete(used_once).where(used_once.c.key == key))

    # -- links ---------------------------------------------------------------------------

    def get_link(self, store: str, connection: str, subject: str) -> Link | None:
        params = {"store": store, "connection": connection, "subject": subject}
        try:
            with self.engine.connect() as conn:
                row = conn.execute(_GET_LINK, params).first()
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
        return None if row is None else Link(**row._mapping)

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
        }
        try:
            with self.engine.begin() as conn:
                result = conn.execute(insert(links).values(**values))
                link_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError:
            raise AlreadyExists("this identity is already linked") from None
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
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
            raise _storage_error(exc) from None

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
            raise _storage_error(exc) from None

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

    # -- customers the broker creates ------------------------------------------------------

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
            raise _storage_error(exc) from None

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

    # -- attempt counters ----------------------------------------------------------------

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
                raise _storage_error(exc) from None
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
            raise _storage_error(exc) from None
        return int(row[0]) if row is not None else 1

    def failures(self, key: str, now: int) -> int:
        row = self._first(
            select(counters.c.count).where(counters.c.key == key, counters.c.expires_at > now)
        )
        return 0 if row is None else int(row[0])

    def clear_failures(self, key: str) -> None:
        self._execute(delete(counters).where(counters.c.key == key))

    # -- audit log ---------------------------------------------------------------------

    def record_audit(self, entry: AuditEntry) -> None:
        """Write one audit row; text fields are cut to their columns (never an error)."""
        values = asdict(entry)
        for name, size in _AUDIT_TEXT_SIZES.items():
            value = values[name]
            values[name] = value[:size] if value else None
        self._execute(_INSERT_AUDIT, values)

    def recent_audit(self, store: str, limit: int = 50) -> list[AuditEntry]:
        columns = [audit_log.c[f.name] for f in fields(AuditEntry)]
        query = (
            select(*columns)
            .where(audit_log.c.store == store)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        try:
            with self.engine.connect() as conn:
                return [AuditEntry(**row._mapping) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    # -- broker sessions ---------------------------------------------------------------

    def create_session(self, session: BrokerSession) -> None:
        self._execute(insert(sessions), asdict(session))

    def get_session(self, session_id: str) -> BrokerSession | None:
        row = self._first(select(sessions).where(sessions.c.id == session_id))
        return None if row is None else BrokerSession(**row._mapping)

    def session_by_status_key(self, status_key: str) -> BrokerSession | None:
        row = self._first(select(sessions).where(sessions.c.status_key == status_key))
        return None if row is None else BrokerSession(**row._mapping)

    def end_session(self, session_id: str, now: int) -> bool:
        statement = (
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        return self._execute(statement) > 0

    def end_sessions(
        self, store: str, connection: str, *, subject: str | None, sid: str | None, now: int
    ) -> int:
        """End the sessions an IdP names, of its own connection only: by its session id, else
        every one of the subject."""
        condition = and_(
            sessions.c.store == store,
            sessions.c.connection == connection,
            sessions.c.ended_at.is_(None),
        )
        if sid is not None:
            condition = and_(condition, sessions.c.sid == sid)
        if subject is not None:
            condition = and_(condition, sessions.c.subject == subject)
        if sid is None and subject is None:
            return 0
        return self._execute(update(sessions).where(condition).values(ended_at=now))

    def end_saml_sessions(
        self,
        store: str,
        connection: str,
        *,
        name_id: str,
        session_indexes: Sequence[str],
        now: int,
    ) -> int:
        """End the sessions a SAML LogoutRequest names, of its own connection only: its NameID,
        narrowed to the listed SessionIndexes when it gives any (SAML Core 3.7.3.2)."""
        condition = and_(
            sessions.c.store == store,
            sessions.c.connection == connection,
            sessions.c.name_id == name_id,
            sessions.c.ended_at.is_(None),
        )
        if session_indexes:
            condition = and_(condition, sessions.c.session_index.in_(list(session_indexes)))
        return self._execute(update(sessions).where(condition).values(ended_at=now))

    # -- stores held in the database ----------------------------------------------------

    def tenants_version(self) -> int:
        """The version of the last change to any stored store (0: none ever)."""
        row = self._first(_TENANTS_VERSION)
        return 0 if row is None else int(row[0])

    def tenant_documents(self) -> dict[str, TenantDocument]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(tenant_stores)).all()
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
        return {
            row.key: TenantDocument(
                key=row.key,
                document=json.loads(row.document),
                version=int(row.version),
                updated_at=int(row.updated_at),
            )
            for row in rows
        }

    def put_tenant(self, key: str, document: Mapping[str, Any], now: int) -> int:
        """Create or replace a stored store; returns its new version (every change raises the
        shared counter in the same transaction, so readers see both or neither)."""
        body = json.dumps(dict(document))
        try:
            with self.engine.begin() as conn:
                version = self._bump_tenants(conn)
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
        except IntegrityError:
            return self.put_tenant(key, document, now)  # created meanwhile: replace it
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None
        return version

    def delete_tenant(self, key: str) -> bool:
        try:
            with self.engine.begin() as conn:
                gone = conn.execute(delete(tenant_stores).where(tenant_stores.c.key == key))
                if gone.rowcount:
                    self._bump_tenants(conn)
                return bool(gone.rowcount)
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

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

    # -- upkeep --------------------------------------------------------------------------

    def gc(self, now: int, *, audit_before: int | None = None) -> int:
        """Delete what has expired, and audit rows older than ``audit_before`` (retention)."""
        removed = 0
        for table in (pending_flows, used_once, counters, sessions, creations):
            removed += self._execute(delete(table).where(table.c.expires_at <= now))
        if audit_before is not None:
            removed += self._execute(delete(audit_log).where(audit_log.c.at < audit_before))
        return removed

    def _first(self, query: Any) -> Any:
        try:
            with self.engine.connect() as conn:
                return conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    def _execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(statement, params).rowcount or 0)
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise _storage_error(exc) from None

    def close(self) -> None:
        self.engine.dispose()


def open_storage(url: str, *, migrate_schema: bool = True) -> SQLStorage:
    """Build the storage for a database URL, migrated to the newest schema unless told not to."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 15}}
        if memory:
            options["poolclass"] = StaticPool
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    storage = SQLStorage(engine)
    if migrate_schema:
        migrate(engine)
    return storage


#: Any constant shared by every broker process: the PostgreSQL advisory lock for migrations.
_MIGRATION_LOCK_ID = 0x5350_4F42  # "SSOB"


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest schema; safe to call from many processes at once."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision(engine: Engine) -> str | None:
    """The database's schema version (None before the first migration)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    # With WAL, NORMAL cannot corrupt the database; a power cut may lose the last commits
    # (pending sign-ins, audit rows), and each commit no longer waits for fsync.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _storage_error(exc: SQLAlchemyError) -> StorageError:
    return StorageError(
        "The sign-in service cannot reach its database. Please try again shortly.",
        detail=type(exc).__name__,
    )
