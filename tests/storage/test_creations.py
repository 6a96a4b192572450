"""CreationStore on SQLite and PostgreSQL: customers the broker set out to create."""

from __future__ import annotations

from broker.storage import Creation, SQLStorage


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
