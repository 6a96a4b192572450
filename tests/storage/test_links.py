"""LinkStore on SQLite and PostgreSQL: links by connection, one identity per connection per
customer, and the identities a customer unlinked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from broker.storage import DEFAULT_CHANNEL, AlreadyExists, SQLStorage, open_storage
from tests.storage.builders import new_link


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


def test_unlinks_are_remembered_until_linked_again(storage: SQLStorage) -> None:
    assert not storage.was_unlinked("acme", "corp", "sub-1", 7)
    storage.record_unlink("acme", "corp", "sub-1", 7, now=1000)
    storage.record_unlink("acme", "corp", "sub-1", 7, now=1001)  # twice is fine
    assert storage.was_unlinked("acme", "corp", "sub-1", 7)
    assert not storage.was_unlinked("acme", "corp", "sub-1", 8)
    assert not storage.was_unlinked("acme", "other", "sub-1", 7)
    storage.clear_unlink("acme", "corp", "sub-1")
    assert not storage.was_unlinked("acme", "corp", "sub-1", 7)


def test_links_are_per_channel_and_the_default_channel_is_zero(storage: SQLStorage) -> None:
    """One subject may be a different customer on each channel (e-mails are per channel)."""
    default = new_link(storage, customer_id=7)
    assert default.channel_id == DEFAULT_CHANNEL == 0
    assert storage.get_link("acme", "corp", "sub-1") == default
    assert storage.get_link("acme", "corp", "sub-1", 2) is None
    wholesale = new_link(storage, customer_id=8, channel_id=2)
    assert storage.get_link("acme", "corp", "sub-1", 2) == wholesale
    assert storage.get_link("acme", "corp", "sub-1", 0) == default
    with pytest.raises(AlreadyExists):
        new_link(storage, customer_id=9, channel_id=2)  # one customer per identity per channel


def test_one_identity_per_connection_per_customer_across_channels(storage: SQLStorage) -> None:
    """A global customer may sign in on several channels: as one identity of a connection."""
    new_link(storage, "sub-1", customer_id=7)
    assert new_link(storage, "sub-1", customer_id=7, channel_id=2).channel_id == 2
    with pytest.raises(AlreadyExists):
        new_link(storage, "sub-2", customer_id=7, channel_id=3)  # another person, same account
    assert storage.get_link("acme", "corp", "sub-2", 3) is None
    assert new_link(storage, "sub-2", customer_id=7, channel_id=3, connection="other")


def test_racing_links_of_two_people_to_one_customer_on_two_channels_have_one_winner(
    database_url: str,
) -> None:
    storage = open_storage(database_url)
    try:

        def link(number: int) -> bool:
            try:
                new_link(storage, f"sub-{number}", customer_id=7, channel_id=number + 1)
            except AlreadyExists:
                return False
            return True

        with ThreadPoolExecutor(8) as pool:
            won = list(pool.map(link, range(8)))
        assert won.count(True) == 1
        assert len({x.subject for x in storage.links_for_customer("acme", 7)}) == 1
    finally:
        storage.close()
