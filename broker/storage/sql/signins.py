"""A successful sign-in's writes on SQL (:class:`~broker.storage.model.SignInStore`).

A returning sign-in used to write its link, its session and its audit row in three
transactions; :meth:`SQLSignInStore.record_sign_in` writes what there is of them in one (and a
single statement on its own, as :mod:`.base` does for one-statement verbs). All or nothing: a
sign-in whose session could not be kept leaves no audit row saying it succeeded, nor a touched
link.

On PostgreSQL the writes are **one statement**: the link's UPDATE and the session's INSERT as
data-modifying ``WITH`` clauses of the audit INSERT (PostgreSQL runs each exactly once, to
completion, in the statement's one snapshot, whether or not the main query reads them), on an
autocommit connection: one round trip where ``BEGIN``, two or three statements and ``COMMIT``
took four or five. SQLite has no data-modifying ``WITH``: there they run in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import SQLAlchemyError

from broker.storage.model import AuditEntry, BrokerSession, LinkTouch, flat_row
from broker.storage.schema import audit_log, links, sessions
from broker.storage.sql.audit import INSERT_AUDIT, audit_row
from broker.storage.sql.base import SQLBase, storage_error
from broker.storage.sql.sessions import INSERT_SESSION

_UPDATE_LINK = update(links).where(links.c.id == bindparam("link_id"))


def _touched(touch: LinkTouch) -> dict[str, Any]:
    """The columns a touch sets, and their values."""
    values: dict[str, Any] = {}
    if touch.seen_at is not None:
        values.update(last_login_at=touch.seen_at, email=touch.email)
    if touch.verified_at is not None:
        values["verified_at"] = touch.verified_at
    if touch.company_checked_at is not None:
        values.update(company_plan=touch.company_plan, company_checked_at=touch.company_checked_at)
    return values


def _touch(touch: LinkTouch) -> tuple[Any, dict[str, Any]]:
    """The UPDATE of a touch: only the columns it sets."""
    values = _touched(touch)
    statement = _UPDATE_LINK.values({name: bindparam(f"v_{name}") for name in values})
    return statement, {"link_id": touch.link_id, **{f"v_{k}": v for k, v in values.items()}}


class SQLSignInStore(SQLBase):
    def record_sign_in(
        self,
        *,
        session: BrokerSession | None,
        audit: Sequence[AuditEntry],
        touch: LinkTouch | None = None,
    ) -> None:
        writes: list[tuple[Any, Any]] = []
        if touch is not None and touch.writes:
            writes.append(_touch(touch))
        if session is not None:
            writes.append((INSERT_SESSION, flat_row(session)))
        if audit:
            rows = [audit_row(entry) for entry in audit]
            writes.append((INSERT_AUDIT, rows if len(rows) > 1 else rows[0]))
        if not writes:
            return
        try:
            if self._autocommit and audit and len(writes) > 1:
                with self._single_statement() as conn:
                    conn.execute(_one_statement(session, audit, touch))
                return
            if len(writes) == 1:
                with self._single_statement() as conn:
                    conn.execute(*writes[0])
                return
            with self.engine.begin() as conn:
                for statement, params in writes:
                    conn.execute(statement, params)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None


def _one_statement(
    session: BrokerSession | None, audit: Sequence[AuditEntry], touch: LinkTouch | None
) -> Any:
    """PostgreSQL: every write of a sign-in as one INSERT of its audit rows, the others as
    data-modifying WITH clauses (see the module docstring)."""
    clauses = []
    if touch is not None and touch.writes:
        changes = _touched(touch)
        clauses.append(
            update(links).where(links.c.id == touch.link_id).values(**changes).cte("touched")
        )
    if session is not None:
        clauses.append(insert(sessions).values(**flat_row(session)).cte("new_session"))
    return insert(audit_log).values([audit_row(entry) for entry in audit]).add_cte(*clauses)
