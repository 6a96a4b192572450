"""SignInStore and the hot path's verbs on SQLite and PostgreSQL: a sign-in's writes land in one
transaction or not at all, a link is read with its customer's block, and the single-use verbs
(a flow's take, an assertion id's use) have one winner among 40 threads."""

from __future__ import annotations

import pytest

from broker.errors import StorageError
from broker.storage import AuditEntry, BrokerSession, LinkTouch, SQLStorage, open_storage
from tests.storage.builders import key, new_link, new_session, race

RACERS = 40


def session_of(**over: object) -> BrokerSession:
    values: dict[str, object] = {
        "id": key(),
        "status_key": key(),
        "store": "acme",
        "connection": "corp",
        "customer_id": 7,
        "issuer": "https://idp.example",
        "subject": "sub-1",
        "created_at": 1000,
        "expires_at": 5000,
    }
    values.update(over)
    return BrokerSession(**values)  # type: ignore[arg-type]


def entry(outcome: str = "ok", at: int = 2000) -> AuditEntry:
    return AuditEntry(at=at, store="acme", event="signin", outcome=outcome, customer_id=7)


def test_a_sign_in_keeps_its_session_audit_and_link_changes(storage: SQLStorage) -> None:
    link = new_link(storage)
    session = session_of()
    touch = LinkTouch(
        link.id,
        seen_at=2000,
        email="new@example.com",
        verified_at=2000,
        company_plan="5:2::sync",
        company_checked_at=2000,
    )
    storage.record_sign_in(
        session=session, audit=[entry("role_synced"), entry("ok", 2001)], touch=touch
    )
    assert storage.get_session(session.id) == session
    assert [e.outcome for e in storage.recent_audit("acme")] == ["ok", "role_synced"]
    touched = storage.get_link("acme", "corp", "sub-1")
    assert touched is not None
    assert (touched.last_login_at, touched.email, touched.verified_at) == (
        2000,
        "new@example.com",
        2000,
    )
    assert (touched.company_plan, touched.company_checked_at) == ("5:2::sync", 2000)


def test_a_touch_writes_only_what_it_sets(storage: SQLStorage) -> None:
    link = new_link(storage)
    storage.record_sign_in(
        session=None,
        audit=[],
        touch=LinkTouch(link.id, company_plan="5:2::keep", company_checked_at=3000),
    )
    touched = storage.get_link("acme", "corp", "sub-1")
    assert touched is not None
    # Time, e-mail and check as the link was made.
    assert (touched.last_login_at, touched.email, touched.verified_at) == (
        1000,
        "pat@example.com",
        1000,
    )
    assert (touched.company_plan, touched.company_checked_at) == ("5:2::keep", 3000)
    storage.record_sign_in(session=None, audit=[], touch=LinkTouch(link.id, seen_at=4000))
    again = storage.get_link("acme", "corp", "sub-1")
    assert again is not None
    assert (again.last_login_at, again.email, again.company_plan) == (4000, None, "5:2::keep")


def test_a_new_link_has_no_company_plan(storage: SQLStorage) -> None:
    link = new_link(storage)
    assert (link.company_plan, link.company_checked_at) == (None, None)
    stored = storage.get_link("acme", "corp", "sub-1")
    assert stored is not None
    assert (stored.company_plan, stored.company_checked_at) == (None, None)


def test_nothing_to_write_writes_nothing(storage: SQLStorage) -> None:
    link = new_link(storage)
    storage.record_sign_in(session=None, audit=[], touch=LinkTouch(link.id))
    assert storage.get_link("acme", "corp", "sub-1") == link
    assert storage.recent_audit("acme") == []


def test_a_sign_in_whose_session_fails_leaves_nothing(storage: SQLStorage) -> None:
    """All or nothing: the session cannot be kept (its id is taken), so neither its audit row
    nor its link's changes are."""
    link = new_link(storage)
    taken = new_session(storage)
    with pytest.raises(StorageError):
        storage.record_sign_in(
            session=session_of(id=taken.id),
            audit=[entry()],
            touch=LinkTouch(link.id, seen_at=2000, email="x@example.com"),
        )
    assert storage.recent_audit("acme") == []
    assert storage.get_link("acme", "corp", "sub-1") == link


def test_a_lone_write_fails_cleanly_too(storage: SQLStorage) -> None:
    taken = new_session(storage)
    with pytest.raises(StorageError):
        storage.record_sign_in(session=session_of(id=taken.id), audit=[])
    assert storage.get_session(taken.id) == taken


def test_a_link_is_read_with_its_customers_block(storage: SQLStorage) -> None:
    new_link(storage, customer_id=7)
    new_link(storage, "sub-2", customer_id=8)
    first = storage.get_link("acme", "corp", "sub-1")
    assert first is not None
    assert first.blocked is False
    storage.block_customer("acme", 7, source="scim:corp", now=1000)
    storage.block_customer("beta", 8, source="scim:corp", now=1000)  # another store's block
    blocked = storage.get_link("acme", "corp", "sub-1")
    other = storage.get_link("acme", "corp", "sub-2")
    assert blocked is not None
    assert other is not None
    assert (blocked.blocked, other.blocked) == (True, False)
    assert blocked == first  # the block is not part of the link's value
    storage.unblock_customer("acme", 7, source="scim:corp")
    assert storage.get_link("acme", "corp", "sub-1").blocked is False  # type: ignore[union-attr]


def test_forty_threads_racing_one_flow_take_have_one_winner(database_url: str) -> None:
    storage = open_storage(database_url)
    try:
        k = key()
        storage.save_pending(k, {"state": "s"}, expires_at=2000)
        results = race(RACERS, lambda: storage.take_pending(k, now=1000))
        assert results.count({"state": "s"}) == 1
        assert results.count(None) == RACERS - 1
        assert storage.peek_pending(k, now=1000) is None
    finally:
        storage.close()


def test_forty_threads_racing_one_assertion_id_have_one_winner(database_url: str) -> None:
    storage = open_storage(database_url)
    try:
        k = key()
        assert race(RACERS, lambda: storage.use_once(k, expires_at=2000, now=1000)).count(True) == 1
        # Expired: taken over again, by exactly one of as many.
        assert race(RACERS, lambda: storage.use_once(k, expires_at=4000, now=2000)).count(True) == 1
        assert storage.seen_once(k, now=3999)
    finally:
        storage.close()


def test_forty_sign_ins_writing_at_once_all_land(database_url: str) -> None:
    storage = open_storage(database_url)
    try:
        link = new_link(storage)

        def sign_in() -> None:
            storage.record_sign_in(
                session=session_of(),
                audit=[entry()],
                touch=LinkTouch(link.id, seen_at=2000, email="pat@example.com"),
            )

        race(RACERS, sign_in)
        assert len(storage.recent_audit("acme", limit=100)) == RACERS
    finally:
        storage.close()
