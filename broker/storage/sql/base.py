"""What every SQL repository shares: the engine, and database errors made StorageErrors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from broker.errors import StorageError


class SQLBase:
    """A repository on one SQLAlchemy engine (SQLite or PostgreSQL alike)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _first(self, query: Any) -> Any:
        try:
            with self.engine.connect() as conn:
                return conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def _execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(statement, params).rowcount or 0)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None


def storage_error(exc: SQLAlchemyError) -> StorageError:
    return StorageError(
        "The sign-in service cannot reach its database. Please try again shortly.",
        detail=type(exc).__name__,
    )
