"""The sign-in path's statements run on the database driver, past SQLAlchemy's execution layer.

The repositories build every statement with SQLAlchemy Core, once, for both dialects; for the
few a sign-in runs each time (the flow spent, the link read, the session and audit rows, the
SAML flow kept and taken) :class:`Driver` compiles the statement once per engine and runs the
SQL text on a DB-API connection from the engine's pool. What it skips is SQLAlchemy's
``Connection``, execution context and result objects: in a request, with its cold caches,
they cost a returning OIDC sign-in about 0.8 ms of CPU for four statements whose own work in
SQLite is under 0.1 ms (bench/README.md, 2026-12-03).

What does not change:

- **The pool.** Connections are checked out and in through the engine's pool, with its
  pings (PostgreSQL, :mod:`.liveness`) and its connect-time pragmas (SQLite), and reset on
  return. On a SQLite file, between :meth:`Driver.hold` and :meth:`Driver.release` (the web
  app holds for each request) a thread's statements share the one connection the first of
  them checked out, given back at the release: checking a connection out and in costs about
  as much CPU in a request as SQLite's own work on a sign-in's three statements. Each block
  still ends with its transaction committed or rolled back, so the connection held between
  them is in no transaction (a SQLite connection is a file handle, not a server's session:
  holding it over the IdP's answer keeps nothing from anyone).
- **Transactions.** A statement on its own (:meth:`Driver.one`) is atomic by itself: on
  PostgreSQL it runs in autocommit (one round trip, as :mod:`.base` does), on SQLite the
  driver's implicit transaction is committed at once. :meth:`Driver.together` runs several
  statements in one transaction: all or none.
- **Errors.** Any driver error is a :class:`~broker.errors.StorageError` (an IntegrityError
  is handed to the caller first, for the verbs where it means something); a connection that
  cannot roll back after one (lost) is invalidated, never handed out again.

Only values the driver takes as they are may pass: a statement whose parameters or result
columns need SQLAlchemy's type processing on the dialect (a Boolean on SQLite, JSON, dates) is
refused when it is compiled, so nothing is ever written in another form than SQLAlchemy would
have written it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from broker.errors import StorageError


def storage_error(exc: Exception) -> StorageError:
    """A database error (SQLAlchemy's or the driver's) as the error the pages show."""
    return StorageError(
        "The sign-in service cannot reach its database. Please try again shortly.",
        detail=type(exc).__name__,
    )


class UnsupportedStatement(TypeError):
    """A statement whose values need SQLAlchemy's type processing (see the module docstring)."""


class Prepared:
    """One statement compiled for one dialect: its SQL text and how to bind its values. Every
    value is a ``bindparam`` given when it runs: a statement is built once (the cache is by
    statement object), never with a value in it."""

    def __init__(self, statement: ClauseElement, engine: Engine, keys: Sequence[str]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        for name, bind in compiled.binds.items():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise UnsupportedStatement(f"parameter {name!r} needs type processing")
            if not bind.required:
                raise UnsupportedStatement(f"parameter {name!r} has a value: use bindparam()")
        for column in getattr(statement, "exported_columns", ()):
            if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
                raise UnsupportedStatement(f"column {column.key!r} needs type processing")
        self.sql: str = compiled.string
        #: The parameters' names in order for a positional paramstyle (SQLite's ``?``); None
        #: for a named one (psycopg's ``%(name)s``), which takes the mapping itself.
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )

    def bind(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        return values if self.order is None else [values[name] for name in self.order]


class Driver:
    """Runs prepared statements of one engine on its pooled DB-API connections."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dbapi = engine.dialect.loaded_dbapi
        self._autocommit = engine.dialect.name == "postgresql"
        self._prepared: dict[tuple[ClauseElement, tuple[str, ...]], Prepared] = {}
        self._lock = threading.Lock()
        #: Whether :meth:`hold` does anything: SQLite on a file (an in-memory database has
        #: one connection for all, which no thread may keep).
        self._holds = engine.dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool)
        self._held = threading.local()

    def hold(self) -> None:
        """Until :meth:`release`, this thread's statements share one pooled connection,
        checked out by the first of them (SQLite files only; elsewhere nothing changes)."""
        if self._holds:
            self._held.depth = getattr(self._held, "depth", 0) + 1

    def release(self) -> None:
        """The end of :meth:`hold`: the connection held goes back to the pool."""
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            return
        self._held.depth = depth - 1
        pooled = getattr(self._held, "pooled", None)
        if depth == 1 and pooled is not None:
            self._held.pooled = None
            pooled.close()

    def prepared(self, statement: ClauseElement, keys: Sequence[str]) -> Prepared:
        """``statement`` compiled for this engine, once for each set of value names ``keys``
        (an INSERT built without ``values()`` takes its columns from them)."""
        cache_key = (statement, tuple(keys))
        found = self._prepared.get(cache_key)
        if found is None:
            with self._lock:
                found = self._prepared.get(cache_key)
                if found is None:
                    found = self._prepared[cache_key] = Prepared(statement, self.engine, keys)
        return found

    def one(
        self,
        statement: ClauseElement,
        values: Mapping[str, Any],
        *,
        integrity: Callable[[], Exception] | None = None,
    ) -> dict[str, Any] | None:
        """Run one statement on its own; its first row (None without one) as a mapping.
        ``integrity``: the exception to raise in place of the driver's IntegrityError."""
        prepared = self.prepared(statement, tuple(values))
        with self._cursor(autocommit=True, integrity=integrity) as cursor:
            cursor.execute(prepared.sql, prepared.bind(values))
            row = cursor.fetchone() if cursor.description else None
            names = [column[0] for column in cursor.description or ()]
        return None if row is None else dict(zip(names, row, strict=True))

    def together(self, writes: Sequence[tuple[ClauseElement, Sequence[Mapping[str, Any]]]]) -> None:
        """Run each statement with each of its rows of values, all in one transaction."""
        batches = [(self.prepared(statement, tuple(rows[0])), rows) for statement, rows in writes]
        with self._cursor(autocommit=False, integrity=None) as cursor:
            for prepared, rows in batches:
                if len(rows) == 1:
                    cursor.execute(prepared.sql, prepared.bind(rows[0]))
                else:
                    cursor.executemany(prepared.sql, [prepared.bind(row) for row in rows])

    @contextmanager
    def _cursor(
        self, *, autocommit: bool, integrity: Callable[[], Exception] | None
    ) -> Iterator[Any]:
        """A cursor on a pooled connection; committed when the block ends, rolled back if it
        raises. ``autocommit`` (PostgreSQL): each statement commits by itself. Between
        :meth:`hold` and :meth:`release` the connection stays checked out after the block."""
        held = getattr(self._held, "depth", 0) > 0
        pooled = getattr(self._held, "pooled", None) if held else None
        if pooled is None:
            try:
                pooled = self.engine.raw_connection()
            except SQLAlchemyError as exc:  # the pool wraps the driver's errors in its own
                raise storage_error(exc) from None
            if held:
                self._held.pooled = pooled
        connection: Any = pooled.dbapi_connection  # the driver's (psycopg: autocommit)
        own_commit = self._autocommit and autocommit
        cursor = None
        try:
            if own_commit:
                connection.autocommit = True
            cursor = connection.cursor()
            yield cursor
            if not own_commit:
                connection.commit()
        except self._dbapi.Error as exc:
            self._failed(pooled)
            if integrity is not None and isinstance(exc, self._dbapi.IntegrityError):
                raise integrity() from None
            raise storage_error(exc) from None
        except BaseException:
            self._failed(pooled)
            raise
        finally:
            try:
                if cursor is not None:
                    cursor.close()
                if own_commit and pooled.is_valid:
                    connection.autocommit = False
            except self._dbapi.Error:
                pooled.invalidate()
            if not held or not pooled.is_valid:
                if held:
                    self._held.pooled = None
                pooled.close()  # back to the pool, reset there (a rollback)

    def _failed(self, pooled: Any) -> None:
        """Undo what the block did; a connection that cannot even roll back (the server or
        the network dropped it) is invalidated: closed, never handed out again."""
        try:
            pooled.dbapi_connection.rollback()
        except self._dbapi.Error:
            pooled.invalidate()
