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
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from broker.storage import (
    AlreadyExists,
    AuditEntry,
    BrokerSession,
    Link,
    SQLStorage,
    open_storage,
    schema_revision,
)

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


def test_a_claim_is_held_until_given_back_or_expired(storage: SQLStorage) -> None:
    k = key()
    assert storage.seen_once(k, now=1000) is False
    assert storage.use_once(k, expires_at=1030, now=1000) is True
    assert storage.seen_once(k, now=1029) is True
    assert storage.use_once(k, expires_at=1060, now=1010) is False  # someone else holds it
    storage.forget_once(k)
    assert storage.seen_once(k, now=1010) is False
    assert storage.use_once(k, expires_at=1060, now=1010) is True
    assert storage.seen_once(k, now=1060) is False


def test_gc_removes_only_what_expired(storage: SQLStorage) -> None:
    old, fresh = key(), key()
    storage.save_pending(old, {}, expires_at=1000)
    storage.save_pending(fresh, {}, expires_at=3000)
    storage.use_once(key(), expires_at=1000, now=0)
    assert storage.gc(now=2000) >= 2
    assert storage.take_pending(fresh, now=2000) == {}


def test_ping(storage: SQLStorage) -> None:
    storage.ping()


def new_link(
    storage: SQLStorage, subject: str = "sub-1", customer_id: int = 7, **over: Any
) -> Link:
    values: dict[str, Any] = {
        "store": "acme",
        "issuer": "https://idp.example",
        "subject": subject,
        "customer_id": customer_id,
        "connection": "corp",
        "email": "pat@example.com",
        "now": 1000,
    }
    values.update(over)
    return storage.create_link(**values)


def test_links_are_found_by_identity_and_unique_per_store(storage: SQLStorage) -> None:
    link = new_link(storage)
    assert storage.get_link("acme", "https://idp.example", "sub-1") == link
    assert storage.get_link("beta", "https://idp.example", "sub-1") is None
    assert storage.get_link("acme", "https://other.example", "sub-1") is None
    with pytest.raises(AlreadyExists):
        new_link(storage, customer_id=8)
    assert new_link(storage, store="beta").store == "beta"


def test_a_customer_may_have_several_links_and_lose_them(storage: SQLStorage) -> None:
    first = new_link(storage, "sub-1")
    second = new_link(storage, "sub-2", issuer="https://other.example")
    new_link(storage, "sub-3", customer_id=9)
    assert [link.id for link in storage.links_for_customer("acme", 7)] == [first.id, second.id]
    # Only the owner may delete a link when the owner is named.
    assert storage.delete_link("acme", first.id, customer_id=9) is False
    assert storage.delete_link("acme", first.id, customer_id=7) is True
    assert storage.delete_links_for_customer("acme", 7) == 1
    assert storage.links_for_customer("acme", 7) == []
    assert len(storage.links_for_customer("acme", 9)) == 1


def test_touch_link_records_the_sign_in(storage: SQLStorage) -> None:
    link = new_link(storage)
    storage.touch_link(link.id, now=2000, email="new@example.com", verified=False)
    touched = storage.get_link("acme", link.issuer, link.subject)
    assert touched is not None
    assert (touched.last_login_at, touched.email, touched.verified_at) == (
        2000,
        "new@example.com",
        1000,
    )
    storage.touch_link(link.id, now=3000, email="new@example.com", verified=True)
    touched = storage.get_link("acme", link.issuer, link.subject)
    assert touched is not None
    assert touched.verified_at == 3000


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


def test_audit_log_newest_first_per_store(storage: SQLStorage) -> None:
    for i in range(3):
        storage.record_audit(
            AuditEntry(at=1000 + i, store="acme", event="signin", outcome=f"ok{i}")
        )
    storage.record_audit(AuditEntry(at=1005, store="beta", event="signin", outcome="other"))
    entries = storage.recent_audit("acme", limit=2)
    assert [e.outcome for e in entries] == ["ok2", "ok1"]
    long = AuditEntry(at=1, store="acme", event="refused", outcome="x", detail="d" * 400)
    storage.record_audit(long)
    assert storage.recent_audit("acme", limit=1)[0].detail == "d" * 255


def new_session(storage: SQLStorage, **over: Any) -> BrokerSession:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "status_key": uuid.uuid4().hex,
        "store": "acme",
        "connection": "corp",
        "customer_id": 7,
        "issuer": "https://idp.example",
        "subject": "sub-1",
        "created_at": 1000,
        "expires_at": 5000,
    }
    values.update(over)
    session = BrokerSession(**values)
    storage.create_session(session)
    return session


def test_sessions_are_found_and_ended_once(storage: SQLStorage) -> None:
    session = new_session(storage, sid="sid-1", id_token="a.b.c")
    assert storage.get_session(session.id) == session
    assert storage.session_by_status_key(session.status_key) == session
    assert session.active(now=1500)
    assert storage.end_session(session.id, now=1500) is True
    assert storage.end_session(session.id, now=1600) is False
    ended = storage.get_session(session.id)
    assert ended is not None
    assert (ended.ended_at, ended.active(now=1700)) == (1500, False)


def test_an_idp_ends_sessions_by_sid_or_subject(storage: SQLStorage) -> None:
    first = new_session(storage, sid="sid-1")
    second = new_session(storage, sid="sid-2")
    other = new_session(storage, subject="sub-2", sid="sid-3")
    elsewhere = new_session(storage, store="beta", sid="sid-1")
    assert (
        storage.end_sessions("acme", "https://idp.example", subject=None, sid="sid-1", now=2000)
        == 1
    )
    assert (
        storage.end_sessions("acme", "https://idp.example", subject="sub-1", sid=None, now=2000)
        == 1
    )
    assert (
        storage.end_sessions("acme", "https://idp.example", subject=None, sid=None, now=2000) == 0
    )
    still = {s.id: storage.get_session(s.id).ended_at for s in (first, second, other, elsewhere)}  # type: ignore[union-attr]
    assert still == {first.id: 2000, second.id: 2000, other.id: None, elsewhere.id: None}


def test_saml_logout_ends_by_name_id_and_session_index(storage: SQLStorage) -> None:
    a = new_session(storage, name_id="alice@example.com", session_index="s1")
    b = new_session(storage, name_id="alice@example.com", session_index="s2")
    ended = storage.end_saml_sessions(
        "acme", "https://idp.example", name_id="alice@example.com", session_indexes=["s2"], now=2000
    )
    assert ended == 1
    assert storage.get_session(a.id).ended_at is None  # type: ignore[union-attr]
    assert storage.get_session(b.id).ended_at == 2000  # type: ignore[union-attr]
    assert (
        storage.end_saml_sessions(
            "acme", "https://idp.example", name_id="alice@example.com", session_indexes=[], now=2001
        )
        == 1
    )
