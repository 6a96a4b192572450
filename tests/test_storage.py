"""One conformance suite for the storage, run on SQLite and on PostgreSQL.

PostgreSQL runs when BROKER_TEST_POSTGRES_URL names a database (scripts/test sets it to the
local server); without it those cases are skipped with the reason shown.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from broker.storage import AlreadyExists, SQLStorage, open_storage, pending_flows, used_once

POSTGRES_URL = os.environ.get("BROKER_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    if request.param == "sqlite":
        store = open_storage(f"sqlite:///{tmp_path / 'broker.db'}")
    else:
        if not POSTGRES_URL:
            pytest.skip("set BROKER_TEST_POSTGRES_URL to run the storage suite on PostgreSQL")
        store = open_storage(POSTGRES_URL)
    yield store
    with store.engine.begin() as conn:
        conn.execute(delete(pending_flows))
        conn.execute(delete(used_once))
    store.close()


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
