"""OnceStore on SQLite and PostgreSQL: one use per key until it expires; claims given back."""

from __future__ import annotations

from broker.storage import SQLStorage
from tests.storage.builders import key


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
