"""SCIM users, groups and blocks on SQL (:class:`~broker.storage.model.ScimStore`).

Uniqueness is the database's: a user name is unique per connection without regard to case
(a unique constraint on the lower-cased ``user_name_key``), an external id exactly, so two
creates racing over one name see one winner and the other :class:`AlreadyExists`. A replace
with ``expected_version`` writes only over that version (one UPDATE that names it), and a
group's members are replaced in the transaction that writes the group.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from broker.storage.model import AlreadyExists, ScimGroup, ScimUser
from broker.storage.schema import scim_blocks, scim_groups, scim_members, scim_users
from broker.storage.sql.base import SQLBase, storage_error

_USER_KEYS = ("user_name", "external_id", "id", "email")
_GROUP_KEYS = ("display_name", "external_id", "id", "member")


class SQLScimStore(SQLBase):
    # -- users ------------------------------------------------------------------------------

    def create_scim_user(self, user: ScimUser) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(scim_users).values(**_user_row(user)))
        except IntegrityError:
            raise AlreadyExists("a SCIM user with this userName or externalId exists") from None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def get_scim_user(self, store: str, connection: str, user_id: str) -> ScimUser | None:
        row = self._first(
            select(scim_users).where(_user_key(store, connection, user_id)),
        )
        return None if row is None else _user(row)

    def find_scim_users(
        self, store: str, connection: str, *, where: Mapping[str, str], start: int, count: int
    ) -> tuple[int, list[ScimUser]]:
        condition = and_(scim_users.c.store == store, scim_users.c.connection == connection)
        for key, value in where.items():
            condition = and_(condition, _user_filter(key, value))
        page = (
            select(scim_users)
            .where(condition)
            .order_by(scim_users.c.created_at, scim_users.c.id)
            .offset(max(start, 1) - 1)
            .limit(max(count, 0))
        )
        try:
            with self.engine.connect() as conn:
                total = conn.execute(
                    select(func.count()).select_from(scim_users).where(condition)
                ).scalar_one()
                users = [_user(row) for row in conn.execute(page)] if count > 0 else []
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return int(total), users

    def replace_scim_user(self, user: ScimUser, *, expected_version: int | None) -> ScimUser | None:
        condition = _user_key(user.store, user.connection, user.id)
        if expected_version is not None:
            condition = and_(condition, scim_users.c.version == expected_version)
        values = _user_row(user)
        for name in ("store", "connection", "id", "version", "created_at"):
            del values[name]
        try:
            with self.engine.begin() as conn:
                written = conn.execute(
                    update(scim_users)
                    .where(condition)
                    .values(version=scim_users.c.version + 1, **values)
                ).rowcount
                if not written:
                    return None
                row = conn.execute(
                    select(scim_users).where(_user_key(user.store, user.connection, user.id))
                ).first()
        except IntegrityError:
            raise AlreadyExists("a SCIM user with this userName or externalId exists") from None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return None if row is None else _user(row)

    def delete_scim_user(self, store: str, connection: str, user_id: str) -> bool:
        """Delete a user and its memberships."""
        return self._delete_with_memberships(
            delete(scim_users).where(_user_key(store, connection, user_id)),
            store,
            connection,
            scim_members.c.user_id == user_id,
        )

    def scim_users_of_customer(self, store: str, customer_id: int) -> list[ScimUser]:
        """The SCIM users of every connection of the store that stand for this customer."""
        query = (
            select(scim_users)
            .where(scim_users.c.store == store, scim_users.c.customer_id == customer_id)
            .order_by(scim_users.c.connection, scim_users.c.created_at, scim_users.c.id)
        )
        try:
            with self.engine.connect() as conn:
                return [_user(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    # -- groups -----------------------------------------------------------------------------

    def create_scim_group(self, group: ScimGroup) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(scim_groups).values(**_group_row(group)))
                _write_members(conn, group)
        except IntegrityError:
            raise AlreadyExists("a SCIM group with this externalId exists") from None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def get_scim_group(self, store: str, connection: str, group_id: str) -> ScimGroup | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(scim_groups).where(_group_key(store, connection, group_id))
                ).first()
                if row is None:
                    return None
                return _groups(conn, store, connection, [row])[0]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def find_scim_groups(
        self, store: str, connection: str, *, where: Mapping[str, str], start: int, count: int
    ) -> tuple[int, list[ScimGroup]]:
        condition = and_(scim_groups.c.store == store, scim_groups.c.connection == connection)
        for key, value in where.items():
            condition = and_(condition, _group_filter(store, connection, key, value))
        page = (
            select(scim_groups)
            .where(condition)
            .order_by(scim_groups.c.created_at, scim_groups.c.id)
            .offset(max(start, 1) - 1)
            .limit(max(count, 0))
        )
        try:
            with self.engine.connect() as conn:
                total = conn.execute(
                    select(func.count()).select_from(scim_groups).where(condition)
                ).scalar_one()
                rows = list(conn.execute(page)) if count > 0 else []
                return int(total), _groups(conn, store, connection, rows)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def replace_scim_group(
        self, group: ScimGroup, *, expected_version: int | None
    ) -> ScimGroup | None:
        key = _group_key(group.store, group.connection, group.id)
        condition = key
        if expected_version is not None:
            condition = and_(condition, scim_groups.c.version == expected_version)
        values = _group_row(group)
        for name in ("store", "connection", "id", "version", "created_at"):
            del values[name]
        try:
            with self.engine.begin() as conn:
                written = conn.execute(
                    update(scim_groups)
                    .where(condition)
                    .values(version=scim_groups.c.version + 1, **values)
                ).rowcount
                if not written:
                    return None
                conn.execute(delete(scim_members).where(_members_of(group)))
                _write_members(conn, group)
                row = conn.execute(select(scim_groups).where(key)).first()
                if row is None:
                    return None
                return _groups(conn, group.store, group.connection, [row])[0]
        except IntegrityError:
            raise AlreadyExists("a SCIM group with this externalId exists") from None
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def delete_scim_group(self, store: str, connection: str, group_id: str) -> bool:
        """Delete a group and its memberships."""
        return self._delete_with_memberships(
            delete(scim_groups).where(_group_key(store, connection, group_id)),
            store,
            connection,
            scim_members.c.group_id == group_id,
        )

    def _delete_with_memberships(
        self, statement: Any, store: str, connection: str, membership: Any
    ) -> bool:
        """Run ``statement`` (one user's or group's delete) with its memberships' in one
        transaction; whether it deleted anything."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(scim_members).where(
                        scim_members.c.store == store,
                        scim_members.c.connection == connection,
                        membership,
                    )
                )
                gone = conn.execute(statement).rowcount
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return bool(gone)

    def groups_of_scim_user(self, store: str, connection: str, user_id: str) -> list[ScimGroup]:
        query = (
            select(scim_groups)
            .where(
                scim_groups.c.store == store,
                scim_groups.c.connection == connection,
                _has_member(store, connection, user_id),
            )
            .order_by(scim_groups.c.created_at, scim_groups.c.id)
        )
        try:
            with self.engine.connect() as conn:
                return _groups(conn, store, connection, list(conn.execute(query)))
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    # -- blocks -----------------------------------------------------------------------------

    def block_customer(self, store: str, customer_id: int, *, source: str, now: int) -> None:
        """Block the customer on every connection of the store (again: the first time stays)."""
        if self._has_block(store, customer_id, source):
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(scim_blocks).values(
                        store=store, customer_id=customer_id, source=source, since=now
                    )
                )
        except IntegrityError:
            return  # blocked meanwhile by the same source
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def _has_block(self, store: str, customer_id: int, source: str) -> bool:
        query = select(scim_blocks.c.since).where(
            scim_blocks.c.store == store,
            scim_blocks.c.customer_id == customer_id,
            scim_blocks.c.source == source,
        )
        return self._first(query) is not None

    def unblock_customer(self, store: str, customer_id: int, *, source: str) -> bool:
        """Lift this source's block (another source's stays); False when it had none."""
        statement = delete(scim_blocks).where(
            scim_blocks.c.store == store,
            scim_blocks.c.customer_id == customer_id,
            scim_blocks.c.source == source,
        )
        return self._execute(statement) > 0

    def is_blocked(self, store: str, customer_id: int) -> bool:
        query = (
            select(scim_blocks.c.since)
            .where(scim_blocks.c.store == store, scim_blocks.c.customer_id == customer_id)
            .limit(1)
        )
        return self._first(query) is not None

    def blocks_older_than(
        self, store: str, cutoff: int, *, source: str | None = None
    ) -> list[tuple[int, int]]:
        """``(customer_id, since)`` of the customers blocked before ``cutoff`` (``since``:
        their earliest block, of ``source`` alone when it is given), oldest first."""
        condition = scim_blocks.c.store == store
        if source is not None:
            condition = and_(condition, scim_blocks.c.source == source)
        since = func.min(scim_blocks.c.since)
        query = (
            select(scim_blocks.c.customer_id, since.label("since"))
            .where(condition)
            .group_by(scim_blocks.c.customer_id)
            .having(since < cutoff)
            .order_by(since, scim_blocks.c.customer_id)
        )
        try:
            with self.engine.connect() as conn:
                return [(int(row[0]), int(row[1])) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None


# -- rows and conditions -------------------------------------------------------------------


def _fold(value: str) -> str:
    """A user name, e-mail or display name as compared: without regard to case."""
    return value.lower()


def _user_row(user: ScimUser) -> dict[str, Any]:
    return {
        "store": user.store,
        "connection": user.connection,
        "id": user.id,
        "user_name": user.user_name,
        "user_name_key": _fold(user.user_name),
        "external_id": user.external_id,
        "email": user.email,
        "email_key": None if user.email is None else _fold(user.email),
        "customer_id": user.customer_id,
        "active": bool(user.active),
        "document": json.dumps(user.document),
        "version": user.version,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _user(row: Any) -> ScimUser:
    return ScimUser(
        store=row.store,
        connection=row.connection,
        id=row.id,
        user_name=row.user_name,
        external_id=row.external_id,
        email=row.email,
        customer_id=None if row.customer_id is None else int(row.customer_id),
        active=bool(row.active),
        document=json.loads(row.document),
        version=int(row.version),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
    )


def _user_key(store: str, connection: str, user_id: str) -> ColumnElement[bool]:
    return and_(
        scim_users.c.store == store,
        scim_users.c.connection == connection,
        scim_users.c.id == user_id,
    )


def _user_filter(key: str, value: str) -> ColumnElement[bool]:
    if key == "user_name":
        return scim_users.c.user_name_key == _fold(value)
    if key == "email":
        return scim_users.c.email_key == _fold(value)
    if key == "external_id":
        return scim_users.c.external_id == value
    if key == "id":
        return scim_users.c.id == value
    raise ValueError(f"SCIM users are found by {', '.join(_USER_KEYS)}, not {key!r}")


def _group_row(group: ScimGroup) -> dict[str, Any]:
    return {
        "store": group.store,
        "connection": group.connection,
        "id": group.id,
        "display_name": group.display_name,
        "display_name_key": _fold(group.display_name),
        "external_id": group.external_id,
        "document": json.dumps(group.document),
        "version": group.version,
        "created_at": group.created_at,
        "updated_at": group.updated_at,
    }


def _group_key(store: str, connection: str, group_id: str) -> ColumnElement[bool]:
    return and_(
        scim_groups.c.store == store,
        scim_groups.c.connection == connection,
        scim_groups.c.id == group_id,
    )


def _members_of(group: ScimGroup) -> ColumnElement[bool]:
    return and_(
        scim_members.c.store == group.store,
        scim_members.c.connection == group.connection,
        scim_members.c.group_id == group.id,
    )


def _has_member(store: str, connection: str, user_id: str) -> ColumnElement[bool]:
    return scim_groups.c.id.in_(
        select(scim_members.c.group_id).where(
            scim_members.c.store == store,
            scim_members.c.connection == connection,
            scim_members.c.user_id == user_id,
        )
    )


def _group_filter(store: str, connection: str, key: str, value: str) -> ColumnElement[bool]:
    if key == "display_name":
        return scim_groups.c.display_name_key == _fold(value)
    if key == "external_id":
        return scim_groups.c.external_id == value
    if key == "id":
        return scim_groups.c.id == value
    if key == "member":
        return _has_member(store, connection, value)
    raise ValueError(f"SCIM groups are found by {', '.join(_GROUP_KEYS)}, not {key!r}")


def _write_members(conn: Connection, group: ScimGroup) -> None:
    members = list(dict.fromkeys(group.members))  # once each, in the order given
    if not members:
        return
    conn.execute(
        insert(scim_members),
        [
            {
                "store": group.store,
                "connection": group.connection,
                "group_id": group.id,
                "user_id": user_id,
                "position": position,
            }
            for position, user_id in enumerate(members)
        ],
    )


def _groups(conn: Connection, store: str, connection: str, rows: Iterable[Any]) -> list[ScimGroup]:
    """The groups of these rows, each with its members (one query for them all)."""
    rows = list(rows)
    if not rows:
        return []
    members: dict[str, list[str]] = {row.id: [] for row in rows}
    query = (
        select(scim_members.c.group_id, scim_members.c.user_id)
        .where(
            scim_members.c.store == store,
            scim_members.c.connection == connection,
            scim_members.c.group_id.in_(list(members)),
        )
        .order_by(scim_members.c.group_id, scim_members.c.position)
    )
    for group_id, user_id in conn.execute(query):
        members[group_id].append(user_id)
    return [
        ScimGroup(
            store=row.store,
            connection=row.connection,
            id=row.id,
            display_name=row.display_name,
            external_id=row.external_id,
            document=json.loads(row.document),
            members=tuple(members[row.id]),
            version=int(row.version),
            created_at=int(row.created_at),
            updated_at=int(row.updated_at),
        )
        for row in rows
    ]
