"""The driver-level statements (broker.storage.sql.direct) on SQLite and PostgreSQL: what
SQLAlchemy would have done around them still holds: values written as they are, transactions
all or nothing, errors as StorageError, the pool's connections handed back as they were."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Engine,
    PickleType,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
)

from broker.errors import StorageError
from broker.storage import AlreadyExists, SQLStorage, open_storage
from broker.storage.schema import pending_flows, used_once
from broker.storage.sql.direct import Driver, UnsupportedStatement
from broker.storage.sql.liveness import IDLE_SECONDS, ping_when_idle
from tests.storage.builders import key


@pytest.fixture
def engine(database_url: str, storage: SQLStorage) -> Iterator[Engine]:
    """An engine on the migrated database with a pool of one connection and no pre-ping:
    every statement below runs on the same connection, so what one leaves behind (an
    autocommit, a lost connection) the next one meets."""
    options = {} if database_url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 0}
    one = create_engine(database_url, **options)
    yield one
    one.dispose()


def test_a_statement_whose_values_need_type_processing_is_refused(storage: SQLStorage) -> None:
    driver = Driver(storage.engine)
    with pytest.raises(UnsupportedStatement, match="'doc'"):
        driver.prepared(select(bindparam("doc", type_=JSON)), ("doc",))
    with pytest.raises(UnsupportedStatement, match="'doc'"):
        driver.prepared(select(literal_column("NULL", PickleType).label("doc")), ())
    with pytest.raises(UnsupportedStatement, match="has a value"):
        driver.prepared(select(used_once).where(used_once.c.key == "a-literal"), ())


def test_the_hot_statements_write_what_sqlalchemy_reads_back(storage: SQLStorage) -> None:
    k = key()
    storage.save_pending(k, {"a": [1, "é"]}, expires_at=2000)
    with storage.engine.connect() as conn:
        row = conn.execute(select(pending_flows).where(pending_flows.c.key == k)).one()
    assert (row.key, row.expires_at) == (k, 2000)
    assert storage.take_pending(k, now=1000) == {"a": [1, "é"]}
    assert storage.take_pending(k, now=1000) is None


def test_a_duplicate_is_the_verbs_own_error_and_leaves_the_first(storage: SQLStorage) -> None:
    k = key()
    storage.save_pending(k, {"n": 1}, expires_at=2000)
    with pytest.raises(AlreadyExists):
        storage.save_pending(k, {"n": 2}, expires_at=2000)
    assert storage.take_pending(k, now=1000) == {"n": 1}


def test_statements_together_are_all_or_nothing(engine: Engine) -> None:
    driver = Driver(engine)
    k, taken = key(), key()
    driver.one(insert(used_once), {"key": taken, "expires_at": 1})
    rows = [{"key": k, "expires_at": 5}]
    duplicate = [{"key": taken, "expires_at": 5}]
    with pytest.raises(StorageError):
        driver.together([(insert(used_once), rows), (insert(used_once), duplicate)])
    with engine.connect() as conn:
        found = conn.execute(select(used_once.c.key).where(used_once.c.key == k)).first()
    assert found is None  # the first INSERT went with the second's failure
    driver.together([(insert(used_once), rows)])  # and the connection works after it
    query = select(used_once.c.expires_at).where(used_once.c.key == bindparam("k"))
    assert driver.one(query, {"k": k}) == {"expires_at": 5}


def test_a_driver_error_is_a_storage_error_and_the_connection_goes_on(engine: Engine) -> None:
    driver = Driver(engine)
    with pytest.raises(StorageError) as refused:
        driver.one(text("SELECT * FROM no_such_table"), {})
    assert "database" in refused.value.message
    assert driver.one(select(func.count()).select_from(used_once), {}) is not None


def test_a_connection_goes_back_to_the_pool_as_it_came(engine: Engine) -> None:
    """On PostgreSQL a statement on its own runs in autocommit: the connection must not keep
    it, or a transaction SQLAlchemy opens on it next would commit each statement at once."""
    driver = Driver(engine)
    k = key()
    assert driver.one(select(func.count()).select_from(used_once), {}) is not None
    with engine.connect() as conn:
        conn.execute(insert(used_once).values(key=k, expires_at=9))
        conn.rollback()
    with engine.connect() as conn:
        assert conn.execute(select(used_once).where(used_once.c.key == k)).first() is None


#: A SQLite connection is a file: nothing to lose.
only_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@only_postgresql
def test_a_connection_lost_in_a_statement_is_replaced(engine: Engine) -> None:
    driver = Driver(engine)
    with pytest.raises(StorageError):
        driver.one(text("SELECT pg_terminate_backend(pg_backend_pid())"), {})
    # The pool's one connection was dropped, not handed out again: a new one serves this.
    assert driver.one(select(func.count()).select_from(used_once), {}) is not None


def _drop_every_other_connection(database_url: str) -> int:
    """Terminate the server side of every connection to the test database but this one (a
    restart, a failover, an ``idle_session_timeout``, as the pool meets them)."""
    admin = create_engine(database_url)
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        admin.dispose()


@only_postgresql
def test_a_server_restart_between_sign_ins_is_not_seen(database_url: str) -> None:
    """A connection that sat idle in the pool is pinged at checkout: one the server dropped
    meanwhile is replaced before a statement is sent on it."""
    storage = open_storage(database_url)
    try:
        assert storage.use_once(key(), expires_at=2000, now=1000)
        assert _drop_every_other_connection(database_url) >= 1  # the storage's idle one
        time.sleep(IDLE_SECONDS + 0.2)
        assert storage.use_once(key(), expires_at=2000, now=1000)
    finally:
        storage.close()


@only_postgresql
def test_a_restart_inside_the_window_fails_one_statement_then_heals(database_url: str) -> None:
    """What skipping the ping costs: a connection dropped less than the window after its last
    use fails the one statement sent on it, as a StorageError that wrote nothing; it is not
    handed out again."""
    storage = open_storage(database_url, ping_after_idle=3600)
    try:
        assert storage.use_once(key(), expires_at=2000, now=1000)
        assert _drop_every_other_connection(database_url) >= 1
        lost = key()
        with pytest.raises(StorageError):
            storage.use_once(lost, expires_at=2000, now=1000)
        assert storage.use_once(lost, expires_at=2000, now=1000), "the failed INSERT wrote nothing"
    finally:
        storage.close()


class _Pings:
    """How many times the pool pinged (the dialect's empty query ``;``, psycopg's ping), counted
    on the driver's cursors, installed ahead of every other checkout listener."""

    def __init__(self, engine: Engine) -> None:
        import psycopg

        self.count = 0
        pings = self

        class Counting(psycopg.Cursor):  # type: ignore[type-arg]
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                if str(query).strip() in (";", "SELECT 1"):
                    pings.count += 1
                return super().execute(query, *args, **kwargs)

        def install(connection: Any, _record: Any, _proxy: Any) -> None:
            connection.cursor_factory = Counting

        event.listen(engine, "checkout", install, insert=True)


@only_postgresql
def test_a_connection_back_a_moment_ago_is_not_pinged_one_idle_is(
    database_url: str, storage: SQLStorage
) -> None:
    storage.close()  # the schema made; only this engine's connection below
    now = [100.0]
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0.5, clock=lambda: now[0])
    pings = _Pings(engine)
    driver = Driver(engine)
    count = select(func.count()).select_from(used_once)
    try:
        for _ in range(5):  # a fresh connection, then the same one, back a moment ago
            driver.one(count, {})
            now[0] += 0.4
        assert pings.count == 0
        now[0] += 0.2  # idle 0.6 s
        driver.one(count, {})
        assert pings.count == 1
        # Dropped while idle: the ping finds out, the pool connects anew, the statement runs.
        assert _drop_every_other_connection(database_url) == 1
        now[0] += 5
        assert driver.one(count, {}) is not None
        assert pings.count == 2
    finally:
        engine.dispose()


class _Checkouts:
    """Connections the engine's pool hands out and takes back."""

    def __init__(self, engine: Engine) -> None:
        self.out = self.back = 0
        event.listen(engine, "checkout", self._out)
        event.listen(engine, "checkin", self._back)

    def _out(self, *_: Any) -> None:
        self.out += 1

    def _back(self, *_: Any) -> None:
        self.back += 1


def test_a_held_connection_serves_a_requests_statements_until_released(
    storage: SQLStorage, database_url: str
) -> None:
    """SQLite: one checkout for all the statements between hold and release. PostgreSQL:
    holding changes nothing (a server's connection is not kept over an IdP's answer)."""
    counted = _Checkouts(storage.engine)
    storage.hold_connection()
    try:
        for _ in range(4):
            assert storage.use_once(key(), expires_at=2000, now=1000)
        assert storage.get_link("acme", "corp", "nobody") is None
    finally:
        storage.release_connection()
    sqlite = database_url.startswith("sqlite")
    assert (counted.out, counted.back) == ((1, 1) if sqlite else (5, 5))
    storage.release_connection()  # a release with nothing held does nothing
    assert storage.use_once(key(), expires_at=2000, now=1000)
    assert (counted.out, counted.back) == ((2, 2) if sqlite else (6, 6))


def test_a_failed_block_on_a_held_connection_leaves_nothing_behind(storage: SQLStorage) -> None:
    """All or none still, and the connection kept after a failure is in no transaction: what
    the next statement writes is committed and seen by another connection."""
    driver = storage.driver
    k, later = key(), key()
    storage.hold_connection()
    try:
        with pytest.raises(StorageError):
            driver.together(
                [(insert(used_once), [{"key": k, "expires_at": 9}, {"key": k, "expires_at": 9}])]
            )
        assert storage.use_once(later, expires_at=2000, now=1000)
        with storage.engine.connect() as other:
            seen = {row.key for row in other.execute(select(used_once.c.key))}
    finally:
        storage.release_connection()
    assert k not in seen
    assert later in seen


def test_forty_threads_holding_connections_spend_one_key_once(storage: SQLStorage) -> None:
    """Each thread holds its own connection (more than the pool keeps: none waits for
    another), and the one-time store is still once across all of them."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    k = key()
    start = Barrier(40)

    def spend(_: int) -> bool:
        storage.hold_connection()
        try:
            start.wait(timeout=30)
            return storage.use_once(k, expires_at=2000, now=1000)
        finally:
            storage.release_connection()

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(spend, range(40)))
    assert results.count(True) == 1
