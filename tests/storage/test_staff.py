"""StaffStore on SQLite and PostgreSQL: the Account API's queue and budget hold with forty
workers at once (each item claimed once, never more requests than the budget), a claim lost
to an expired lease cannot be finished by its old worker, and the grants and sightings."""

from __future__ import annotations

from broker.storage import SQLStorage
from broker.storage.model import StaffSighting
from tests.storage.builders import race


def test_an_open_change_is_queued_once_and_a_closed_one_may_come_again(storage: SQLStorage) -> None:
    assert storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=100)
    assert not storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=101)
    assert storage.enqueue_staff("acme", "remove_from_store", "a@x.com", user_id="u1", now=101)
    assert storage.enqueue_staff("other", "add_to_store", "a@x.com", user_id=None, now=101)
    assert storage.cancel_staff("acme", "add_to_store", "a@x.com", now=102)
    assert storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=103)
    assert [(i.action, i.state) for i in storage.staff_items("acme")] == [
        ("remove_from_store", "pending"),
        ("add_to_store", "pending"),
    ]


def test_forty_concurrent_enqueues_of_one_change_queue_it_once(storage: SQLStorage) -> None:
    results = race(
        40, lambda: storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=1)
    )
    assert results.count(True) == 1
    assert len(storage.staff_items("acme")) == 1


def test_forty_workers_claim_each_item_exactly_once(storage: SQLStorage) -> None:
    for n in range(12):
        storage.enqueue_staff("acme", "add_to_store", f"u{n}@x.com", user_id=None, now=1)

    def drain() -> list[str]:
        mine = []
        while (item := storage.claim_staff_item("acme", now=10, lease=300)) is not None:
            assert storage.finish_staff_item(item, state="done", error=None, now=10)
            mine.append(item.email)
        return mine

    claimed = [email for emails in race(40, drain) for email in emails]
    assert sorted(claimed) == sorted(f"u{n}@x.com" for n in range(12))
    assert storage.staff_items("acme") == []


def test_an_expired_lease_passes_the_item_on_and_the_old_claim_cannot_finish_it(
    storage: SQLStorage,
) -> None:
    storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=1)
    first = storage.claim_staff_item("acme", now=10, lease=300)
    assert first is not None
    assert first.attempts == 1
    assert storage.claim_staff_item("acme", now=309, lease=300) is None  # still leased
    second = storage.claim_staff_item("acme", now=310, lease=300)
    assert second is not None
    assert second.attempts == 2
    assert not storage.finish_staff_item(first, state="done", error=None, now=311)
    assert storage.finish_staff_item(second, state="done", error=None, now=311)


def test_a_released_item_waits_for_its_time_and_counts_its_failures(storage: SQLStorage) -> None:
    storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=1)
    item = storage.claim_staff_item("acme", now=10, lease=300)
    assert item is not None
    assert storage.release_staff_item(item, run_at=100, error="502", failed=True, now=10)
    assert storage.claim_staff_item("acme", now=99, lease=300) is None
    again = storage.claim_staff_item("acme", now=100, lease=300)
    assert again is not None
    assert (again.failures, again.error) == (1, "502")
    assert storage.release_staff_item(again, run_at=100, error="429", failed=False, now=100)
    [left] = storage.staff_items("acme")
    assert left.failures == 1


def test_forty_requests_at_once_take_exactly_the_burst_then_one_per_interval(
    storage: SQLStorage,
) -> None:
    def take(now_ms: int) -> int:
        return storage.take_staff_slot("acct", now_ms=now_ms, interval_ms=60_000, burst=10)

    results = race(40, lambda: take(1_000_000))
    assert results.count(0) == 10
    assert all(wait > 0 for wait in results if wait)
    assert take(1_000_000 + 59_000) > 0
    assert take(1_000_000 + 60_000) == 0
    assert take(1_000_000 + 60_001) > 0
    # In any hour: the burst and one a minute, never more.
    taken = sum(take(1_000_000 + 60_000 + s * 1000) == 0 for s in range(1, 3600))
    assert taken == 59


def test_a_429_holds_the_budget_until_the_window_resets(storage: SQLStorage) -> None:
    def take(now_ms: int) -> int:
        return storage.take_staff_slot("acct", now_ms=now_ms, interval_ms=1000, burst=5)

    assert take(0) == 0
    storage.hold_staff_budget("acct", until_ms=30_000, interval_ms=1000, burst=5)
    assert take(29_000) > 0
    assert take(30_000) == 0
    assert take(30_001) > 0  # then one per interval, not a burst at once
    assert take(31_000) == 0
    storage.hold_staff_budget("fresh", until_ms=5_000, interval_ms=1000, burst=5)
    assert storage.take_staff_slot("fresh", now_ms=4_000, interval_ms=1000, burst=5) > 0


def test_grants_and_sightings(storage: SQLStorage) -> None:
    storage.add_staff_grant("acme", "a@x.com", now=1)
    storage.add_staff_grant("acme", "a@x.com", now=2)
    storage.add_staff_grant("other", "b@x.com", now=2)
    assert storage.staff_grants("acme") == {"a@x.com"}
    storage.remove_staff_grant("acme", "a@x.com")
    assert storage.staff_grants("acme") == set()

    def seen(conn: str, subject: str, in_group: bool, at: int) -> StaffSighting:
        return StaffSighting("acme", conn, subject, f"{subject}@x.com", in_group, at)

    storage.record_staff_sighting(seen("corp", "alice", True, 100))
    storage.record_staff_sighting(seen("corp", "alice", False, 200))
    storage.record_staff_sighting(seen("corp", "bob", True, 50))
    storage.record_staff_sighting(seen("other", "carol", True, 300))
    found = storage.staff_sightings("acme", ("corp",), since=60)
    assert [(s.subject, s.in_group, s.seen_at) for s in found] == [("alice", False, 200)]


def test_a_store_add_waits_for_the_same_emails_account_add(storage: SQLStorage) -> None:
    storage.enqueue_staff("acme", "add_to_store", "a@x.com", user_id=None, now=1)
    storage.enqueue_staff("acme", "add_to_account", "a@x.com", user_id=None, now=1)
    storage.enqueue_staff("acme", "add_to_store", "b@x.com", user_id=None, now=1)
    first = storage.claim_staff_item("acme", now=10, lease=300)
    second = storage.claim_staff_item("acme", now=10, lease=300)
    assert first is not None
    assert second is not None
    assert [(first.action, first.email), (second.action, second.email)] == [
        ("add_to_account", "a@x.com"),
        ("add_to_store", "b@x.com"),
    ]
    assert storage.claim_staff_item("acme", now=10, lease=300) is None  # a's store add waits
    assert storage.finish_staff_item(first, state="failed", error="x", now=11)
    last = storage.claim_staff_item("acme", now=11, lease=300)
    assert last is not None
    assert (last.action, last.email) == ("add_to_store", "a@x.com")
