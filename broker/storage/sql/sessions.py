"""Broker sessions on SQL (:class:`~broker.storage.model.SessionStore`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, insert, select, update

from broker.storage.model import BrokerSession, flat_row
from broker.storage.schema import sessions
from broker.storage.sql.base import SQLBase

# Built once (see pending.py).
INSERT_SESSION = insert(sessions)


class SQLSessionStore(SQLBase):
    def create_session(self, session: BrokerSession) -> None:
        self._execute(INSERT_SESSION, flat_row(session))

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
