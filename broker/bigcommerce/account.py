"""The GraphQL Account API: the control-panel users of one store (docs/bigcommerce-api.md,
"GraphQL Account API").

One request per call, never retried here: the account allows 70 requests an hour for all its
stores together, so the caller (:mod:`broker.provisioning.staff`) spends its budget one
request at a time, and a change that did not go through goes back to its queue. A 429 is
:class:`~broker.errors.RateLimited` with the seconds until the window resets; a GraphQL
error is :class:`AccountRefused` with its ``extensions.code``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from broker.bigcommerce.http import StoreHTTP
from broker.errors import BigCommerceError, BigCommerceUnavailable, RateLimited
from broker.settings.values import StaffSettings

#: The documents sent, as the Account API's documentation shows them (with variables).
STORE_USERS = """query StoreUsers($after: String) { account { stores(first: 50) { edges { node {
  id storeHash users(first: 50, after: $after) { pageInfo { hasNextPage endCursor }
  edges { node { id email firstName lastName } } } } } } } }"""
ACCOUNT_USERS = """query AccountUsers($after: String) { account { users(first: 50, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { id email } } } } }"""
ADD_TO_ACCOUNT = """mutation AddToAccount($email: String!) { account {
  addUserToAccount(input: {email: $email}) { account { id } } } }"""
ADD_TO_STORE = """mutation AddToStore($email: String!, $storeId: ID!) { user {
  addUserToStore(input: {user: {email: $email}, storeId: $storeId}) { storeId } } }"""
REMOVE_FROM_STORE = """mutation RemoveFromStore($userId: ID!, $storeId: ID!) { user {
  removeUserFromStore(input: {storeId: $storeId, userId: $userId}) { storeId user { id email } }
} }"""

#: How long one Account API request may take, in seconds.
TIMEOUT_SECONDS = 15.0
#: What an HTTP refusal of the Account API means, for the operator.
HINTS = {
    401: "the account_token is wrong or revoked (an account-level API account's token)",
    403: "the account-level API account lacks the Account Users scopes (read, write, delete)",
    404: "the account_uuid is wrong (the part after /accounts/ in the API path)",
}


@dataclass(frozen=True)
class StoreUser:
    """A control-panel user of the store (or of the account): the Account API's id and the
    e-mail, folded."""

    id: str
    email: str


class AccountRefused(BigCommerceError):
    """The Account API answered with GraphQL errors (``code``: the first one's)."""

    code = "account_api_refused"

    def __init__(self, code: str, message: str) -> None:
        super().__init__("BigCommerce refused the control-panel change.", detail=message)
        self.error_code = code


class AccountHTTPError(BigCommerceUnavailable):
    """The Account API refused the request itself (``status``: 401, 403 or 404)."""

    def __init__(self, status: int, path: str) -> None:
        super().__init__("The store refused the broker's request.", detail=f"POST {path}: {status}")
        self.status = status


class AccountClient:
    """The Account API of one account, for one store (thread-safe)."""

    def __init__(
        self,
        staff: StaffSettings,
        *,
        store_key: str,
        store_hash: str,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._store_hash = store_hash
        self._path = f"/accounts/{staff.account_uuid}/graphql"
        self._http = StoreHTTP(
            base_url=staff.api_url.rstrip("/"),
            headers={"X-Auth-Token": staff.account_token, "Content-Type": "application/json"},
            timeout=TIMEOUT_SECONDS,
            transport=transport,
            deadline_seconds=TIMEOUT_SECONDS,
            store=store_key,
            api="account",
        )

    @property
    def store_id(self) -> str:
        return f"bc/account/store/{self._store_hash}"

    def close(self) -> None:
        self._http.close()

    def store_users_page(self, after: str | None) -> tuple[list[StoreUser], str | None]:
        """One page of the store's users and the cursor of the next (None: the last page)."""
        data = self._send(STORE_USERS, {"after": after}, idempotent=True)
        for edge in _edges(_dig(data, "account", "stores")):
            node = edge.get("node") or {}
            if node.get("storeHash") != self._store_hash:
                continue
            return _page(node.get("users"))
        raise AccountRefused("NOT_FOUND", f"store {self._store_hash} is not in the account")

    def account_users_page(self, after: str | None) -> tuple[list[StoreUser], str | None]:
        """One page of the account's users and the cursor of the next (None: the last)."""
        data = self._send(ACCOUNT_USERS, {"after": after}, idempotent=True)
        return _page(_dig(data, "account", "users"))

    def add_to_account(self, email: str) -> None:
        self._send(ADD_TO_ACCOUNT, {"email": email}, idempotent=False)

    def add_to_store(self, email: str) -> None:
        self._send(ADD_TO_STORE, {"email": email, "storeId": self.store_id}, idempotent=False)

    def remove_from_store(self, user_id: str) -> None:
        self._send(
            REMOVE_FROM_STORE, {"userId": user_id, "storeId": self.store_id}, idempotent=False
        )

    def _send(self, query: str, variables: dict[str, Any], *, idempotent: bool) -> Any:
        response = self._http.request(
            "POST",
            self._path,
            json={"query": query, "variables": variables},
            idempotent=idempotent,
            accept=(429, *HINTS),
        )
        if response.status_code in HINTS:
            raise AccountHTTPError(response.status_code, self._path)
        if response.status_code == 429:
            reset = response.headers.get("X-Rate-Limit-Time-Reset-Ms", "")
            wait = int(reset) / 1000 if reset.isdigit() else 60.0
            raise RateLimited(
                "The Account API's hourly budget is spent.",
                retry_after=math.ceil(wait),
                detail="Account API: 429",
            )
        try:
            body = response.json()
        except ValueError:
            raise BigCommerceUnavailable(
                "The Account API answered something else than JSON.",
                detail=f"Account API: {response.status_code}",
            ) from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str((first.get("extensions") or {}).get("code") or "ERROR")
            raise AccountRefused(code, str(first.get("message") or "GraphQL error"))
        return body.get("data") if isinstance(body, dict) else None


def _page(users: Any) -> tuple[list[StoreUser], str | None]:
    """A connection of users: the users and the next page's cursor (None: the last page)."""
    users = users if isinstance(users, dict) else {}
    page = [
        StoreUser(id=str(u["id"]), email=str(u["email"]).strip().lower())
        for u in (e.get("node") or {} for e in _edges(users))
        if u.get("id") and u.get("email")
    ]
    info = users.get("pageInfo") or {}
    cursor = info.get("endCursor") if info.get("hasNextPage") else None
    return page, cursor if isinstance(cursor, str) and cursor else None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _edges(connection: Any) -> list[dict[str, Any]]:
    edges = connection.get("edges") if isinstance(connection, dict) else None
    return [e for e in edges if isinstance(e, dict)] if isinstance(edges, list) else []
