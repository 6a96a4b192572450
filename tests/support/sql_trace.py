"""Every statement the database driver runs for an engine while a block runs: what the storage
sends through SQLAlchemy and what it sends on the driver itself (broker.storage.sql.direct)
alike, and the write transactions they make.

SQLite: the driver's own trace (``sqlite3.Connection.set_trace_callback``), which shows the
``BEGIN`` and ``COMMIT`` the driver issues too. PostgreSQL (psycopg): a cursor class that
records each statement, and the connection's ``commit``; a write on an autocommit connection
is a transaction of its own. Installed on each connection the engine's pool hands out while
the block runs, taken off when the connection comes back. For the tests and bench/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

_NOT_WRITES = ("SELECT", "BEGIN", "COMMIT", "ROLLBACK")


@dataclass
class Traced:
    statements: list[str] = field(default_factory=list)
    write_transactions: int = 0

    @property
    def verbs(self) -> list[str]:
        """Each statement's first word and table, e.g. "DELETE pending_flows"."""
        out = []
        for sql in self.statements:
            words = sql.replace('"', "").split()
            # The main table: a SELECT's last FROM (a subquery's comes before it).
            table = [words[i + 1] for i, w in enumerate(words) if w in ("INTO", "FROM", "UPDATE")]
            out.append(f"{words[0]} {table[-1] if words[0] == 'SELECT' else table[0]}")
        return out


@contextmanager
def traced(engine: Engine) -> Iterator[Traced]:
    found = Traced()
    install, remove = (_sqlite if engine.dialect.name == "sqlite" else _psycopg)(found)

    def checkout(connection: Any, _record: Any, _proxy: Any) -> None:
        install(connection)

    def checkin(connection: Any, _record: Any) -> None:
        if connection is not None:
            remove(connection)

    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine.pool, "checkin", checkin)
    try:
        yield found
    finally:
        event.remove(engine.pool, "checkout", checkout)
        event.remove(engine.pool, "checkin", checkin)


def _sqlite(found: Traced) -> tuple[Any, Any]:
    def trace(sql: str) -> None:
        word = sql.split(None, 1)[0].upper()
        if word == "COMMIT":
            found.write_transactions += 1  # the driver opens one for a write, never a read
        elif word not in ("BEGIN", "ROLLBACK"):
            found.statements.append(sql)

    return (
        lambda connection: connection.set_trace_callback(trace),
        lambda connection: connection.set_trace_callback(None),
    )


def _psycopg(found: Traced) -> tuple[Any, Any]:
    import psycopg

    class Recording(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._record(str(query))
            return super().execute(query, *args, **kwargs)

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._record(str(query))
            return super().executemany(query, *args, **kwargs)

        def _record(self, sql: str) -> None:
            found.statements.append(sql)
            if sql.split(None, 1)[0].upper() not in _NOT_WRITES:
                if self.connection.autocommit:
                    found.write_transactions += 1
                else:
                    writing.add(id(self.connection))

    writing: set[int] = set()

    def install(connection: Any) -> None:
        commit = connection.commit

        def counted_commit() -> None:
            if id(connection) in writing:
                writing.discard(id(connection))
                found.write_transactions += 1
            commit()

        connection.cursor_factory = Recording
        connection.commit = counted_commit

    def remove(connection: Any) -> None:
        connection.cursor_factory = psycopg.Cursor
        del connection.commit

    return install, remove
