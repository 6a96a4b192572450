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

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Update, bindparam, insert, update

from broker.storage.model import AuditEntry, BrokerSession, LinkTouch, flat_row
from broker.storage.schema import audit_log, links, sessions
from broker.storage.sql.audit import INSERT_AUDIT, audit_row
from broker.storage.sql.base import SQLBase
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


@functools.lru_cache(maxsize=16)
def _touch_statement(columns: tuple[str, ...]) -> Update:
    """The UPDATE of a touch setting ``columns`` (one object per set: prepared once)."""
    return _UPDATE_LINK.values({name: bindparam(f"v_{name}") for name in columns})


def _touch(touch: LinkTouch) -> tuple[Update, dict[str, Any]]:
    """The UPDATE of a touch, and its values: only the columns it sets."""
    values = _touched(touch)
    statement = _touch_statement(tuple(values))
    return statement, {"link_id": touch.link_id, **{f"v_{k}": v for k, v in values.items()}}


class SQLSignInStore(SQLBase):
    def record_sign_in(
        self,
        *,
        session: BrokerSession | None,
        audit: Sequence[AuditEntry],
        touch: LinkTouch | None = None,
    ) -> None:
        writes: list[tuple[Any, list[dict[str, Any]]]] = []
        if touch is not None and touch.writes:
            statement, values = _touch(touch)
            writes.append((statement, [values]))
        if session is not None:
            writes.append((INSERT_SESSION, [flat_row(session)]))
        if audit:
            writes.append((INSERT_AUDIT, [audit_row(entry) for entry in audit]))
        if not writes:
            return
        if len(writes) == 1 and len(writes[0][1]) == 1:
            self.driver.one(writes[0][0], writes[0][1][0])
        elif self._autocommit and audit:
            self.driver.one(*_one_statement(writes))
        else:
            self.driver.together(writes)


def _one_statement(writes: list[tuple[Any, list[dict[str, Any]]]]) -> tuple[Insert, dict[str, Any]]:
    """PostgreSQL: every write of a sign-in as one INSERT of its audit rows, the others as
    data-modifying WITH clauses (see the module docstring); and its values."""
    shape = tuple((statement, tuple(rows[0]), len(rows)) for statement, rows in writes)
    values: dict[str, Any] = {}
    for i, (statement, rows) in enumerate(writes):
        if isinstance(statement, Update):  # the touch keeps its own parameters' names
            values.update(rows[0])
            continue
        for j, row in enumerate(rows):
            values.update({f"w{i}r{j}_{name}": value for name, value in row.items()})
    return _one_statement_of(shape), values


@functools.lru_cache(maxsize=32)
def _one_statement_of(shape: tuple[tuple[Any, tuple[str, ...], int], ...]) -> Insert:
    """The one statement for writes of this ``shape`` (statement, value names, rows), the
    INSERTs' values bound as ``w<write>r<row>_<name>``, the touch's UPDATE (from
    :func:`_touch_statement`) as it is (one object per shape: prepared once)."""
    clauses: list[Any] = []
    final: Insert | None = None
    for i, (statement, names, count) in enumerate(shape):
        rows: list[dict[str, Any]] = [
            {name: bindparam(f"w{i}r{j}_{name}") for name in names} for j in range(count)
        ]
        if statement is INSERT_AUDIT:
            final = insert(audit_log).values(rows)
        elif statement is INSERT_SESSION:
            clauses.append(insert(sessions).values(rows[0]).cte("new_session"))
        else:  # the link's touch
            clauses.append(statement.cte("touched"))
    assert final is not None, "the one statement is the audit rows' INSERT"
    return final.add_cte(*clauses)
