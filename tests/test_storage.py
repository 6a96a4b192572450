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
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, make_url, text

from broker import migrations
from broker.storage import (
    AlreadyExists,
    AuditEntry,
    BrokerSession,
    Creation,
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


def test_links_of_an_older_database_are_migrated_to_connections(database_url: str) -> None:
    """0003 -> 0004: links keep their connection and customer; duplicates the new keys forbid
    keep the most recently used one; long identifiers fit afterwards."""
    engine = create_engine(database_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    rows = [
        # (issuer, subject, customer, connection, last_login_at)
        ("https://idp.example", "sub-1", 7, "corp", 100),
        ("https://idp.example/", "sub-1", 7, "corp", 300),  # same subject, issuer edited
        ("https://idp.example", "sub-2", 8, "corp", 200),
        ("https://idp.example", "sub-3", 8, "corp", 100),  # two people, one customer
        ("https://other.example", "sub-1", 9, "other", 100),
    ]
    with engine.begin() as conn:
        for issuer, subject, customer, connection, last in rows:
            conn.execute(
                text(
                    "INSERT INTO links (store, issuer, subject, customer_id, connection, "
                    "created_at, last_login_at, verified_at) VALUES "
                    "('acme', :i, :s, :c, :conn, 1, :last, 1)"
                ),
                {"i": issuer, "s": subject, "c": customer, "conn": connection, "last": last},
            )
    engine.dispose()
    storage = open_storage(database_url)
    try:
        assert schema_revision(storage.engine) == "0005"
        kept = {
            (link.connection, link.subject): (link.customer_id, link.issuer)
            for customer in (7, 8, 9)
            for link in storage.links_for_customer("acme", customer)
        }
        assert kept == {
            ("corp", "sub-1"): (7, "https://idp.example/"),
            ("corp", "sub-2"): (8, "https://idp.example"),
            ("other", "sub-1"): (9, "https://other.example"),
        }
        long = "n" * 1000
        assert new_link(storage, subject=long, customer_id=10).subject == long
    finally:
        storage.close()


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


def test_links_are_found_by_connection_and_unique_per_store(storage: SQLStorage) -> None:
    link = new_link(storage)
    assert storage.get_link("acme", "corp", "sub-1") == link
    assert storage.get_link("beta", "corp", "sub-1") is None
    assert storage.get_link("acme", "other", "sub-1") is None
    with pytest.raises(AlreadyExists):
        new_link(storage, customer_id=8)
    assert new_link(storage, store="beta").store == "beta"


def test_an_identity_is_its_connection_not_the_issuer_it_declares(storage: SQLStorage) -> None:
    """A second connection declaring the first one's issuer reaches none of its links."""
    new_link(storage, connection="corp", issuer="https://idp.example")
    assert storage.get_link("acme", "rogue", "sub-1") is None
    rogue = new_link(storage, connection="rogue", issuer="https://idp.example", customer_id=8)
    assert storage.get_link("acme", "corp", "sub-1").customer_id == 7  # type: ignore[union-attr]
    assert storage.get_link("acme", "rogue", "sub-1") == rogue


def test_one_identity_per_connection_per_customer(storage: SQLStorage) -> None:
    new_link(storage, "sub-1")
    with pytest.raises(AlreadyExists):
        new_link(storage, "sub-2")  # another person of the same connection, same customer
    assert new_link(storage, "sub-2", connection="other").customer_id == 7


def test_a_customer_may_have_several_links_and_lose_them(storage: SQLStorage) -> None:
    first = new_link(storage, "sub-1")
    second = new_link(storage, "sub-2", connection="other", issuer="https://other.example")
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
    touched = storage.get_link("acme", link.connection, link.subject)
    assert touched is not None
    assert (touched.last_login_at, touched.email, touched.verified_at) == (
        2000,
        "new@example.com",
        1000,
    )
    storage.touch_link(link.id, now=3000, email="new@example.com", verified=True)
    touched = storage.get_link("acme", link.connection, link.subject)
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
    # Same issuer and subject, another connection: out of this connection's reach.
    sibling = new_session(storage, connection="rogue", sid="sid-1")
    assert storage.end_sessions("acme", "rogue", subject="sub-1", sid=None, now=1999) == 1
    assert storage.get_session(sibling.id).ended_at == 1999  # type: ignore[union-attr]
    assert storage.end_sessions("acme", "corp", subject=None, sid="sid-1", now=2000) == 1
    assert storage.end_sessions("acme", "corp", subject="sub-1", sid=None, now=2000) == 1
    assert storage.end_sessions("acme", "corp", subject=None, sid=None, now=2000) == 0
    still = {s.id: storage.get_session(s.id).ended_at for s in (first, second, other, elsewhere)}  # type: ignore[union-attr]
    assert still == {first.id: 2000, second.id: 2000, other.id: None, elsewhere.id: None}


def test_saml_logout_ends_by_name_id_and_session_index(storage: SQLStorage) -> None:
    a = new_session(storage, name_id="alice@example.com", session_index="s1")
    b = new_session(storage, name_id="alice@example.com", session_index="s2")
    ended = storage.end_saml_sessions(
        "acme", "corp", name_id="alice@example.com", session_indexes=["s2"], now=2000
    )
    assert ended == 1
    assert storage.get_session(a.id).ended_at is None  # type: ignore[union-attr]
    assert storage.get_session(b.id).ended_at == 2000  # type: ignore[union-attr]
    assert (
        storage.end_saml_sessions(
            "acme", "corp", name_id="alice@example.com", session_indexes=[], now=2001
        )
        == 1
    )


def test_long_idp_identifiers_are_stored_whole(storage: SQLStorage) -> None:
    """NameIDs, sid and SessionIndex are the IdP's to choose: no length limit of ours."""
    long = "x" * 2000
    link = new_link(storage, subject=long, issuer="https://idp.example/" + long)
    assert storage.get_link("acme", "corp", long) == link
    session = new_session(storage, subject=long, sid=long, name_id=long, session_index=long)
    assert storage.get_session(session.id) == session
    assert storage.use_once("saml:acme:corp:" + long, expires_at=2000, now=1000)


def test_unlinks_are_remembered_until_linked_again(storage: SQLStorage) -> None:
    assert not storage.was_unlinked("acme", "corp", "sub-1", 7)
    storage.record_unlink("acme", "corp", "sub-1", 7, now=1000)
    storage.record_unlink("acme", "corp", "sub-1", 7, now=1001)  # twice is fine
    assert storage.was_unlinked("acme", "corp", "sub-1", 7)
    assert not storage.was_unlinked("acme", "corp", "sub-1", 8)
    assert not storage.was_unlinked("acme", "other", "sub-1", 7)
    storage.clear_unlink("acme", "corp", "sub-1")
    assert not storage.was_unlinked("acme", "corp", "sub-1", 7)


def test_creations_are_recorded_finished_and_forgotten(storage: SQLStorage) -> None:
    creation = Creation(
        store="acme",
        email_key="pat@example.com",
        connection="corp",
        subject="sub-1",
        started_at=1000,
        expires_at=2000,
    )
    storage.begin_creation(creation)
    assert storage.creation_for("acme", "pat@example.com", now=1500) == creation
    storage.finish_creation("acme", "pat@example.com", 42)
    assert storage.creation_for("acme", "pat@example.com", now=1500).customer_id == 42  # type: ignore[union-attr]
    assert storage.creation_for("acme", "pat@example.com", now=2000) is None  # expired
    storage.forget_creation("acme", "pat@example.com")
    assert storage.creation_for("acme", "pat@example.com", now=1500) is None
    assert storage.gc(now=2000) == 0


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


def test_audit_rows_are_bounded_and_expire_by_retention(storage: SQLStorage) -> None:
    storage.record_audit(
        AuditEntry(at=1000, store="acme", event="refused", outcome="x", detail="d" * 2000)
    )
    storage.record_audit(AuditEntry(at=5000, store="acme", event="signin", outcome="ok"))
    assert len(storage.recent_audit("acme")[1].detail or "") == 255
    assert storage.gc(now=6000, audit_before=2000) == 1
    assert [e.at for e in storage.recent_audit("acme")] == [5000]


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
