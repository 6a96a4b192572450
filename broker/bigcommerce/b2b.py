"""B2B Edition's management API: companies and company users (``/api/v3/io``).

Follows docs/bigcommerce-api.md, "B2B Edition": headers ``X-Auth-Token`` and ``X-Store-Hash``;
every answer is an envelope ``{"code", "data", "meta"}``; ``GET /users/customer/{customerId}``
is 404 for a customer who is no company user; ``POST /users`` creates the company user and,
unless a customer with that e-mail exists, the BigCommerce customer too, answering
``{userId, bcId}``; 422 for an e-mail already a company user, and for other refusals. A
user's ``companyRoleId`` is its built-in role's own number (0-2) unless it has a custom role.
Rate limits and retries are :mod:`broker.bigcommerce.http`'s, as for the main API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from broker.bigcommerce.http import DEFAULT_DEADLINE_SECONDS, StoreHTTP
from broker.config import B2BSettings, StoreSettings
from broker.errors import BigCommerceError, BigCommerceUnavailable

#: companyStatus codes.
PENDING, APPROVED, REJECTED, INACTIVE = 0, 1, 2, 3
ROLE_NAMES = {0: "admin", 1: "senior buyer", 2: "junior buyer"}


@dataclass(frozen=True)
class CompanyUser:
    id: int
    company_id: int
    customer_id: int
    role: int
    company_role_id: int | None


@dataclass(frozen=True)
class Company:
    id: int
    name: str
    status: int

    @property
    def active(self) -> bool:
        return self.status == APPROVED


class B2BRefused(BigCommerceError):
    """B2B Edition said 422; ``reason`` is its message (e.g. "Email already exists")."""

    code = "b2b_refused"

    def __init__(self, reason: str) -> None:
        super().__init__("The store's B2B service refused the change.", detail=f"422: {reason}")
        self.reason = reason


class B2BClient:
    """B2B Edition for one store. Thread-safe; one per store, built once by the app."""

    def __init__(
        self,
        store: StoreSettings,
        b2b: B2BSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self._http = StoreHTTP(
            base_url=f"{b2b.api_url.rstrip('/')}/api/v3/io",
            headers={"X-Auth-Token": b2b.access_token, "X-Store-Hash": store.store_hash},
            timeout=store.api_timeout_seconds,
            transport=transport,
            clock=clock,
            sleep=sleep,
            deadline_seconds=deadline_seconds,
            store=store.key,
            api="b2b",
        )

    def close(self) -> None:
        self._http.close()

    def user_of_customer(self, customer_id: int) -> CompanyUser | None:
        response = self._http.request("GET", f"/users/customer/{customer_id}", accept=(404,))
        if response.status_code == 404:
            return None
        return _user(_data(response))

    def company(self, company_id: int) -> Company | None:
        response = self._http.request("GET", f"/companies/{company_id}", accept=(404,))
        if response.status_code == 404:
            return None
        data = _data(response)
        return Company(
            id=int(data["companyId"] if "companyId" in data else data["id"]),
            name=str(data.get("companyName") or ""),
            status=int(data.get("companyStatus", PENDING)),
        )

    def create_user(
        self,
        *,
        email: str,
        first_name: str,
        last_name: str,
        company_id: int,
        role: int,
        company_role_id: int | None,
        channel_ids: Sequence[int],
    ) -> tuple[int, int]:
        """A company user (and its customer when none has the e-mail): (userId, customer id)."""
        body: dict[str, Any] = {
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "companyId": company_id,
            "role": role,
            "channelIds": list(channel_ids),
        }
        if company_role_id is not None:
            body["companyRoleId"] = company_role_id
        response = self._http.request("POST", "/users", json=body, idempotent=False, accept=(422,))
        if response.status_code == 422:
            raise B2BRefused(_message(response))
        data = _data(response)
        return int(data["userId"]), int(data["bcId"])

    def update_role(self, user_id: int, *, role: int, company_role_id: int | None) -> None:
        body: dict[str, Any] = {"role": role}
        if company_role_id is not None:
            body["companyRoleId"] = company_role_id
        response = self._http.request("PUT", f"/users/{user_id}", json=body, accept=(422,))
        if response.status_code == 422:
            raise B2BRefused(_message(response))


def _data(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise BigCommerceUnavailable("The store's B2B service answered unexpectedly.", detail="b2b")
    return data


def _message(response: httpx.Response) -> str:
    try:
        meta = response.json().get("meta") or {}
    except (ValueError, AttributeError):
        return "refused"
    return str(meta.get("message") or "refused")[:200]


def _user(data: dict[str, Any]) -> CompanyUser:
    role = int(data.get("role", 2))
    role_id = data.get("companyRoleId")
    custom = int(role_id) if isinstance(role_id, int) and not isinstance(role_id, bool) else None
    if custom == role and custom in ROLE_NAMES:
        # A built-in role answers its own number as companyRoleId: no custom role. (Read as
        # one, it never equalled a plan's "no custom role", and every sign-in with sync_role
        # sent a PUT that changed nothing.)
        custom = None
    return CompanyUser(
        id=int(data["id"]),
        company_id=int(data["companyId"]),
        customer_id=int(data.get("customerId") or data.get("bcId") or 0),
        role=role,
        company_role_id=custom,
    )
