"""The broker's own SAML SP key pairs, on SQL (:class:`~broker.storage.model.SPKeyStore`)."""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, literal, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.storage.model import StoredSPKey
from broker.storage.schema import sp_keys
from broker.storage.sql.base import SQLBase, storage_error


class SQLSPKeyStore(SQLBase):
    def sp_keys(self) -> list[StoredSPKey]:
        """Every key pair in the order they take over: activated first, first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(sp_keys).order_by(
                        sp_keys.c.activates_at, sp_keys.c.created_at, sp_keys.c.id
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return [
            StoredSPKey(
                id=row.id,
                key_pem=row.key_pem,
                cert_pem=row.cert_pem,
                created_at=int(row.created_at),
                activates_at=int(row.activates_at),
            )
            for row in rows
        ]

    def add_sp_key(self, key: StoredSPKey, *, only_if_none: bool = False) -> bool:
        """Store a key pair; False when its id is taken or, with ``only_if_none``, when there
        is one already. Two processes making the first pair at once give it the same id, so
        one of them wins on any database (the primary key), whatever the isolation level."""
        values = {
            "id": key.id,
            "key_pem": key.key_pem,
            "cert_pem": key.cert_pem,
            "created_at": key.created_at,
            "activates_at": key.activates_at,
        }
        if only_if_none:
            columns = list(values)
            statement = insert(sp_keys).from_select(
                columns,
                select(*(literal(values[name], sp_keys.c[name].type) for name in columns)).where(
                    ~exists().select_from(sp_keys)
                ),
            )
        else:
            statement = insert(sp_keys).values(**values)
        try:
            with self.engine.begin() as conn:  # RETURNING: rowcount of INSERT ... SELECT varies
                return conn.execute(statement.returning(sp_keys.c.id)).first() is not None
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def remove_sp_key(self, key_id: str) -> bool:
        return self._execute(delete(sp_keys).where(sp_keys.c.id == key_id)) == 1
