"""PendingStore on SQLite and PostgreSQL: a started flow is taken once, never after it expires."""

from __future__ import annotations

import threading

import pytest

from broker.storage import AlreadyExists, SQLStorage
from tests.storage.builders import key


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
