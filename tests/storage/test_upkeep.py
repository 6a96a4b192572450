"""The whole storage on SQLite and PostgreSQL: gc across aggregates, ping, and IdP identifiers
of any length in every table that holds them."""

from __future__ import annotations

from broker.storage import SQLStorage
from tests.storage.builders import key, new_link, new_session


def test_gc_removes_only_what_expired(storage: SQLStorage) -> None:
    old, fresh = key(), key()
    storage.save_pending(old, {}, expires_at=1000)
    storage.save_pending(fresh, {}, expires_at=3000)
    storage.use_once(key(), expires_at=1000, now=0)
    assert storage.gc(now=2000) >= 2
    assert storage.take_pending(fresh, now=2000) == {}


def test_ping(storage: SQLStorage) -> None:
    storage.ping()


def test_long_idp_identifiers_are_stored_whole(storage: SQLStorage) -> None:
    """NameIDs, sid and SessionIndex are the IdP's to choose: no length limit of ours."""
    long = "x" * 2000
    link = new_link(storage, subject=long, issuer="https://idp.example/" + long)
    assert storage.get_link("acme", "corp", long) == link
    session = new_session(storage, subject=long, sid=long, name_id=long, session_index=long)
    assert storage.get_session(session.id) == session
    assert storage.use_once("saml:acme:corp:" + long, expires_at=2000, now=1000)
