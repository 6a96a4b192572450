"""SessionStore on SQLite and PostgreSQL: sessions found and ended, by the broker or the IdP."""

from __future__ import annotations

from broker.storage import SQLStorage
from tests.storage.builders import new_session


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
