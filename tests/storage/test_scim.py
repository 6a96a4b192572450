"""ScimStore on SQLite and PostgreSQL: users and groups per connection, their uniqueness under
concurrency, filters and pages, versions, blocks from several sources, and their removal with
the store or the connection."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from broker.storage import AlreadyExists, ScimGroup, ScimUser, SQLStorage, scim_source


def _user(user_name: str = "Pat@Acme.com", **over: Any) -> ScimUser:
    values: dict[str, Any] = {
        "store": "acme",
        "connection": "okta",
        "id": uuid.uuid4().hex,
        "user_name": user_name,
        "external_id": None,
        "email": user_name if "@" in user_name else None,
        "customer_id": None,
        "active": True,
        "document": {"userName": user_name, "name": {"givenName": "Pat"}},
        "version": 1,
        "created_at": 1000,
        "updated_at": 1000,
    }
    values.update(over)
    return ScimUser(**values)


def _group(display_name: str = "Wholesale", **over: Any) -> ScimGroup:
    values: dict[str, Any] = {
        "store": "acme",
        "connection": "okta",
        "id": uuid.uuid4().hex,
        "display_name": display_name,
        "external_id": None,
        "document": {"displayName": display_name},
        "members": (),
        "version": 1,
        "created_at": 1000,
        "updated_at": 1000,
    }
    values.update(over)
    return ScimGroup(**values)


def _create(storage: SQLStorage, user_name: str = "Pat@Acme.com", **over: Any) -> ScimUser:
    user = _user(user_name, **over)
    storage.create_scim_user(user)
    return user


def test_a_user_is_stored_as_given_and_read_back(storage: SQLStorage) -> None:
    user = _create(
        storage,
        external_id="00u1",
        customer_id=7,
        document={"userName": "Pat@Acme.com", "emails": [{"value": "pat@acme.com"}], "ü": "ä"},
    )
    assert storage.get_scim_user("acme", "okta", user.id) == user
    assert storage.get_scim_user("acme", "other", user.id) is None
    assert storage.get_scim_user("other", "okta", user.id) is None
    assert storage.get_scim_user("acme", "okta", "nope") is None


def test_user_names_are_unique_per_connection_without_regard_to_case(
    storage: SQLStorage,
) -> None:
    _create(storage, "Pat@Acme.com", external_id="00u1")
    with pytest.raises(AlreadyExists):
        _create(storage, "PAT@acme.COM")
    with pytest.raises(AlreadyExists):
        _create(storage, "someone@acme.com", external_id="00u1")
    # Another connection, or another store, has users of its own.
    _create(storage, "pat@acme.com", connection="entra", external_id="00u1")
    _create(storage, "pat@acme.com", store="other", external_id="00u1")
    # Users without an external id do not clash on it.
    _create(storage, "a@acme.com")
    _create(storage, "b@acme.com")


def test_ten_creates_of_one_user_name_at_once_see_one_winner(storage: SQLStorage) -> None:
    start = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        start.wait()
        try:
            _create(storage, "Racer@Acme.com" if n % 2 else "racer@acme.com")
            outcome = "created"
        except AlreadyExists:
            outcome = "exists"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] + ["exists"] * 9
    total, _ = storage.find_scim_users(
        "acme", "okta", where={"user_name": "RACER@acme.com"}, start=1, count=10
    )
    assert total == 1


def test_users_are_found_by_filters_and_paged_in_creation_order(storage: SQLStorage) -> None:
    made = [
        _create(
            storage,
            f"user{n}@acme.com",
            external_id=f"ext-{n}",
            email=f"User{n}@Acme.com",
            created_at=2000 - n // 2,  # pairs share a time: the id orders them
        )
        for n in range(7)
    ]
    _create(storage, "user0@acme.com", connection="entra")  # not this connection's
    ordered = sorted(made, key=lambda u: (u.created_at, u.id))
    total, page = storage.find_scim_users("acme", "okta", where={}, start=1, count=3)
    assert (total, page) == (7, ordered[:3])
    total, page = storage.find_scim_users("acme", "okta", where={}, start=6, count=3)
    assert (total, page) == (7, ordered[5:])
    total, page = storage.find_scim_users("acme", "okta", where={}, start=9, count=3)
    assert (total, page) == (7, [])
    total, page = storage.find_scim_users("acme", "okta", where={}, start=1, count=0)
    assert (total, page) == (7, [])
    total, page = storage.find_scim_users("acme", "okta", where={}, start=0, count=1)
    assert page == ordered[:1]  # startIndex below 1 is 1

    def found(**where: str) -> list[str]:
        _, users = storage.find_scim_users("acme", "okta", where=where, start=1, count=100)
        return [u.user_name for u in users]

    assert found(user_name="USER3@acme.com") == ["user3@acme.com"]
    assert found(email="user4@ACME.com") == ["user4@acme.com"]
    assert found(external_id="ext-5") == ["user5@acme.com"]
    assert found(external_id="EXT-5") == []  # external ids are exact
    assert found(id=made[6].id) == ["user6@acme.com"]
    assert found(user_name="user1@acme.com", external_id="ext-1") == ["user1@acme.com"]
    assert found(user_name="user1@acme.com", external_id="ext-2") == []
    with pytest.raises(ValueError, match="nickName"):
        found(nickName="x")


def test_a_replace_writes_over_the_version_it_read(storage: SQLStorage) -> None:
    user = _create(storage, "pat@acme.com", external_id="00u1")
    _create(storage, "kim@acme.com", external_id="00u2")
    changed = _user(
        "Pat.Smith@acme.com",
        id=user.id,
        external_id="00u1",
        email="pat.smith@acme.com",
        customer_id=7,
        active=False,
        document={"userName": "Pat.Smith@acme.com", "active": False},
        version=99,  # the store counts versions itself
        created_at=5555,  # and keeps the creation time
        updated_at=2000,
    )
    stored = storage.replace_scim_user(changed, expected_version=1)
    assert stored is not None
    assert (stored.version, stored.created_at, stored.updated_at) == (2, 1000, 2000)
    assert (stored.user_name, stored.email, stored.customer_id, stored.active) == (
        "Pat.Smith@acme.com",
        "pat.smith@acme.com",
        7,
        False,
    )
    assert stored.document == {"userName": "Pat.Smith@acme.com", "active": False}
    assert storage.get_scim_user("acme", "okta", user.id) == stored
    # A writer that read version 1 loses; one that does not check wins.
    assert storage.replace_scim_user(changed, expected_version=1) is None
    third = storage.replace_scim_user(changed, expected_version=None)
    assert third is not None
    assert third.version == 3
    # Another user's name or external id is taken; the record stays as it was.
    with pytest.raises(AlreadyExists):
        storage.replace_scim_user(_user("KIM@acme.com", id=user.id), expected_version=3)
    with pytest.raises(AlreadyExists):
        storage.replace_scim_user(
            _user("x@acme.com", id=user.id, external_id="00u2"), expected_version=3
        )
    assert storage.get_scim_user("acme", "okta", user.id) == third
    # Its own name in another case is no clash.
    renamed = storage.replace_scim_user(
        _user("PAT.SMITH@acme.com", id=user.id, external_id="00u1"), expected_version=3
    )
    assert renamed is not None
    assert renamed.user_name == "PAT.SMITH@acme.com"
    # A user that is gone is not written.
    assert storage.replace_scim_user(_user("new@acme.com"), expected_version=None) is None


def test_racing_replaces_of_one_version_see_one_winner(storage: SQLStorage) -> None:
    user = _create(storage)
    start = threading.Barrier(6)
    wins: list[int] = []

    def replace(n: int) -> None:
        start.wait()
        mine = _user(f"n{n}@acme.com", id=user.id, document={"n": n})
        if storage.replace_scim_user(mine, expected_version=1) is not None:
            wins.append(n)

    threads = [threading.Thread(target=replace, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    stored = storage.get_scim_user("acme", "okta", user.id)
    assert stored is not None
    assert (stored.version, stored.document) == (2, {"n": wins[0]})


def test_groups_keep_their_members_in_order_and_are_found_by_them(storage: SQLStorage) -> None:
    pat, kim, lee = (_create(storage, f"{n}@acme.com") for n in ("pat", "kim", "lee"))
    wholesale = _group("Wholesale", external_id="g1", members=(kim.id, pat.id, kim.id))
    storage.create_scim_group(wholesale)
    staff = _group("Staff", members=(pat.id,), created_at=1001)
    storage.create_scim_group(staff)
    stored = storage.get_scim_group("acme", "okta", wholesale.id)
    assert stored is not None
    assert stored.members == (kim.id, pat.id)  # once each, in the order given
    assert storage.get_scim_group("acme", "entra", wholesale.id) is None
    with pytest.raises(AlreadyExists):
        storage.create_scim_group(_group("Other", external_id="g1"))
    # Display names may repeat (Entra ID allows it).
    storage.create_scim_group(_group("wholesale", created_at=1002))

    def found(**where: str) -> list[str]:
        _, groups = storage.find_scim_groups("acme", "okta", where=where, start=1, count=100)
        return [g.display_name for g in groups]

    assert found() == ["Wholesale", "Staff", "wholesale"]
    assert found(display_name="WHOLESALE") == ["Wholesale", "wholesale"]
    assert found(external_id="g1") == ["Wholesale"]
    assert found(id=staff.id) == ["Staff"]
    assert found(member=pat.id) == ["Wholesale", "Staff"]
    assert found(member=lee.id) == []
    assert found(member=pat.id, display_name="staff") == ["Staff"]
    total, page = storage.find_scim_groups("acme", "okta", where={}, start=2, count=1)
    assert (total, [g.display_name for g in page]) == (3, ["Staff"])
    assert page[0].members == (pat.id,)
    assert [g.id for g in storage.groups_of_scim_user("acme", "okta", pat.id)] == [
        wholesale.id,
        staff.id,
    ]
    with pytest.raises(ValueError, match="members"):
        found(members=pat.id)


def test_a_group_replace_replaces_its_members_at_its_version(storage: SQLStorage) -> None:
    pat, kim = (_create(storage, f"{n}@acme.com") for n in ("pat", "kim"))
    group = _group("Wholesale", members=(pat.id,))
    storage.create_scim_group(group)
    changed = _group(
        "Wholesale EU",
        id=group.id,
        external_id="g9",
        members=(kim.id,),
        document={"displayName": "Wholesale EU"},
        updated_at=3000,
    )
    stored = storage.replace_scim_group(changed, expected_version=1)
    assert stored is not None
    assert (stored.display_name, stored.external_id, stored.members) == (
        "Wholesale EU",
        "g9",
        (kim.id,),
    )
    assert (stored.version, stored.created_at, stored.updated_at) == (2, 1000, 3000)
    assert storage.get_scim_group("acme", "okta", group.id) == stored
    assert storage.replace_scim_group(changed, expected_version=1) is None
    emptied = storage.replace_scim_group(_group("Wholesale EU", id=group.id), expected_version=None)
    assert emptied is not None
    assert (emptied.members, emptied.version) == ((), 3)
    assert storage.groups_of_scim_user("acme", "okta", kim.id) == []
    other = _group("Other", external_id="g10")
    storage.create_scim_group(other)
    with pytest.raises(AlreadyExists):
        storage.replace_scim_group(
            _group("Wholesale", id=group.id, external_id="g10"), expected_version=3
        )
    assert storage.replace_scim_group(_group("Gone"), expected_version=None) is None


def test_deleting_a_user_drops_its_memberships_and_a_group_its_members(
    storage: SQLStorage,
) -> None:
    pat, kim = (_create(storage, f"{n}@acme.com") for n in ("pat", "kim"))
    group = _group(members=(pat.id, kim.id))
    storage.create_scim_group(group)
    assert storage.delete_scim_user("acme", "okta", pat.id) is True
    assert storage.delete_scim_user("acme", "okta", pat.id) is False
    assert storage.get_scim_user("acme", "okta", pat.id) is None
    stored = storage.get_scim_group("acme", "okta", group.id)
    assert stored is not None
    assert stored.members == (kim.id,)
    # The name is free again.
    _create(storage, "PAT@acme.com")
    assert storage.delete_scim_group("acme", "okta", group.id) is True
    assert storage.delete_scim_group("acme", "okta", group.id) is False
    assert storage.groups_of_scim_user("acme", "okta", kim.id) == []
    assert storage.get_scim_user("acme", "okta", kim.id) is not None


def test_the_users_of_a_customer_are_found_on_every_connection(storage: SQLStorage) -> None:
    okta = _create(storage, "pat@acme.com", customer_id=7)
    entra = _create(storage, "pat@acme.com", connection="entra", customer_id=7)
    _create(storage, "kim@acme.com", customer_id=8)
    _create(storage, "pat@acme.com", store="other", customer_id=7)
    assert storage.scim_users_of_customer("acme", 7) == [entra, okta]
    assert storage.scim_users_of_customer("acme", 9) == []


def test_blocks_of_two_sources_each_hold_until_lifted(storage: SQLStorage) -> None:
    okta, entra = scim_source("okta"), scim_source("entra")
    assert okta == "scim:okta"
    assert storage.is_blocked("acme", 7) is False
    storage.block_customer("acme", 7, source=okta, now=100)
    storage.block_customer("acme", 7, source=okta, now=500)  # again: the first time stays
    storage.block_customer("acme", 7, source=entra, now=300)
    storage.block_customer("acme", 8, source=entra, now=200)
    storage.block_customer("other", 7, source=okta, now=50)
    assert storage.is_blocked("acme", 7) is True
    assert storage.is_blocked("acme", 9) is False
    assert storage.blocks_older_than("acme", 1000) == [(7, 100), (8, 200)]
    assert storage.blocks_older_than("acme", 200) == [(7, 100)]
    assert storage.blocks_older_than("acme", 100) == []
    assert storage.blocks_older_than("acme", 1000, source=entra) == [(8, 200), (7, 300)]
    assert storage.unblock_customer("acme", 7, source=okta) is True
    assert storage.unblock_customer("acme", 7, source=okta) is False
    assert storage.is_blocked("acme", 7) is True  # entra's block holds
    assert storage.blocks_older_than("acme", 1000) == [(8, 200), (7, 300)]
    assert storage.unblock_customer("acme", 7, source=entra) is True
    assert storage.is_blocked("acme", 7) is False
    assert storage.is_blocked("other", 7) is True


def test_racing_blocks_of_one_source_are_one_block(storage: SQLStorage) -> None:
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def block(n: int) -> None:
        start.wait()
        try:
            storage.block_customer("acme", 7, source="scim:okta", now=100 + n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=block, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(storage.blocks_older_than("acme", 10_000)) == 1


def _populate(storage: SQLStorage, store: str, connection: str) -> tuple[ScimUser, ScimGroup]:
    user = _create(storage, "pat@acme.com", store=store, connection=connection, customer_id=7)
    group = _group(store=store, connection=connection, members=(user.id,))
    storage.create_scim_group(group)
    storage.block_customer(store, 7, source=scim_source(connection), now=100)
    return user, group


def test_removing_a_store_removes_its_scim_rows_and_no_other_stores(
    storage: SQLStorage,
) -> None:
    _populate(storage, "ab", "okta")
    user, group = _populate(storage, "abc", "okta")
    assert storage.remove_store("ab") >= 4
    assert storage.scim_users_of_customer("ab", 7) == []
    assert storage.find_scim_groups("ab", "okta", where={}, start=1, count=10) == (0, [])
    assert storage.is_blocked("ab", 7) is False
    assert storage.scim_users_of_customer("abc", 7) == [user]
    assert storage.get_scim_group("abc", "okta", group.id) == group
    assert storage.is_blocked("abc", 7) is True


def test_forgetting_a_connection_removes_its_scim_rows_and_its_blocks_only(
    storage: SQLStorage,
) -> None:
    _populate(storage, "acme", "okta")
    entra_user, entra_group = _populate(storage, "acme", "entra")
    storage.block_customer("acme", 8, source="scim:okta", now=100)
    storage.block_customer("acme", 8, source="admin", now=100)
    assert storage.forget_connection("acme", "okta") >= 4
    assert storage.find_scim_users("acme", "okta", where={}, start=1, count=10) == (0, [])
    assert storage.find_scim_groups("acme", "okta", where={}, start=1, count=10) == (0, [])
    # The other connection keeps its users, groups and blocks; another source's block stays.
    assert storage.scim_users_of_customer("acme", 7) == [entra_user]
    assert storage.get_scim_group("acme", "entra", entra_group.id) == entra_group
    assert storage.is_blocked("acme", 7) is True
    assert storage.blocks_older_than("acme", 1000, source="scim:okta") == []
    assert storage.is_blocked("acme", 8) is True
    # A new IdP behind the key starts afresh: the old user names are free.
    _create(storage, "pat@acme.com")
