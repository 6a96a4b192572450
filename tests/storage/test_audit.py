"""AuditStore on SQLite and PostgreSQL: newest first per store, bounded rows, retention."""

from __future__ import annotations

from broker.storage import AuditEntry, SQLStorage


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


def test_audit_rows_are_bounded_and_expire_by_retention(storage: SQLStorage) -> None:
    storage.record_audit(
        AuditEntry(at=1000, store="acme", event="refused", outcome="x", detail="d" * 2000)
    )
    storage.record_audit(AuditEntry(at=5000, store="acme", event="signin", outcome="ok"))
    assert len(storage.recent_audit("acme")[1].detail or "") == 255
    assert storage.gc(now=6000, audit_before=2000) == 1
    assert [e.at for e in storage.recent_audit("acme")] == [5000]
