"""What every SQL repository shares: the engine, and database errors made StorageErrors.

A verb that is one statement runs it **on its own** (:meth:`SQLBase._single_statement`): a
statement is atomic by itself, so wrapping it in a transaction buys nothing. On PostgreSQL it
runs on an autocommit connection, which saves the ``BEGIN`` and the ``COMMIT``/``ROLLBACK``
round trips (psycopg sends each as a message of its own); SQLite's driver opens no
transaction for a read and an implicit one for a write, committed at once. Verbs of several
statements that must hold together open a transaction (``engine.begin()``). The few
statements every sign-in runs go to the driver itself, the same way (:mod:`.direct`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from broker.storage.sql.direct import Driver, storage_error

__all__ = ["SQLBase", "storage_error"]


class SQLBase:
    """A repository on one SQLAlchemy engine (SQLite or PostgreSQL alike)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._autocommit = engine.dialect.name == "postgresql"
        self._single = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self._autocommit else engine
        )
        #: The sign-in path's statements, on the driver itself (:mod:`.direct`).
        self.driver = Driver(engine)

    @contextmanager
    def _single_statement(self) -> Iterator[Connection]:
        """A connection for one statement that commits on its own (see the module docstring).
        Database errors other than IntegrityError become StorageError outside it."""
        if self._autocommit:
            with self._single.connect() as conn:
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    def _first(self, query: Any, params: Mapping[str, Any] | None = None) -> Any:
        try:
            with self._single.connect() as conn:
                return conn.execute(query, params).first()
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def _execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        try:
            with self._single_statement() as conn:
                return int(conn.execute(statement, params).rowcount or 0)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
