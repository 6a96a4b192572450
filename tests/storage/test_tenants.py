"""TenantStore on SQLite and PostgreSQL: stores held in the database, behind one version."""

from __future__ import annotations

import threading

from broker.storage import SQLStorage


def test_stores_held_in_the_database_are_versioned(storage: SQLStorage) -> None:
    assert storage.tenants_version() == 0
    assert storage.tenant_documents() == {}
    first = storage.put_tenant("abc123", {"store_hash": "abc123"}, now=1000)
    second = storage.put_tenant("def456", {"store_hash": "def456"}, now=1001)
    changed = storage.put_tenant("abc123", {"store_hash": "abc123", "channel_id": 2}, now=1002)
    assert first < second < changed == storage.tenants_version()
    documents = storage.tenant_documents()
    assert documents["abc123"].document == {"store_hash": "abc123", "channel_id": 2}
    assert documents["abc123"].version == changed
    one = storage.tenant_document("abc123")
    assert one is not None
    assert (one.document, one.version) == ({"store_hash": "abc123", "channel_id": 2}, changed)
    assert storage.tenant_document("nothere") is None
    assert storage.delete_tenant("abc123") is True
    assert storage.delete_tenant("abc123") is False
    assert storage.tenants_version() == changed + 1
    assert list(storage.tenant_documents()) == ["def456"]


def test_concurrent_tenant_changes_each_get_their_own_version(storage: SQLStorage) -> None:
    versions: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def put(n: int) -> None:
        start.wait()
        version = storage.put_tenant(f"store{n}", {"n": n}, now=1000)
        with lock:
            versions.append(version)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 11))
    assert storage.tenants_version() == 10
