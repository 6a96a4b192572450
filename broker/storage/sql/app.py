"""The broker as a BigCommerce app, on SQL (:class:`~broker.storage.model.AppStore`): installs,
the control-panel users who administer a store, API tokens, and a store's removal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.storage.model import ApiToken, AppInstall, scim_source
from broker.storage.schema import (
    admin_users,
    api_tokens,
    app_installs,
    audit_log,
    counters,
    creations,
    links,
    scim_blocks,
    scim_groups,
    scim_members,
    scim_users,
    sessions,
    tenant_stores,
    unlinks,
    used_once,
)
from broker.storage.sql.base import SQLBase, storage_error
from broker.storage.sql.tenants import SQLTenantStore

#: Tables whose rows carry the store in a ``store`` column: a removed store leaves none.
_BY_STORE = (
    links,
    unlinks,
    creations,
    sessions,
    admin_users,
    api_tokens,
    app_installs,
    scim_members,
    scim_groups,
    scim_users,
    scim_blocks,
)
#: A connection's identities: removed with it, or when it now stands for another IdP.
_BY_CONNECTION = (links, unlinks, sessions, creations, scim_members, scim_groups, scim_users)


class SQLAppStore(SQLBase):
    # -- installs ---------------------------------------------------------------------------

    def install_store(
        self,
        store: str,
        document: Mapping[str, Any],
        *,
        scope: str,
        owner_id: int | None,
        user_id: int | None,
        name: str | None,
        now: int,
    ) -> int:
        """Record an install (or a reinstall: the new token and scopes replace the old) with
        the store's document and its first admin user, in one transaction; returns the
        document's version."""
        try:
            with self.engine.begin() as conn:
                version = SQLTenantStore._write_tenant(conn, store, document, now)
                values = {"scope": scope, "owner_id": owner_id, "name": name, "updated_at": now}
                if not conn.execute(
                    update(app_installs).where(app_installs.c.store == store).values(**values)
                ).rowcount:
                    conn.execute(
                        insert(app_installs).values(store=store, installed_at=now, **values)
                    )
                if user_id is not None:
                    self._add_admin(conn, store, user_id, now)
        except IntegrityError:
            # Two installs of one store raced: the later one wins, as a reinstall would.
            return self.install_store(
                store,
                document,
                scope=scope,
                owner_id=owner_id,
                user_id=user_id,
                name=name,
                now=now,
            )
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return version

    def get_install(self, store: str) -> AppInstall | None:
        row = self._first(select(app_installs).where(app_installs.c.store == store))
        if row is None:
            return None
        return AppInstall(
            store=row.store,
            scope=row.scope,
            owner_id=row.owner_id,
            name=row.name,
            installed_at=int(row.installed_at),
            updated_at=int(row.updated_at),
        )

    def remove_store(self, store: str) -> int:
        """Delete every row of a store: its document, install, admins, tokens, links,
        sessions, creations, audit, one-time keys and counters. Returns the rows deleted."""
        removed = 0
        try:
            with self.engine.begin() as conn:
                for table in _BY_STORE:
                    removed += conn.execute(delete(table).where(table.c.store == store)).rowcount
                audit = delete(audit_log).where(audit_log.c.store == store)
                removed += conn.execute(audit).rowcount
                for table in (used_once, counters):
                    # Their keys name the store after the kind: "saml:{store}:...".
                    removed += conn.execute(
                        delete(table).where(table.c.key.contains(f":{store}:", autoescape=True))
                    ).rowcount
                gone = conn.execute(delete(tenant_stores).where(tenant_stores.c.key == store))
                if gone.rowcount:
                    SQLTenantStore._bump_tenants(conn)
                removed += gone.rowcount
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return removed

    def forget_connection(self, store: str, connection: str) -> int:
        """Delete every identity of a connection (links, unlink records, sessions, creations,
        its SCIM users and groups, and the blocks its SCIM put on customers): when it is
        removed, or now stands for another IdP, none of its subjects may reach the customers
        the old IdP's subjects were linked to, nor its old IdP keep them blocked."""
        removed = 0
        try:
            with self.engine.begin() as conn:
                for table in _BY_CONNECTION:
                    removed += conn.execute(
                        delete(table).where(
                            and_(table.c.store == store, table.c.connection == connection)
                        )
                    ).rowcount
                removed += conn.execute(
                    delete(scim_blocks).where(
                        scim_blocks.c.store == store,
                        scim_blocks.c.source == scim_source(connection),
                    )
                ).rowcount
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return removed

    # -- admin users ------------------------------------------------------------------------

    def add_admin_user(self, store: str, user_id: int, now: int) -> None:
        try:
            with self.engine.begin() as conn:
                self._add_admin(conn, store, user_id, now)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def is_admin_user(self, store: str, user_id: int) -> bool:
        query = select(admin_users.c.added_at).where(
            and_(admin_users.c.store == store, admin_users.c.user_id == user_id)
        )
        return self._first(query) is not None

    def remove_admin_user(self, store: str, user_id: int) -> bool:
        statement = delete(admin_users).where(
            and_(admin_users.c.store == store, admin_users.c.user_id == user_id)
        )
        return self._execute(statement) > 0

    @staticmethod
    def _add_admin(conn: Any, store: str, user_id: int, now: int) -> None:
        exists = conn.execute(
            select(admin_users.c.added_at).where(
                and_(admin_users.c.store == store, admin_users.c.user_id == user_id)
            )
        ).first()
        if exists is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(admin_users).values(store=store, user_id=user_id, added_at=now)
                    )
            except IntegrityError:
                pass  # added meanwhile by a concurrent load

    # -- API tokens -------------------------------------------------------------------------

    def create_api_token(
        self,
        *,
        store: str,
        kind: str,
        digest: str,
        label: str,
        now: int,
        connection: str | None = None,
    ) -> int:
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    insert(api_tokens).values(
                        store=store,
                        kind=kind,
                        digest=digest,
                        label=label[:64],
                        connection=connection,
                        created_at=now,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None  # an INSERT of one row has one
                return int(key[0])
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def find_api_token(self, digest: str) -> ApiToken | None:
        """A token that is not revoked, by the digest of what the client presented."""
        row = self._first(
            select(api_tokens).where(
                and_(api_tokens.c.digest == digest, api_tokens.c.revoked_at.is_(None))
            )
        )
        return None if row is None else _token(row)

    def list_api_tokens(self, store: str, kind: str) -> list[ApiToken]:
        query = (
            select(api_tokens)
            .where(and_(api_tokens.c.store == store, api_tokens.c.kind == kind))
            .order_by(api_tokens.c.id)
        )
        try:
            with self.engine.connect() as conn:
                return [_token(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def revoke_api_tokens(
        self,
        store: str,
        kind: str,
        now: int,
        *,
        token_id: int | None = None,
        connection: str | None = None,
    ) -> int:
        """Revoke a store's tokens of a kind (one of them with ``token_id``, or those of one
        ``connection``); returns how many were live."""
        condition = and_(
            api_tokens.c.store == store,
            api_tokens.c.kind == kind,
            api_tokens.c.revoked_at.is_(None),
        )
        if token_id is not None:
            condition = and_(condition, api_tokens.c.id == token_id)
        if connection is not None:
            condition = and_(condition, api_tokens.c.connection == connection)
        return self._execute(update(api_tokens).where(condition).values(revoked_at=now))


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=int(row.id),
        store=row.store,
        kind=row.kind,
        connection=row.connection,
        label=row.label,
        created_at=int(row.created_at),
        revoked_at=None if row.revoked_at is None else int(row.revoked_at),
    )
