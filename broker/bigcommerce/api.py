"""The one HTTP client for a store's BigCommerce management API (Customers V3, V2 time).

Follows docs/bigcommerce-api.md: ``X-Auth-Token`` authentication, array bodies on create,
no ``GET /customers/{id}``, 422 on a duplicate e-mail, and the ``X-Rate-Limit-*`` headers.
This is the only place that knows rate limits and retries:

- 429 with ``X-Rate-Limit-Time-Reset-Ms``: wait for the reset, then retry, as long as the
  request's deadline allows; past it, :class:`~broker.errors.RateLimited` (a "busy" page).
  When a response says no quota is left, the next requests wait for the reset first.
  A 429 without those headers is platform load: back off and retry within the deadline.
- Timeouts, connection errors and 5xx: idempotent requests retry with jittered backoff;
  a create is never retried blindly (the caller looks the e-mail up first).
- 401/403 and other unexpected answers: :class:`~broker.errors.BigCommerceUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from broker.bigcommerce.http import DEFAULT_DEADLINE_SECONDS, StoreHTTP
from broker.config import StoreSettings
from broker.errors import BigCommerceError, BigCommerceUnavailable

EMAIL_BATCH = 10


@dataclass(frozen=True)
class Customer:
    id: int
    email: str
    first_name: str
    last_name: str
    #: None means the customer may sign in on every channel (a global customer).
    channel_ids: tuple[int, ...] | None
    customer_group_id: int = 0

    def allows_channel(self, channel_id: int) -> bool:
        return self.channel_ids is None or channel_id in self.channel_ids

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["channel_ids"] = list(self.channel_ids) if self.channel_ids is not None else None
        return record

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Customer:
        channels = data.get("channel_ids")
        return cls(
            id=int(data["id"]),
            email=str(data.get("email") or ""),
            first_name=str(data.get("first_name") or ""),
            last_name=str(data.get("last_name") or ""),
            channel_ids=tuple(int(c) for c in channels) if isinstance(channels, list) else None,
            customer_group_id=int(data.get("customer_group_id") or 0),
        )


@dataclass(frozen=True)
class NewCustomer:
    email: str
    first_name: str
    last_name: str
    channel_id: int
    customer_group_id: int | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "channel_ids": [self.channel_id],
            "origin_channel_id": self.channel_id,
        }
        if self.customer_group_id is not None:
            body["customer_group_id"] = self.customer_group_id
        return body


class CustomerConflict(BigCommerceError):
    """422 on create: the e-mail may already exist (the body is not documented)."""

    code = "customer_conflict"


class BigCommerceClient:
    """The management API of one store. Thread-safe; one per store, built once by the app."""

    def __init__(
        self,
        store: StoreSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.store_hash = store.store_hash
        self._http = StoreHTTP(
            base_url=store.api_base,
            headers={"X-Auth-Token": store.access_token},
            timeout=store.api_timeout_seconds,
            transport=transport,
            clock=clock,
            sleep=sleep,
            deadline_seconds=deadline_seconds,
            store=store.key,
        )
        self._request = self._http.request
        # validate-credentials has a stricter limit of its own (docs/bigcommerce-api.md,
        # "Customers V3"): its 429s must not make every other request of the store wait.
        self._credentials_http = StoreHTTP(
            base_url=store.api_base,
            headers={"X-Auth-Token": store.access_token},
            timeout=store.api_timeout_seconds,
            transport=transport,
            clock=clock,
            sleep=sleep,
            deadline_seconds=deadline_seconds,
            store=store.key,
        )

    def spare(self, reserve: float) -> float | None:
        """Whether background work may spend the store's quota now (see StoreHTTP.spare)."""
        return self._http.spare(reserve)

    def close(self) -> None:
        self._http.close()
        self._credentials_http.close()

    # -- customers --------------------------------------------------------------------------

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]:
        """Customers whose e-mail is one of ``emails`` (``email:in``), any channel."""
        wanted = list(dict.fromkeys(e for e in emails if e))
        found: list[Customer] = []
        for start in range(0, len(wanted), EMAIL_BATCH):
            batch = wanted[start : start + EMAIL_BATCH]
            response = self._request(
                "GET", "/v3/customers", params={"email:in": ",".join(batch), "limit": 50}
            )
            found.extend(Customer.from_api(c) for c in _data_list(response))
        return found

    def customers_by_id(self, ids: Iterable[int]) -> list[Customer]:
        """Customers with these ids (``id:in``: there is no ``GET /customers/{id}``)."""
        wanted = sorted(set(ids))
        found: list[Customer] = []
        for start in range(0, len(wanted), 50):
            batch = ",".join(str(i) for i in wanted[start : start + 50])
            response = self._request("GET", "/v3/customers", params={"id:in": batch, "limit": 50})
            found.extend(Customer.from_api(c) for c in _data_list(response))
        return found

    def update_customer_email(self, customer_id: int, email: str) -> None:
        """Change one customer's e-mail (``PUT /customers``, array body); CustomerConflict
        when the store refuses it (422: another customer of the channel holds the address)."""
        response = self._request(
            "PUT",
            "/v3/customers",
            json=[{"id": customer_id, "email": email}],
            idempotent=True,
            accept=(422,),
        )
        if response.status_code == 422:
            raise CustomerConflict("The store kept the old e-mail.", detail="update email: 422")

    def update_customer_names(self, customer_id: int, first_name: str, last_name: str) -> None:
        """Change one customer's names (``PUT /customers``, array body)."""
        self._request(
            "PUT",
            "/v3/customers",
            json=[{"id": customer_id, "first_name": first_name, "last_name": last_name}],
            idempotent=True,
        )

    def update_customer_group(self, customer_id: int, customer_group_id: int) -> None:
        """Put one customer in a customer group (0: none), ``PUT /customers``."""
        self._request(
            "PUT",
            "/v3/customers",
            json=[{"id": customer_id, "customer_group_id": customer_group_id}],
            idempotent=True,
        )

    def delete_customers(self, ids: list[int]) -> None:
        """Delete customers (``DELETE /customers?id:in=``; at most 50 at once)."""
        for start in range(0, len(ids), 50):
            batch = ",".join(str(i) for i in ids[start : start + 50])
            self._request("DELETE", "/v3/customers", params={"id:in": batch}, accept=(404,))

    def validate_credentials(self, email: str, password: str, channel_id: int) -> int | None:
        """The customer id when the storefront password is right, else None."""
        response = self._credentials_http.request(
            "POST",
            "/v3/customers/validate-credentials",
            json={"email": email, "password": password, "channel_id": channel_id},
            idempotent=True,  # a check, not a change: safe to repeat
        )
        body = response.json()
        if not isinstance(body, dict) or body.get("is_valid") is not True:
            return None
        customer_id = body.get("customer_id")
        return int(customer_id) if isinstance(customer_id, int) else None

    def create_hook(self, *, scope: str, destination: str, headers: Mapping[str, str]) -> int:
        """Register a webhook (``POST /v3/hooks``); returns its id."""
        body = {"scope": scope, "destination": destination, "is_active": True, "headers": headers}
        data = self._request("POST", "/v3/hooks", json=body, idempotent=False).json().get("data")
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise BigCommerceUnavailable("The store answered unexpectedly.", detail="hooks")
        return int(data["id"])

    def hooks(self) -> list[dict[str, Any]]:
        """The store's registered webhooks (``GET /v3/hooks``)."""
        data = self._request("GET", "/v3/hooks").json().get("data")
        return [h for h in data if isinstance(h, dict)] if isinstance(data, list) else []

    def create_customer(self, new: NewCustomer) -> Customer:
        """Create one customer; CustomerConflict on 422, never retried on a 5xx or timeout."""
        response = self._request(
            "POST", "/v3/customers", json=[new.to_api()], idempotent=False, accept=(422,)
        )
        if response.status_code == 422:
            raise CustomerConflict("The store refused the new account.", detail="create: 422")
        created = _data_list(response)
        if len(created) != 1:
            raise BigCommerceUnavailable(
                "The store answered unexpectedly.", detail=f"create returned {len(created)} rows"
            )
        return Customer.from_api(created[0])

    def customer_groups(self) -> list[dict[str, Any]]:
        """The store's customer groups (``GET /v2/customer_groups``): id and name."""
        response = self._request("GET", "/v2/customer_groups", params={"limit": 250})
        if response.status_code == 204 or not response.content:
            return []  # V2 answers 204 No Content for an empty list
        body = response.json()
        rows = body if isinstance(body, list) else []
        return [
            {"id": int(g["id"]), "name": str(g.get("name") or g["id"])}
            for g in rows
            if isinstance(g, dict) and isinstance(g.get("id"), int)
        ]

    def create_script(self, script: Mapping[str, Any]) -> str:
        """Add a storefront script (``POST /v3/content/scripts``); returns its uuid."""
        response = self._request("POST", "/v3/content/scripts", json=dict(script), idempotent=False)
        data = response.json().get("data")
        if not isinstance(data, dict) or not isinstance(data.get("uuid"), str):
            raise BigCommerceUnavailable("The store answered unexpectedly.", detail="scripts")
        return str(data["uuid"])

    def scripts(self) -> list[dict[str, Any]]:
        """The storefront scripts this token may see (``GET /v3/content/scripts``)."""
        data = self._request("GET", "/v3/content/scripts", params={"limit": 250}).json().get("data")
        return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []

    def delete_script(self, uuid: str) -> None:
        self._request("DELETE", f"/v3/content/scripts/{uuid}", accept=(404,))

    def server_time(self) -> int:
        """The store's clock (``GET /v2/time``), the reference for the login JWT's ``iat``."""
        body = self._request("GET", "/v2/time").json()
        if not isinstance(body, dict) or not isinstance(body.get("time"), int):
            raise BigCommerceUnavailable("The store answered unexpectedly.", detail="v2/time")
        return int(body["time"])


def _data_list(response: httpx.Response) -> list[Mapping[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "id" in d for d in data):
        raise BigCommerceUnavailable("The store answered unexpectedly.", detail="no data list")
    return data
