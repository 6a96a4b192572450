"""CounterStore on SQLite and PostgreSQL: failure counters and attempt budgets, under
concurrency."""

from __future__ import annotations

import threading

from broker.storage import SQLStorage


def test_failure_counters_count_within_their_window(storage: SQLStorage) -> None:
    assert [storage.count_failure("k", window=60, now=1000 + i) for i in range(3)] == [1, 2, 3]
    assert storage.failures("k", now=1059) == 3
    assert storage.failures("k", now=1060) == 0
    assert storage.count_failure("k", window=60, now=1061) == 1
    storage.clear_failures("k")
    assert storage.failures("k", now=1061) == 0


def test_concurrent_failures_are_all_counted(storage: SQLStorage) -> None:
    barrier = threading.Barrier(6)

    def fail() -> None:
        barrier.wait()
        storage.count_failure("busy", window=60, now=1000)

    threads = [threading.Thread(target=fail) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert storage.failures("busy", now=1000) == 6


def test_attempts_are_reserved_within_the_limit_and_window(storage: SQLStorage) -> None:
    taken = [storage.reserve_attempt("k", limit=3, window=60, now=1000 + i) for i in range(5)]
    assert taken == [1, 2, 3, None, None]
    storage.release_attempt("k", now=1010)
    assert storage.reserve_attempt("k", limit=3, window=60, now=1011) == 3
    assert storage.reserve_attempt("k", limit=3, window=60, now=1060) == 1  # a new window


def test_forty_concurrent_reservations_get_exactly_the_limit(storage: SQLStorage) -> None:
    results: list[int | None] = []
    lock = threading.Lock()
    start = threading.Barrier(40)

    def reserve() -> None:
        start.wait()
        number = storage.reserve_attempt("confirm:acme:customer:7", limit=5, window=900, now=1000)
        with lock:
            results.append(number)

    threads = [threading.Thread(target=reserve) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(n for n in results if n is not None) == [1, 2, 3, 4, 5]
    assert results.count(None) == 35
