"""AppStore on SQLite and PostgreSQL: installs, admin users, API tokens, a store's removal,
and edits of a stored store that race."""

from __future__ import annotations

import threading

from broker.storage import AuditEntry, SQLStorage, keys
from tests.storage.builders import new_link, new_session


def _install(storage: SQLStorage, store: str, **over: object) -> int:
    values: dict[str, object] = {
        "scope": "store_v2_customers",
        "owner_id": 1,
        "user_id": 1,
        "name": "Shop",
        "now": 1000,
    }
    values.update(over)
    return storage.install_store(store, {"store_hash": store}, **values)  # type: ignore[arg-type]


def test_an_install_writes_the_document_the_install_and_its_first_admin(
    storage: SQLStorage,
) -> None:
    version = _install(storage, "abc")
    assert storage.tenant_documents()["abc"].version == version == storage.tenants_version()
    install = storage.get_install("abc")
    assert install is not None
    assert (install.owner_id, install.name) == (1, "Shop")
    assert storage.is_admin_user("abc", 1)
    assert not storage.is_admin_user("abc", 2)
    # A reinstall (new scopes) replaces; the install date stays.
    _install(storage, "abc", scope="more", user_id=2, now=2000)
    again = storage.get_install("abc")
    assert again is not None
    assert (again.scope, again.installed_at, again.updated_at) == (
        "more",
        1000,
        2000,
    )
    assert storage.is_admin_user("abc", 1)
    assert storage.is_admin_user("abc", 2)
    assert storage.remove_admin_user("abc", 2) is True
    assert storage.remove_admin_user("abc", 2) is False


def test_removing_a_store_deletes_every_row_of_it_and_nothing_of_another(
    storage: SQLStorage,
) -> None:
    for store in ("ab", "abc", "a_c"):
        _install(storage, store)
        new_link(storage, store=store)
        new_session(storage, store=store)
        storage.record_audit(AuditEntry(at=1, store=store, event="signin", outcome="ok"))
        storage.use_once(keys.saml_assertion(store, "corp", "id-1"), 9999, 1)
        storage.reserve_attempt(keys.confirm_attempts(store, 7), limit=5, window=60, now=1)
        storage.create_api_token(store=store, kind="admin", digest=store * 3, label="t", now=1)
    removed = storage.remove_store("ab")
    assert removed >= 8
    assert "ab" not in storage.tenant_documents()
    assert storage.get_install("ab") is None
    assert storage.links_for_customer("ab", 7) == []
    assert storage.recent_audit("ab") == []
    assert storage.use_once(keys.saml_assertion("ab", "corp", "id-1"), 9999, 2) is True
    # "abc" and "a_c" ("_" is a LIKE wildcard) keep everything.
    for other in ("abc", "a_c"):
        assert storage.get_install(other) is not None
        assert storage.links_for_customer(other, 7) != []
        assert len(storage.recent_audit(other)) == 1
        assert storage.use_once(keys.saml_assertion(other, "corp", "id-1"), 9999, 2) is False
        assert storage.list_api_tokens(other, "admin") != []


def test_api_tokens_are_found_by_digest_until_revoked(storage: SQLStorage) -> None:
    first = storage.create_api_token(store="abc", kind="admin", digest="d1", label="ci", now=1)
    storage.create_api_token(store="abc", kind="scim", digest="d2", label="okta", now=1)
    found = storage.find_api_token("d1")
    assert found is not None
    assert (found.id, found.store, found.kind) == (first, "abc", "admin")
    assert storage.revoke_api_tokens("abc", "admin", 5, token_id=first) == 1
    assert storage.find_api_token("d1") is None
    assert storage.find_api_token("d2") is not None  # another kind is untouched
    assert [t.revoked_at for t in storage.list_api_tokens("abc", "admin")] == [5]


def test_racing_edits_of_one_stored_store_each_keep_their_change(storage: SQLStorage) -> None:
    storage.put_tenant("abc", {"store_hash": "abc", "connections": {}}, now=1)
    start = threading.Barrier(8)

    def add(n: int) -> None:
        start.wait()
        for _ in range(50):
            row = storage.tenant_documents()["abc"]
            connections = {**row.document["connections"], f"c{n}": {"n": n}}
            document = {**row.document, "connections": connections}
            if storage.replace_tenant("abc", document, expected_version=row.version, now=2):
                return
        raise AssertionError("never written")

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(storage.tenant_documents()["abc"].document["connections"]) == [
        f"c{n}" for n in range(8)
    ]
    assert storage.replace_tenant("abc", {}, expected_version=1, now=3) is None
    assert storage.replace_tenant("nope", {}, expected_version=1, now=3) is None


def test_the_audit_is_searched_by_event_connection_outcome_and_time(storage: SQLStorage) -> None:
    for at, event, conn, outcome in [
        (10, "signin", "a", "ok"),
        (20, "signin", "b", "ok"),
        (30, "refused", "a", "x"),
    ]:
        storage.record_audit(
            AuditEntry(at=at, store="abc", event=event, connection=conn, outcome=outcome)
        )
    assert [e.at for e in storage.search_audit("abc", event="signin")] == [20, 10]
    assert [e.at for e in storage.search_audit("abc", connection="a")] == [30, 10]
    assert [e.at for e in storage.search_audit("abc", outcome="x")] == [30]
    assert [e.at for e in storage.search_audit("abc", since=15, until=30)] == [20]
    assert [e.at for e in storage.search_audit("abc", limit=1)] == [30]
