"""One conformance suite for the storage, run on SQLite and on PostgreSQL.

PostgreSQL runs when BROKER_TEST_POSTGRES_URL names a database (scripts/test sets it to the
local server); without it those cases are skipped with the reason shown.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from broker.storage import AlreadyExists, SQLStorage, open_storage, schema_revision

POSTGRES_URL = os.environ.get("BROKER_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL database made for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set BROKER_TEST_POSTGRES_URL to run the storage suite on PostgreSQL")
    name = f"broker_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def storage(database_url: str) -> Iterator[SQLStorage]:
    store = open_storage(database_url)
    yield store
    store.close()


def _migrate_in_a_process(url: str) -> str | None:
    storage = open_storage(url)
    try:
        return schema_revision(storage.engine)
    finally:
        storage.close()


def test_many_processes_migrating_a_new_database_at_once(database_url: str) -> None:
    # What gunicorn workers do when they start together on a fresh database.
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        revisions = pool.map(_migrate_in_a_process, [database_url] * 4)
    assert len(set(revisions)) == 1
    assert revisions[0] is not None


def key() -> str:
    return uuid.uuid4().hex


def test_pending_is_taken_once(storage: SQLStorage) -> None:
    k = key()
    storage.save_pending(k, {"nonce": "n", "store": "acme"}, expires_at=2000)
    assert storage.take_pending(k, now=1000) == {"nonce": "n", "store": "acme"}
    assert storage.take_pending(k, now=1000) is None


def test_expired_pending_is_not_returned(storage: SQLStorage) -> None:
    k = key()
    storage.save_pending(k, {"a": 1}, expires_at=1000)
    assert storage.take_pending(k, now=1000) is None


def test_duplicate_pending_key(storage: SQLStorage) -> None:
    k = key()
    storage.save_pending(k, {}, expires_at=2000)
    with pytest.raises(AlreadyExists):
        storage.save_pending(k, {}, expires_at=2000)


def test_concurrent_takers_have_one_winner(storage: SQLStorage) -> None:
    k = key()
    storage.save_pending(k, {"x": 1}, expires_at=2000)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(storage.take_pending(k, now=1000))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count({"x": 1}) == 1
    assert results.count(None) == 7


def test_use_once(storage: SQLStorage) -> None:
    k = key()
    assert storage.use_once(k, expires_at=2000, now=1000) is True
    assert storage.use_once(k, expires_at=2000, now=1500) is False
    # Once expired, the key may be used again (its token is no longer valid anyway).
    assert storage.use_once(k, expires_at=4000, now=2000) is True


def test_gc_removes_only_what_expired(storage: SQLStorage) -> None:
    old, fresh = key(), key()
    storage.save_pending(old, {}, expires_at=1000)
    storage.save_pending(fresh, {}, expires_at=3000)
    storage.use_once(key(), expires_at=1000, now=0)
    assert storage.gc(now=2000) >= 2
    assert storage.take_pending(fresh, now=2000) == {}


def test_ping(storage: SQLStorage) -> None:
    storage.ping()
