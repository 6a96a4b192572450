"""A faithful local BigCommerce store: a test double for our tests and for ``broker demo``.

It follows the checked API facts in ``shared/bigcommerce-api.md`` and the "The sandbox"
section of ``DESIGN.md``. One Flask app (built by :func:`create_sandbox_app`) serves any
number of fake stores, each registered as a :class:`SandboxStore`:

- the management API at ``/stores/<hash>/v3/...`` and ``/stores/<hash>/v2/...`` with the
  real quirks (``X-Auth-Token``, array bodies of at most 10, no ``GET /customers/{id}``,
  422 on a duplicate e-mail within overlapping channels, 422 on an unknown filter,
  ``X-Rate-Limit-*`` headers from a real 30-second window, a stricter limit on
  ``validate-credentials``, ``GET /v2/time``), and webhooks at ``/v3/hooks`` for the customer
  scopes: customers created, updated or deleted through the API (or deleted "in the control
  panel" by :meth:`SandboxState.delete_customer`) are POSTed to every matching active hook from
  a background thread, and every delivery is logged and can be sent again, as BigCommerce's
  retries do;
- the storefront at ``/s/<hash>/``: ``/login/token/<jwt>`` checks the Customer Login JWT the
  way BigCommerce does and starts a session, ``/login.php`` has the password form
  (``?action=check_login``), ``/account.php`` shows who is signed in,
  ``/login.php?action=logout`` ends it, ``/customer/current.jwt`` returns the Current
  Customer JWT; a store's ``theme_script_url`` is loaded on every page, as a theme's script
  would be, and the account page then carries a ``data-sso-link`` link for it;
- B2B Edition's management API at ``/api/v3/io/...`` (companies and company users, the store
  chosen by ``X-Store-Hash``, authenticated by the store's ``b2b_token``) for stores that have
  one: :mod:`broker.sandbox.b2b` holds its rules, this module authenticates, rate-limits, logs
  (paths ``/api/v3/io/...``) and applies the same fault switches (``only="b2b"`` or
  ``only="bigcommerce"`` aims them at one of the two APIs);
- a JSON control API at ``/_sandbox/`` to register stores, seed and delete customers, seed B2B
  companies and company users, read the request, login and delivery logs and set fault
  switches (latency, 5xx, 429 storms, timeouts, connection resets (main API), quotas, clock
  offset).

It never replaces BigCommerce in production, and it imports nothing from the broker.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import http
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from flask import Flask, Response, render_template, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from werkzeug.datastructures import MultiDict
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.utils import redirect
from werkzeug.wrappers import Response as BaseResponse

from broker.sandbox import b2b

Clock = Callable[[], float]
JSONDict = dict[str, Any]

WINDOW_MS = 30_000
DEFAULT_QUOTA = 150
DEFAULT_CREDENTIALS_QUOTA = 5
DEFAULT_FAULT_RESET_MS = 1_000
DEFAULT_LIMIT = 50
MAX_LIMIT = 250
MAX_BATCH = 10
LOGIN_JWT_MAX_AGE = 30
CURRENT_JWT_LIFETIME = 900
DEFAULT_REDIRECT = "/account.php"
ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # noqa: S105 - a hash method name; cheap on purpose
_STORE_HASH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Hook headers usually carry the receiver's shared secret: kept out of the request log too.
_REDACTED_KEYS = frozenset({"password", "new_password", "headers"})
# The scopes the sandbox can fire; BigCommerce has many more (orders, products, carts...).
HOOK_SCOPES = frozenset(
    {
        "store/customer/created",
        "store/customer/updated",
        "store/customer/deleted",
        "store/customer/*",
    }
)
MAX_HOOKS_PER_SCOPE = 10
DELIVERY_TIMEOUT = 2.0  # seconds a receiver has to answer a delivery
# The two APIs of a store, as the `only` fault switch names them: BigCommerce's own
# (/stores/<hash>/v2|v3) and B2B Edition's (/api/v3/io).
BIGCOMMERCE_API = "bigcommerce"
B2B_API = "b2b"


# -- public data types -----------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxStore:
    """The settings of one fake store."""

    store_hash: str
    access_token: str  # X-Auth-Token the API accepts
    client_id: str  # the app's client id: the `iss` of Customer Login JWTs
    client_secret: str  # HS256 key of Customer Login JWTs and Current Customer JWTs
    channel_ids: tuple[int, ...] = (1,)
    name: str = "Sandbox store"
    sso_login_url: str | None = None  # where the storefront's "Sign in with SSO" link points
    email_case_sensitive: bool = False  # whether `email:in` matches case-sensitively
    # A script every storefront page loads (as a theme or Script Manager script would); when
    # set, the account page also shows a `data-sso-link` link for that script to drive.
    theme_script_url: str | None = None
    # X-Auth-Token of B2B Edition's API (/api/v3/io); None: B2B Edition is not enabled, and
    # every B2B call naming this store is 401, as for an unknown store.
    b2b_token: str | None = None
    # Whether POST /users refuses companies that are not approved (422). The documents do not
    # say; when off, an admin added to an inactive company approves it again.
    b2b_approved_companies_only: bool = True

    def public_json(self) -> JSONDict:
        """The settings without the secrets."""
        return {
            "store_hash": self.store_hash,
            "client_id": self.client_id,
            "channel_ids": list(self.channel_ids),
            "name": self.name,
            "sso_login_url": self.sso_login_url,
            "email_case_sensitive": self.email_case_sensitive,
            "theme_script_url": self.theme_script_url,
            "b2b_enabled": self.b2b_token is not None,
            "b2b_approved_companies_only": self.b2b_approved_companies_only,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One management API request the sandbox received, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None  # the JSON body with passwords redacted, or None
    time: float = 0.0

    def to_json(self) -> JSONDict:
        return dataclasses.asdict(self)


class SandboxError(ValueError):
    """Bad input to the sandbox's own Python or control API (unknown store, bad switch...)."""


class SandboxNotFound(SandboxError):
    """The store, customer or delivery named does not exist (404 on the control API)."""


# -- internal state --------------------------------------------------------------------------


class _ApiError(Exception):
    """An API answer in BigCommerce's error shape."""

    def __init__(
        self,
        status: int,
        title: str,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})


@dataclass
class _ApiResult:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _ApiRequest:
    method: str
    version: str
    rest: str
    args: MultiDict[str, str]
    body: bytes
    token: str | None
    host_url: str


@dataclass
class _RateWindow:
    """A fixed 30-second window of requests, started by the first request in it."""

    start: float | None = None
    used: int = 0

    def _roll(self, now: float) -> float:
        if self.start is None or now >= self.start + WINDOW_MS / 1000 or now < self.start:
            self.start = now
            self.used = 0
        return self.start

    def consume(self, now: float, quota: int) -> bool:
        self._roll(now)
        if self.used >= quota:
            return False
        self.used += 1
        return True

    def headers(self, now: float, quota: int) -> dict[str, str]:
        start = self._roll(now)
        reset_ms = max(0, math.ceil((start + WINDOW_MS / 1000 - now) * 1000))
        return _rate_headers(quota, max(0, quota - self.used), reset_ms)


@dataclass
class _Faults:
    latency_ms: int = 0
    status: int | None = None
    status_left: int | None = None  # None: every request
    timeout_ms: int = 0
    timeout_left: int | None = None  # None: every request
    #: Requests left to answer with a TCP reset instead of a response.
    resets_left: int = 0
    storm_until: float | None = None
    quota: int = DEFAULT_QUOTA
    credentials_quota: int = DEFAULT_CREDENTIALS_QUOTA
    clock_offset: float = 0.0
    reset_ms: int = DEFAULT_FAULT_RESET_MS
    rate_limit_headers: bool = True
    only: str | None = None  # "bigcommerce" or "b2b": the one API the faults hit; None: both
    switches: JSONDict = field(default_factory=dict)


@dataclass
class _Delivery:
    """One POST of a webhook payload to a hook's destination (a first try or a redelivery)."""

    index: int
    hook_id: int
    scope: str
    destination: str
    payload: JSONDict
    headers: dict[str, str]  # the hook's headers; not shown in the delivery log
    time: float
    redelivery_of: int | None = None
    status: int | None = None  # the receiver's HTTP status
    error: str | None = None  # why no status: connection refused, timeout...
    done: bool = False

    def to_json(self) -> JSONDict:
        return {
            "index": self.index,
            "hook_id": self.hook_id,
            "scope": self.scope,
            "destination": self.destination,
            "payload": _copy(self.payload),
            "status": self.status,
            "error": self.error,
            "done": self.done,
            "redelivery_of": self.redelivery_of,
            "time": self.time,
        }


@dataclass
class _StoreState:
    settings: SandboxStore
    customers: dict[int, JSONDict] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    next_id: int = 1
    requests: list[RecordedRequest] = field(default_factory=list)
    logins: list[JSONDict] = field(default_factory=list)
    password_logins: list[JSONDict] = field(default_factory=list)
    used_jtis: set[str] = field(default_factory=set)
    sessions: dict[str, int] = field(default_factory=dict)
    faults: _Faults = field(default_factory=_Faults)
    api_window: _RateWindow = field(default_factory=_RateWindow)
    credentials_window: _RateWindow = field(default_factory=_RateWindow)
    b2b_window: _RateWindow = field(default_factory=_RateWindow)  # B2B Edition's own quota
    b2b_book: b2b.B2BBook = field(default_factory=b2b.B2BBook)
    hooks: dict[int, JSONDict] = field(default_factory=dict)
    next_hook_id: int = 1
    deliveries: list[_Delivery] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)  # deliveries to start once the lock is free


@dataclass(frozen=True)
class _LoginOutcome:
    location: str
    session_id: str | None


class _LoginRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the state object ------------------------------------------------------------------------


class SandboxState:
    """Every fake store's data, logs and switches. Thread-safe: one lock guards it all.

    Webhook deliveries are decided under the lock (so the delivery log is complete as soon as
    the change is made) and sent by background threads once it is released.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a delivery finished
        self._stores: dict[str, _StoreState] = {}

    # public Python API (tests and `broker demo`) ---------------------------------------------

    def add_store(self, store: SandboxStore) -> None:
        _check_store(store)
        with self._lock:
            if store.store_hash in self._stores:
                raise SandboxError(f"store {store.store_hash!r} already exists")
            book = b2b.B2BBook(approved_companies_only=store.b2b_approved_companies_only)
            self._stores[store.store_hash] = _StoreState(settings=store, b2b_book=book)

    def store(self, store_hash: str) -> SandboxStore:
        with self._lock:
            return self._get(store_hash).settings

    def customers(self, store_hash: str) -> list[JSONDict]:
        with self._lock:
            st = self._get(store_hash)
            return [_copy(c) for _, c in sorted(st.customers.items())]

    def add_customer(self, store_hash: str, **fields: Any) -> JSONDict:
        """Seed one customer; ``password=`` sets the password validate-credentials checks."""
        item = dict(fields)
        password = item.pop("password", None)
        if password is not None:
            item["authentication"] = {"new_password": password}
        item.setdefault("first_name", "Sandbox")
        item.setdefault("last_name", "Customer")
        with self._lock:
            st = self._get(store_hash)
            try:
                created = _create_customers(st, [item], self._clock())
            except _ApiError as exc:
                raise SandboxError(f"{exc.title}: {exc.errors}") from None
            return _copy(created[0])

    def delete_customer(self, store_hash: str, customer_id: int) -> None:
        """Delete one customer as a merchant would in the control panel: hooks are notified.

        (Seeding with :meth:`add_customer` notifies no hook: it sets up the world.)
        """
        with self._lock:
            st = self._get(store_hash)
            if not _is_int(customer_id) or customer_id not in st.customers:
                raise SandboxNotFound(f"no customer {customer_id!r} in store {store_hash!r}")
            _remove_customers(st, [customer_id], self._clock())
        self._start_deliveries(store_hash)

    def requests(self, store_hash: str) -> list[RecordedRequest]:
        with self._lock:
            return list(self._get(store_hash).requests)

    def clear_requests(self, store_hash: str) -> None:
        with self._lock:
            self._get(store_hash).requests.clear()

    def logins(self, store_hash: str) -> list[JSONDict]:
        """Every ``/login/token/<jwt>`` attempt: ok, reason, customer_id, claims, time."""
        with self._lock:
            return [_copy(entry) for entry in self._get(store_hash).logins]

    def password_logins(self, store_hash: str) -> list[JSONDict]:
        """Every storefront password sign-in: method ("password"), ok, reason, email,
        customer_id, channel_id, time (never the password)."""
        with self._lock:
            return [_copy(entry) for entry in self._get(store_hash).password_logins]

    def hooks(self, store_hash: str) -> list[JSONDict]:
        """The store's webhooks, as ``GET /v3/hooks`` shows them."""
        with self._lock:
            return [_copy(hook) for _, hook in sorted(self._get(store_hash).hooks.items())]

    def deliveries(self, store_hash: str) -> list[JSONDict]:
        """Every webhook delivery so far, oldest first: index, hook_id, scope, destination,
        payload, status (the receiver's answer) or error, done, redelivery_of, time."""
        with self._lock:
            return [d.to_json() for d in self._get(store_hash).deliveries]

    def redeliver(self, store_hash: str, index: int) -> int:
        """POST delivery ``index``'s exact payload again (same ``hash``), as BigCommerce's
        retries do; the index of the new delivery."""
        with self._lock:
            st = self._get(store_hash)
            if not _is_int(index) or not 0 <= index < len(st.deliveries):
                raise SandboxNotFound(f"no delivery {index!r} in store {store_hash!r}")
            original = st.deliveries[index]
            again = _Delivery(
                index=len(st.deliveries),
                hook_id=original.hook_id,
                scope=original.scope,
                destination=original.destination,
                payload=original.payload,
                headers=dict(original.headers),
                time=self._clock(),
                redelivery_of=index,
            )
            st.deliveries.append(again)
            st.outbox.append(again.index)
        self._start_deliveries(store_hash)
        return again.index

    def wait_for_deliveries(
        self, store_hash: str, count: int, timeout: float = 5.0
    ) -> list[JSONDict]:
        """Every delivery, once there are at least ``count`` and all of them have finished.

        Raises TimeoutError after ``timeout`` seconds. A delivery takes at most
        DELIVERY_TIMEOUT seconds, so a dead receiver only slows this down.
        """
        with self._changed:
            st = self._get(store_hash)

            def finished() -> bool:
                return len(st.deliveries) >= count and all(d.done for d in st.deliveries)

            if not self._changed.wait_for(finished, timeout):
                seen = [(d.index, d.scope, d.done) for d in st.deliveries]
                raise TimeoutError(
                    f"waited {timeout}s for {count} finished deliveries; have {seen}"
                )
            return [d.to_json() for d in st.deliveries]

    # B2B Edition (seeding and reading; the API itself is handle_b2b) ---------------------------

    def add_company(
        self,
        store_hash: str,
        name: str,
        status: str | int = "approved",
        *,
        email: str = "",
        phone: str = "",
        bc_group_id: int = 0,
    ) -> JSONDict:
        """Seed a B2B company; ``status`` is "approved", "pending", "rejected", "inactive" (or
        its code 0-3). The answer is the company as ``GET /companies/<id>`` shows it."""
        with self._lock:
            st = self._get(store_hash)
            with _as_sandbox_error():
                return b2b.add_company(
                    st.b2b_book,
                    name,
                    status,
                    self._clock(),
                    email=email,
                    phone=phone,
                    bc_group_id=bc_group_id,
                )

    def set_company_status(self, store_hash: str, company_id: int, status: str | int) -> JSONDict:
        """Change a company's status, as a merchant can in the control panel."""
        with self._lock:
            st = self._get(store_hash)
            with _as_sandbox_error():
                return b2b.set_company_status(st.b2b_book, company_id, status, self._clock())

    def add_company_user(
        self, store_hash: str, customer_id: int, company_id: int, role: int
    ) -> JSONDict:
        """Seed: make an existing customer a user of a company (role 0 admin, 1 senior buyer,
        2 junior buyer), whatever the company's status. The customer is left as it is (its
        customer group too) and no hook is notified."""
        with self._lock:
            st = self._get(store_hash)
            now = self._clock()
            with _as_sandbox_error():
                return b2b.add_company_user(
                    st.b2b_book, _Directory(st, now), customer_id, company_id, role, now
                )

    def companies(self, store_hash: str) -> list[JSONDict]:
        """The store's B2B companies, oldest first."""
        with self._lock:
            return b2b.companies(self._get(store_hash).b2b_book)

    def b2b_users(self, store_hash: str) -> list[JSONDict]:
        """The store's B2B company users, oldest first, as ``GET /users`` shows them."""
        with self._lock:
            return b2b.users(self._get(store_hash).b2b_book)

    def company_user(self, store_hash: str, customer_id: int) -> JSONDict | None:
        """The company user of a customer, with its company's name, or None."""
        with self._lock:
            book = self._get(store_hash).b2b_book
            user = b2b.user_of_customer(book, customer_id)
            if user is None:
                return None
            company = book.companies.get(user["companyId"], {})
            return {**user, "companyName": company.get("companyName", "")}

    def set_faults(self, store_hash: str, **switches: Any) -> None:
        """Replace the store's fault switches (no switch: clear them); rate windows restart."""
        with self._lock:
            st = self._get(store_hash)
            st.faults = _parse_faults(switches, self._clock())
            st.api_window = _RateWindow()
            st.credentials_window = _RateWindow()
            st.b2b_window = _RateWindow()

    def faults(self, store_hash: str) -> JSONDict:
        with self._lock:
            return _copy(self._get(store_hash).faults.switches)

    # the app's side ----------------------------------------------------------------------

    def has_store(self, store_hash: str) -> bool:
        with self._lock:
            return store_hash in self._stores

    def take_reset(self, store_hash: str, api: str = BIGCOMMERCE_API) -> bool:
        """Whether to drop the next request to ``api`` with a TCP reset (the ``resets``
        switch: that many requests, before the store acts on them)."""
        with self._lock:
            st = self._stores.get(store_hash)
            if st is None or st.faults.resets_left <= 0 or st.faults.only not in (None, api):
                return False
            st.faults.resets_left -= 1
            return True

    def api_delay(self, store_hash: str, api: str = BIGCOMMERCE_API) -> tuple[float, float]:
        """Seconds to sleep before and after handling the next request to ``api``."""
        with self._lock:
            st = self._stores.get(store_hash)
            before, after = (0, 0) if st is None else _take_delay(st.faults, api)
            return before / 1000, after / 1000

    def handle_api(self, store_hash: str, req: _ApiRequest) -> _ApiResult:
        with self._lock:
            st = self._stores.get(store_hash)
            if st is None:
                return _error_result(_ApiError(404, "Store not found"))
            now = self._clock()
            result = _api_result(st, req, now)
            _record(st, req.method, f"/{req.version}/{req.rest}", req.args, req.body, result, now)
        self._start_deliveries(store_hash)
        return result

    def handle_b2b(
        self, store_hash: str | None, token: str | None, req: b2b.B2BRequest
    ) -> _ApiResult:
        """One B2B Edition request: the store named by X-Store-Hash, its token checked."""
        with self._lock:
            st = self._stores.get(store_hash or "")
            if store_hash is None or st is None:
                return _b2b_error(_ApiError(401, b2b.UNAUTHORIZED))
            now = self._clock()
            result = _b2b_result(st, token, req, now)
            _record(st, req.method, f"{b2b.BASE_PATH}/{req.path}", req.args, req.body, result, now)
        self._start_deliveries(store_hash)
        return result

    def attempt_login(
        self, store_hash: str, token: str, remote_addr: str | None, old_session: str | None
    ) -> _LoginOutcome:
        with self._lock:
            st = self._get(store_hash)
            now = self._clock() + st.faults.clock_offset
            return _attempt_login(st, token, remote_addr, old_session, now)

    def password_login(
        self, store_hash: str, email: str, password: str, old_session: str | None
    ) -> _LoginOutcome:
        """The storefront's password form: the check validate-credentials makes, on the
        storefront's channel; a new session when it passes."""
        with self._lock:
            st = self._get(store_hash)
            return _password_login(st, email, password, old_session, self._clock())

    def session_customer(self, store_hash: str, session_id: str | None) -> JSONDict | None:
        with self._lock:
            st = self._get(store_hash)
            customer_id = st.sessions.get(session_id or "")
            customer = st.customers.get(customer_id) if customer_id is not None else None
            return _copy(customer) if customer is not None else None

    def end_session(self, store_hash: str, session_id: str | None) -> None:
        with self._lock:
            self._get(store_hash).sessions.pop(session_id or "", None)

    def current_customer_jwt(self, store_hash: str, session_id: str | None) -> str | None:
        """The Current Customer JWT of the signed-in customer, None for a guest."""
        with self._lock:
            st = self._get(store_hash)
            customer_id = st.sessions.get(session_id or "")
            customer = st.customers.get(customer_id) if customer_id is not None else None
            if customer is None:
                return None
            now = int(self._clock() + st.faults.clock_offset)
            return _current_customer_jwt(st.settings, customer, now)

    def _get(self, store_hash: str) -> _StoreState:
        st = self._stores.get(store_hash)
        if st is None:
            raise SandboxNotFound(f"no sandbox store {store_hash!r}")
        return st

    # webhook deliveries -----------------------------------------------------------------------

    def _start_deliveries(self, store_hash: str) -> None:
        """Send what the outbox holds, each from its own thread (the caller never waits).

        Like BigCommerce, the sandbox promises no order between deliveries.
        """
        with self._lock:
            st = self._stores.get(store_hash)
            if st is None or not st.outbox:
                return
            pending, st.outbox = st.outbox, []
        for index in pending:
            threading.Thread(
                target=self._deliver,
                args=(store_hash, index),
                name=f"sandbox-webhook-{store_hash}-{index}",
                daemon=True,
            ).start()

    def _deliver(self, store_hash: str, index: int) -> None:
        with self._lock:
            delivery = self._stores[store_hash].deliveries[index]
            destination = delivery.destination
            headers = httpx.Headers({"Content-Type": "application/json"})
            headers.update(delivery.headers)
            body = json.dumps(delivery.payload).encode()
        status: int | None = None
        error: str | None = None
        try:
            response = httpx.post(
                destination,
                content=body,
                headers=headers,
                timeout=DELIVERY_TIMEOUT,
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment between us and 127.0.0.1
            )
            status = response.status_code
        except Exception as exc:  # any failure is the delivery's outcome, never a crash
            error = f"{type(exc).__name__}: {exc}"
        with self._changed:
            delivery.status, delivery.error, delivery.done = status, error, True
            self._changed.notify_all()


@contextmanager
def _as_sandbox_error() -> Iterator[None]:
    """B2B seeding errors as the sandbox's own: LookupError is SandboxNotFound."""
    try:
        yield
    except LookupError as exc:
        raise SandboxNotFound(str(exc).strip("'")) from None
    except ValueError as exc:
        raise SandboxError(str(exc)) from None


# -- store settings and fault switches ---------------------------------------------------------


def _check_store(store: SandboxStore) -> None:
    if not isinstance(store.store_hash, str) or not _STORE_HASH.match(store.store_hash):
        raise SandboxError("store_hash must be 1-64 letters, digits, '-' or '_'")
    for name in ("access_token", "client_id", "client_secret"):
        if not isinstance(getattr(store, name), str) or not getattr(store, name):
            raise SandboxError(f"{name} must be a non-empty string")
    if not store.channel_ids or not all(_is_int(c) and c > 0 for c in store.channel_ids):
        raise SandboxError("channel_ids must be a non-empty list of positive integers")
    if not isinstance(store.name, str):
        raise SandboxError("name must be a string")
    if store.sso_login_url is not None and not isinstance(store.sso_login_url, str):
        raise SandboxError("sso_login_url must be a string or null")
    if not isinstance(store.email_case_sensitive, bool):
        raise SandboxError("email_case_sensitive must be a boolean")
    if store.theme_script_url is not None and not _is_script_url(store.theme_script_url):
        raise SandboxError("theme_script_url must be an http(s) URL, a /path or null")
    if store.b2b_token is not None and (
        not isinstance(store.b2b_token, str) or not store.b2b_token
    ):
        raise SandboxError("b2b_token must be a non-empty string or null")
    if not isinstance(store.b2b_approved_companies_only, bool):
        raise SandboxError("b2b_approved_companies_only must be a boolean")


def _is_script_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return not parts.scheme and url.startswith("/") and not url.startswith("//")


def _store_from_json(body: Any) -> SandboxStore:
    if not isinstance(body, dict):
        raise SandboxError("the body must be a JSON object")
    known = {f.name for f in dataclasses.fields(SandboxStore)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise SandboxError(f"unknown fields: {', '.join(unknown)}")
    values = dict(body)
    if "channel_ids" in values:
        channels = values["channel_ids"]
        if not isinstance(channels, list):
            raise SandboxError("channel_ids must be a list")
        values["channel_ids"] = tuple(channels)
    try:
        return SandboxStore(**values)
    except TypeError as exc:
        raise SandboxError(str(exc)) from None


_INT_SWITCHES: dict[str, int] = {
    "latency_ms": 0,
    "status": 400,
    "count": 0,
    "rate_limit_for_ms": 0,
    "timeout_ms": 0,
    "quota": 1,
    "credentials_quota": 1,
    "reset_ms": 0,
    "resets": 0,
}
FAULT_SWITCHES = frozenset({*_INT_SWITCHES, "clock_offset", "rate_limit_headers", "only"})


def _parse_faults(switches: Mapping[str, Any], now: float) -> _Faults:
    unknown = sorted(set(switches) - FAULT_SWITCHES)
    if unknown:
        raise SandboxError(f"unknown fault switches: {', '.join(unknown)}")
    for name, minimum in _INT_SWITCHES.items():
        value = switches.get(name)
        if value is not None and (not _is_int(value) or value < minimum):
            raise SandboxError(f"{name} must be an integer >= {minimum}")
    status = switches.get("status")
    if status is not None and status > 599:
        raise SandboxError("status must be an HTTP error status (400-599)")
    offset = switches.get("clock_offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        raise SandboxError("clock_offset must be a number of seconds")
    headers = switches.get("rate_limit_headers", True)
    if not isinstance(headers, bool):
        raise SandboxError("rate_limit_headers must be a boolean")
    only = switches.get("only")
    if only not in (None, BIGCOMMERCE_API, B2B_API):
        raise SandboxError(f"only must be {BIGCOMMERCE_API!r}, {B2B_API!r} or null (both APIs)")
    count = switches.get("count")
    storm_ms = switches.get("rate_limit_for_ms")
    return _Faults(
        latency_ms=switches.get("latency_ms") or 0,
        status=status,
        status_left=count,
        timeout_ms=switches.get("timeout_ms") or 0,
        timeout_left=count,
        resets_left=switches.get("resets") or 0,
        storm_until=now + storm_ms / 1000 if storm_ms else None,
        quota=switches.get("quota") or DEFAULT_QUOTA,
        credentials_quota=switches.get("credentials_quota") or DEFAULT_CREDENTIALS_QUOTA,
        clock_offset=float(offset),
        reset_ms=switches.get("reset_ms", DEFAULT_FAULT_RESET_MS),
        rate_limit_headers=headers,
        only=only,
        switches=dict(switches),
    )


def _record(
    st: _StoreState,
    method: str,
    path: str,
    args: MultiDict[str, str],
    body: bytes,
    result: _ApiResult,
    now: float,
) -> None:
    """Log one API request (main API or B2B) in the store's request log."""
    st.requests.append(
        RecordedRequest(
            method=method,
            path=path,
            query=args.to_dict(),
            status=result.status,
            body=_recorded_body(body),
            time=now,
        )
    )


def _reset_connection() -> Response:
    """Close the client's connection with a TCP RST, sending no answer at all."""
    connection = request.environ.get("werkzeug.socket")
    if connection is not None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    return Response(status=500)  # never reaches the client


def _take_delay(faults: _Faults, api: str) -> tuple[int, int]:
    """Milliseconds to wait before handling and after handling (counted timeouts count down).

    Latency comes before the store acts; a timeout comes after it, so a client that gives up
    does not know whether its request took effect: the case a create must survive.
    """
    if faults.only not in (None, api):
        return 0, 0
    timeout = 0
    if faults.timeout_ms and (faults.timeout_left is None or faults.timeout_left > 0):
        timeout = faults.timeout_ms
        if faults.timeout_left is not None:
            faults.timeout_left -= 1
    return faults.latency_ms, timeout


def _forced_error(st: _StoreState, now: float, api: str) -> _ApiError | None:
    """The error a 429 storm or a status switch imposes on this request to ``api``, if any."""
    faults = st.faults
    if faults.only not in (None, api):
        return None
    if faults.storm_until is not None and now < faults.storm_until:
        reset_ms = max(1, math.ceil((faults.storm_until - now) * 1000))
        return _ApiError(429, "Too many requests", headers=_rate_headers(faults.quota, 0, reset_ms))
    if faults.status is None or faults.status_left == 0:
        return None
    if faults.status_left is not None:
        faults.status_left -= 1
    headers: dict[str, str] = {}
    if faults.rate_limit_headers:
        if faults.status == 429:
            headers = _rate_headers(faults.quota, 0, faults.reset_ms)
        else:
            window = st.b2b_window if api == B2B_API else st.api_window
            headers = window.headers(now, faults.quota)
    return _ApiError(faults.status, _phrase(faults.status), headers=headers)


# -- B2B Edition's API ---------------------------------------------------------------------------


def _b2b_result(st: _StoreState, token: str | None, req: b2b.B2BRequest, now: float) -> _ApiResult:
    """Faults, then the token, then B2B Edition's own rate window, then the request itself."""
    window, quota = st.b2b_window, st.faults.quota
    forced = _forced_error(st, now, B2B_API)
    if forced is not None:
        return _b2b_error(forced)
    expected = st.settings.b2b_token
    if (
        expected is None
        or token is None
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        return _b2b_error(_ApiError(401, b2b.UNAUTHORIZED), window.headers(now, quota))
    if not window.consume(now, quota):
        return _b2b_error(_ApiError(429, "Too many requests"), window.headers(now, quota))
    status, body = b2b.handle(st.b2b_book, _Directory(st, now), req, now)
    return _ApiResult(status, body, window.headers(now, quota))


def _b2b_error(error: _ApiError, headers: Mapping[str, str] | None = None) -> _ApiResult:
    body = b2b.error_envelope(error.status, error.title)
    return _ApiResult(error.status, body, {**(headers or {}), **error.headers})


class _Directory:
    """One store's customers as B2B Edition reaches them (a b2b.CustomerDirectory).

    Customers it creates or changes notify the store's hooks, as BigCommerce's do.
    """

    def __init__(self, st: _StoreState, now: float) -> None:
        self._st = st
        self._now = now

    @property
    def channel_ids(self) -> tuple[int, ...]:
        return self._st.settings.channel_ids

    @property
    def default_channel(self) -> int:
        return _default_channel(self._st.settings)

    def channel_name(self, channel_id: int) -> str:
        name = self._st.settings.name
        return name if channel_id == self.default_channel else f"{name} (channel {channel_id})"

    def customer(self, customer_id: int) -> JSONDict | None:
        found = self._st.customers.get(customer_id)
        return _copy(found) if found is not None else None

    def find_customer(self, email: str, channel_ids: list[int]) -> JSONDict | None:
        wanted = email.lower()
        for _, customer in sorted(self._st.customers.items()):
            if customer["email"].lower() == wanted and _channels_overlap(
                customer["channel_ids"], channel_ids
            ):
                return _copy(customer)
        return None

    def create_customer(self, values: JSONDict) -> JSONDict:
        try:
            created = _create_customers(self._st, [values], self._now)[0]
        except _ApiError as exc:
            raise b2b.DirectoryRefused(_refusal(exc)) from None
        data = _customer_event_data(self._st, created)
        _raise_event(self._st, "store/customer/created", data, self._now)
        return _copy(created)

    def update_customer(self, customer_id: int, values: JSONDict) -> JSONDict:
        try:
            updated = _update_customers(self._st, [{**values, "id": customer_id}], self._now)[0]
        except _ApiError as exc:
            raise b2b.DirectoryRefused(_refusal(exc)) from None
        data = _customer_event_data(self._st, updated)
        _raise_event(self._st, "store/customer/updated", data, self._now)
        return _copy(updated)


def _refusal(error: _ApiError) -> str:
    details = "; ".join(f"{k.split('.')[-1]}: {v}" for k, v in error.errors.items())
    return f"{error.title} ({details})" if details else error.title


# -- the management API ------------------------------------------------------------------------


def _api_result(st: _StoreState, req: _ApiRequest, now: float) -> _ApiResult:
    forced = _forced_error(st, now, BIGCOMMERCE_API)
    if forced is not None:
        return _error_result(forced)
    quota = st.faults.quota
    if req.token is None or not hmac.compare_digest(
        req.token.encode(), st.settings.access_token.encode()
    ):
        error = _ApiError(401, "Unauthorized: missing or invalid X-Auth-Token")
        return _error_result(error, st.api_window.headers(now, quota))
    if not st.api_window.consume(now, quota):
        return _error_result(_ApiError(429, "Too many requests"), st.api_window.headers(now, quota))
    try:
        status, body = _dispatch(st, req, now)
        result = _ApiResult(status, body)
    except _ApiError as exc:
        result = _error_result(exc)
    result.headers = {**st.api_window.headers(now, quota), **result.headers}
    return result


_Handler = Callable[[_StoreState, _ApiRequest, float], tuple[int, Any]]
_CHANNEL_SETTINGS = re.compile(r"^customers/settings/channels/(\d+)$")
_HOOK = re.compile(r"^hooks/([^/]+)$")


def _dispatch(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    handlers = _handlers_for(req.version, req.rest)
    if handlers is None:
        raise _ApiError(404, "The route is not found, check the URL")
    handler = handlers.get(req.method)
    if handler is None:
        raise _ApiError(405, "Method not allowed")
    return handler(st, req, now)


def _handlers_for(version: str, rest: str) -> dict[str, _Handler] | None:
    if version == "v2":
        return {"GET": _get_time} if rest == "time" else None
    if rest == "hooks":
        return {"GET": _list_hooks, "POST": _post_hook}
    if _HOOK.match(rest):
        return {"GET": _get_hook, "PUT": _put_hook, "DELETE": _delete_hook}
    if rest == "customers":
        return {
            "GET": _list_customers,
            "POST": _post_customers,
            "PUT": _put_customers,
            "DELETE": _delete_customers,
        }
    if rest == "customers/validate-credentials":
        return {"POST": _validate_credentials}
    if rest == "sites":
        return {"GET": _list_sites}
    if _CHANNEL_SETTINGS.match(rest):
        return {"GET": _channel_settings}
    return None


def _get_time(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    return 200, {"time": int(now + st.faults.clock_offset)}


_LIST_FILTERS = frozenset({"id:in", "email:in", "name:in", "name:like", "customer_group_id:in"})
_LIST_PARAMS = _LIST_FILTERS | {"page", "limit"}


def _list_customers(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    _reject_unknown_params(req.args, _LIST_PARAMS)
    page = _int_param(req.args, "page", 1, 1, None)
    limit = _int_param(req.args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    matches = [
        c
        for _, c in sorted(st.customers.items())
        if _matches_filters(c, req.args, st.settings.email_case_sensitive)
    ]
    total = len(matches)
    total_pages = math.ceil(total / limit)
    data = [_copy(c) for c in matches[(page - 1) * limit : page * limit]]
    pagination = {
        "total": total,
        "count": len(data),
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": _page_links(req.args, page, limit, total_pages),
    }
    return 200, {"data": data, "meta": {"pagination": pagination}}


def _matches_filters(customer: JSONDict, args: MultiDict[str, str], case_sensitive: bool) -> bool:
    if "id:in" in args and customer["id"] not in _int_list(args, "id:in"):
        return False
    if "customer_group_id:in" in args and customer["customer_group_id"] not in _int_list(
        args, "customer_group_id:in"
    ):
        return False
    if "email:in" in args:
        emails = _str_list(args, "email:in")
        if case_sensitive:
            if customer["email"] not in emails:
                return False
        elif customer["email"].lower() not in {e.lower() for e in emails}:
            return False
    full_name = f"{customer['first_name']} {customer['last_name']}".lower()
    if "name:in" in args and full_name not in {n.lower() for n in _str_list(args, "name:in")}:
        return False
    like = args.get("name:like")
    return like is None or like.lower() in full_name


def _page_links(args: MultiDict[str, str], page: int, limit: int, pages: int) -> JSONDict:
    kept = [(k, v) for k, v in args.items(multi=True) if k not in ("page", "limit")]

    def link(number: int) -> str:
        return "?" + urlencode([*kept, ("page", str(number)), ("limit", str(limit))])

    links: JSONDict = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < pages:
        links["next"] = link(page + 1)
    return links


def _post_customers(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    items = _batch_body(req.body)
    created = _create_customers(st, items, now)
    for customer in created:  # a batch fires one event per customer, as bulk imports do
        _raise_event(st, "store/customer/created", _customer_event_data(st, customer), now)
    return 200, {"data": [_copy(c) for c in created], "meta": {}}


def _put_customers(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    items = _batch_body(req.body)
    updated = _update_customers(st, items, now)
    for customer in updated:
        _raise_event(st, "store/customer/updated", _customer_event_data(st, customer), now)
    return 200, {"data": [_copy(c) for c in updated], "meta": {}}


def _delete_customers(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    _reject_unknown_params(req.args, frozenset({"id:in"}))
    if "id:in" in req.args:
        _remove_customers(st, _int_list(req.args, "id:in"), now)
    return 204, None


def _remove_customers(st: _StoreState, ids: Iterable[int], now: float) -> None:
    """Delete the customers that exist, end their sessions and notify the hooks."""
    removed = [i for i in dict.fromkeys(ids) if st.customers.pop(i, None) is not None]
    for customer_id in removed:
        st.passwords.pop(customer_id, None)
        _raise_event(st, "store/customer/deleted", {"type": "customer", "id": customer_id}, now)
    st.sessions = {sid: cid for sid, cid in st.sessions.items() if cid not in removed}
    b2b.customers_removed(st.b2b_book, removed, now)


def _validate_credentials(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    quota = st.faults.credentials_quota
    if not st.credentials_window.consume(now, quota):
        headers = st.credentials_window.headers(now, quota)
        raise _ApiError(429, "Too many credential validation requests", headers=headers)
    body = _json_body(req.body)
    if not isinstance(body, dict):
        raise _ApiError(422, "The body must be a JSON object")
    errors = {
        name: f"{name} is required and must be a string"
        for name in ("email", "password")
        if not isinstance(body.get(name), str) or not body.get(name)
    }
    channel_id = body.get("channel_id", 1)
    if not _is_int(channel_id):
        errors["channel_id"] = "channel_id must be an integer"
    if errors:
        raise _ApiError(422, "Input is invalid", errors)
    customer_id = _check_credentials(st, str(body["email"]), str(body["password"]), channel_id)
    return 200, {"is_valid": customer_id is not None, "customer_id": customer_id}


def _check_credentials(st: _StoreState, email: str, password: str, channel_id: int) -> int | None:
    """The customer with this e-mail (any case) and password who may use this channel."""
    wanted = email.lower()
    for customer_id, customer in sorted(st.customers.items()):
        if customer["email"].lower() != wanted or not _allows_channel(customer, channel_id):
            continue
        hashed = st.passwords.get(customer_id)
        if hashed is not None and check_password_hash(hashed, password):
            return customer_id
    return None


def _list_sites(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    _reject_unknown_params(req.args, frozenset({"channel_id:in", "page", "limit"}))
    wanted = _int_list(req.args, "channel_id:in") if "channel_id:in" in req.args else None
    url = f"{req.host_url.rstrip('/')}/s/{st.settings.store_hash}"
    data = [
        {
            "id": 1000 + channel,
            "url": url,
            "channel_id": channel,
            "ssl_status": "dedicated",
            "is_checkout_url_customized": False,
            "urls": [{"url": url, "type": kind} for kind in ("primary", "canonical", "checkout")],
        }
        for channel in st.settings.channel_ids
        if wanted is None or channel in wanted
    ]
    pagination = {
        "total": len(data),
        "count": len(data),
        "per_page": DEFAULT_LIMIT,
        "current_page": 1,
        "total_pages": 1,
        "links": {"current": "?page=1&limit=50"},
    }
    return 200, {"data": data, "meta": {"pagination": pagination}}


def _channel_settings(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    match = _CHANNEL_SETTINGS.match(req.rest)
    if match is None or int(match.group(1)) not in st.settings.channel_ids:
        raise _ApiError(404, "Channel not found")
    data = {
        "privacy_settings": {"ask_shopper_for_tracking_consent": False, "policy_url": ""},
        "customer_group_settings": {"guest_customer_group_id": 0, "default_customer_group_id": 0},
        "allow_global_logins": True,
    }
    return 200, {"data": data, "meta": {}}


# -- webhooks ----------------------------------------------------------------------------------

_HOOK_FIELDS = frozenset({"scope", "destination", "is_active", "headers", "events_history_enabled"})
_HOOK_LIST_PARAMS = frozenset({"page", "limit", "is_active", "scope", "destination"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_INVALID_HOOK = "JSON data is missing or invalid"


def _list_hooks(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    # BigCommerce lists the hooks of the token's client_id; a sandbox store has one token.
    _reject_unknown_params(req.args, _HOOK_LIST_PARAMS)
    page = _int_param(req.args, "page", 1, 1, None)
    limit = _int_param(req.args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    active = req.args.get("is_active")
    if active not in (None, "true", "false"):
        raise _ApiError(422, "The filter(s) are not valid", {"is_active": "true or false"})
    matches = [
        hook
        for _, hook in sorted(st.hooks.items())
        if (active is None or hook["is_active"] == (active == "true"))
        and req.args.get("scope", hook["scope"]) == hook["scope"]
        and req.args.get("destination", hook["destination"]) == hook["destination"]
    ]
    total_pages = math.ceil(len(matches) / limit)
    data = [_copy(h) for h in matches[(page - 1) * limit : page * limit]]
    pagination = {
        "total": len(matches),
        "count": len(data),
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": _page_links(req.args, page, limit, total_pages),
    }
    return 200, {"data": data, "meta": {"pagination": pagination}}


def _post_hook(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    values = _clean_hook(_json_body(req.body), creating=True)
    stamp = int(now)
    hook: JSONDict = {
        "id": st.next_hook_id,
        "client_id": st.settings.client_id,
        "store_hash": st.settings.store_hash,
        "scope": values["scope"],
        "destination": values["destination"],
        "headers": values.get("headers"),
        # Unconfirmed whether an omitted is_active means true; the Admin API's hook list
        # documents a default of true.
        "is_active": values.get("is_active", True),
        "created_at": stamp,
        "updated_at": stamp,
    }
    _check_hook_limits(st, hook)
    st.hooks[hook["id"]] = hook
    st.next_hook_id += 1
    return 200, {"data": _copy(hook), "meta": {}}


def _get_hook(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    return 200, {"data": _copy(st.hooks[_hook_id(st, req)]), "meta": {}}


def _put_hook(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    hook_id = _hook_id(st, req)
    values = _clean_hook(_json_body(req.body), creating=False)
    hook = {**st.hooks[hook_id], **values, "updated_at": int(now)}
    _check_hook_limits(st, hook)
    st.hooks[hook_id] = hook
    return 200, {"data": _copy(hook), "meta": {}}


def _delete_hook(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    # BigCommerce answers 200 with the webhook it deleted.
    return 200, {"data": st.hooks.pop(_hook_id(st, req)), "meta": {}}


def _hook_id(st: _StoreState, req: _ApiRequest) -> int:
    match = _HOOK.match(req.rest)
    raw = match.group(1) if match else ""
    if not raw.isdigit() or int(raw) not in st.hooks:
        raise _ApiError(404, f"Webhook with id [{raw}] not found")
    return int(raw)


def _clean_hook(body: Any, *, creating: bool) -> JSONDict:
    """The checked fields of a create (scope and destination required) or an update."""
    if not isinstance(body, dict):
        raise _ApiError(422, _INVALID_HOOK, {"body": "must be a JSON object"})
    errors: JSONDict = {name: "unknown field" for name in sorted(set(body) - _HOOK_FIELDS)}
    values: JSONDict = {}
    if creating or "scope" in body:
        scope = body.get("scope")
        if not isinstance(scope, str) or not scope:
            errors["scope"] = "error.path.missing"
        elif scope not in HOOK_SCOPES:
            errors["scope"] = f"the sandbox fires only {', '.join(sorted(HOOK_SCOPES))}"
        else:
            values["scope"] = scope
    if creating or "destination" in body:
        problem = _destination_problem(body.get("destination"))
        if problem:
            errors["destination"] = problem
        else:
            values["destination"] = body["destination"]
    for name in ("is_active", "events_history_enabled"):  # the latter is deprecated: ignored
        if name in body and not isinstance(body[name], bool):
            errors[name] = f"{name} must be a boolean"
    if isinstance(body.get("is_active"), bool):
        values["is_active"] = body["is_active"]
    if "headers" in body:
        headers = body["headers"]
        if headers is not None and not (
            isinstance(headers, dict)
            and all(
                isinstance(k, str)
                and _HEADER_NAME.match(k)
                and isinstance(v, str)
                and not set(v) & {"\r", "\n", "\0"}
                for k, v in headers.items()
            )
        ):
            errors["headers"] = "headers must be null or an object of header names to strings"
        else:
            values["headers"] = dict(headers) if headers is not None else None
    if errors:
        raise _ApiError(422, _INVALID_HOOK, errors)
    return values


def _destination_problem(destination: Any) -> str | None:
    if not isinstance(destination, str) or not destination:
        return "error.path.missing"
    parts = urlsplit(destination)
    try:
        port = parts.port
    except ValueError:
        return "destination must be a URL"
    if parts.scheme == "https" and parts.hostname and port in (None, 443):
        return None
    # Not BigCommerce: it demands https on port 443. The sandbox also accepts plain http to a
    # receiver on this machine (any port), so that tests and `broker demo` can receive hooks.
    if parts.scheme == "http" and parts.hostname == "127.0.0.1":
        return None
    return "destination must be an https URL on port 443 (the sandbox also takes http://127.0.0.1)"


def _check_hook_limits(st: _StoreState, hook: JSONDict) -> None:
    """BigCommerce's platform limits: one hook per scope and destination, ten per scope."""
    others = [h for h in st.hooks.values() if h["id"] != hook["id"]]
    if any(h["scope"] == hook["scope"] and h["destination"] == hook["destination"] for h in others):
        errors = {"destination": "a webhook with this scope and destination already exists"}
        raise _ApiError(422, _INVALID_HOOK, errors)
    if sum(h["scope"] == hook["scope"] for h in others) >= MAX_HOOKS_PER_SCOPE:
        errors = {"scope": f"at most {MAX_HOOKS_PER_SCOPE} webhooks per scope"}
        raise _ApiError(422, _INVALID_HOOK, errors)


def _customer_event_data(st: _StoreState, customer: JSONDict) -> JSONDict:
    # Unconfirmed what `channel_ids` says for a global customer (channel_ids null); the
    # sandbox lists every channel of the store, the channels such a customer can use.
    channels = customer["channel_ids"] or list(st.settings.channel_ids)
    return {"type": "customer", "id": customer["id"], "channel_ids": list(channels)}


def _raise_event(st: _StoreState, scope: str, data: JSONDict, now: float) -> None:
    """Queue one delivery of this event to every active hook whose scope covers it."""
    store_hash = st.settings.store_hash
    payload: JSONDict = {
        "scope": scope,
        "store_id": _store_id(store_hash),
        "data": data,
        "hash": "",
        "created_at": int(now),
        "producer": f"stores/{store_hash}",
    }
    # BigCommerce: a SHA-1 of the JSON-encoded payload. A nonce makes two events alike in
    # every field (the same customer updated twice in a second) still differ, as they do there.
    seed = json.dumps({**payload, "nonce": secrets.token_hex(16)}, sort_keys=True)
    payload["hash"] = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
    for hook_id, hook in sorted(st.hooks.items()):
        if not hook["is_active"] or not _scope_covers(hook["scope"], scope):
            continue
        delivery = _Delivery(
            index=len(st.deliveries),
            hook_id=hook_id,
            scope=scope,
            destination=hook["destination"],
            payload=_copy(payload),
            headers=dict(hook["headers"] or {}),
            time=now,
        )
        st.deliveries.append(delivery)
        st.outbox.append(delivery.index)


def _scope_covers(hook_scope: str, scope: str) -> bool:
    if hook_scope.endswith("/*"):
        return scope.startswith(hook_scope[:-1])
    return hook_scope == scope


def _store_id(store_hash: str) -> str:
    """The numeric store id of webhook payloads: stable per store hash."""
    digest = hashlib.sha1(store_hash.encode(), usedforsecurity=False).hexdigest()
    return str(1_000_000 + int(digest[:8], 16) % 9_000_000)


# -- customer records ------------------------------------------------------------------------

_TEXT_FIELDS = ("email", "first_name", "last_name", "company", "phone", "notes")
_OPTIONAL_TEXT = ("registration_ip_address", "tax_exempt_category")
_IGNORED_FIELDS = frozenset(
    {
        "attributes",
        "addresses",
        "form_fields",
        "store_credit_amounts",
        "trigger_account_created_notification",
        "accepts_product_review_abandoned_cart_emails",
    }
)
_KNOWN_FIELDS = frozenset(
    {
        *_TEXT_FIELDS,
        *_OPTIONAL_TEXT,
        *_IGNORED_FIELDS,
        "customer_group_id",
        "channel_ids",
        "origin_channel_id",
        "authentication",
    }
)


def _batch_body(raw: bytes) -> list[Any]:
    body = _json_body(raw)
    if not isinstance(body, list):
        raise _ApiError(422, "The request body must be a JSON array")
    if not body:
        raise _ApiError(422, "The request body must not be empty")
    if len(body) > MAX_BATCH:
        raise _ApiError(413, f"At most {MAX_BATCH} customers per request")
    return body


def _create_customers(st: _StoreState, items: list[Any], now: float) -> list[JSONDict]:
    """Validate a whole batch, then create all of it or nothing."""
    cleaned: list[tuple[JSONDict, str | None]] = []
    errors: JSONDict = {}
    for index, item in enumerate(items):
        values, password, item_errors = _clean_customer(item, st.settings, creating=True)
        errors.update({f"[{index}].{k}": v for k, v in item_errors.items()})
        cleaned.append((values, password))
    if errors:
        raise _ApiError(422, "Input is invalid", errors)
    records = [_new_record(st, values, now) for values, _ in cleaned]
    _check_duplicates(st, records)
    created: list[JSONDict] = []
    for record, (_, password) in zip(records, cleaned, strict=True):
        record["id"] = st.next_id
        st.next_id += 1
        st.customers[record["id"]] = record
        if password is not None:
            st.passwords[record["id"]] = _hash_password(password)
        created.append(record)
    return created


def _update_customers(st: _StoreState, items: list[Any], now: float) -> list[JSONDict]:
    records: list[JSONDict] = []
    passwords: list[str | None] = []
    errors: JSONDict = {}
    for index, item in enumerate(items):
        values, password, item_errors = _clean_customer(item, st.settings, creating=False)
        customer_id = _as_int(item.get("id")) if isinstance(item, dict) else None
        if customer_id is None or customer_id not in st.customers:
            item_errors["id"] = "id is required and must be an existing customer"
        errors.update({f"[{index}].{k}": v for k, v in item_errors.items()})
        if not item_errors and customer_id is not None:
            record = {**st.customers[customer_id], **values, "date_modified": _iso(now)}
            records.append(record)
            passwords.append(password)
    if errors:
        raise _ApiError(422, "Input is invalid", errors)
    if len({r["id"] for r in records}) != len(records):
        raise _ApiError(422, "Input is invalid", {"id": "each id at most once per request"})
    _check_duplicates(st, records)
    for record, password in zip(records, passwords, strict=True):
        st.customers[record["id"]] = record
        if password is not None:
            st.passwords[record["id"]] = _hash_password(password)
    return records


def _clean_customer(
    item: Any, settings: SandboxStore, *, creating: bool
) -> tuple[JSONDict, str | None, JSONDict]:
    """Checked fields of one customer item, its new password, and errors by field name."""
    if not isinstance(item, dict):
        return {}, None, {"": "each item must be a JSON object"}
    errors: JSONDict = {}
    allowed = _KNOWN_FIELDS if creating else _KNOWN_FIELDS | {"id"}
    for name in sorted(set(item) - allowed):
        errors[name] = "unknown field"
    values: JSONDict = {}
    for name in (*_TEXT_FIELDS, *_OPTIONAL_TEXT):
        if name in item:
            if not isinstance(item[name], str) or len(item[name]) > 255:
                errors[name] = f"{name} must be a string of at most 255 characters"
            else:
                values[name] = item[name]
    for name in ("email", "first_name", "last_name"):
        if (creating or name in item) and not str(item.get(name) or "").strip():
            errors[name] = f"{name} is required"
    if "email" in values and not re.fullmatch(r"[^@\s]+@[^@\s]+", values["email"]):
        errors["email"] = "email must be a valid e-mail address"
    _clean_numbers(item, settings, values, errors)
    password = _clean_password(item.get("authentication"), errors)
    return values, password, errors


def _clean_numbers(
    item: JSONDict, settings: SandboxStore, values: JSONDict, errors: JSONDict
) -> None:
    if "customer_group_id" in item:
        if _is_int(item["customer_group_id"]) and item["customer_group_id"] >= 0:
            values["customer_group_id"] = item["customer_group_id"]
        else:
            errors["customer_group_id"] = "customer_group_id must be a non-negative integer"
    if "channel_ids" in item:
        channels = item["channel_ids"]
        if channels is None:
            values["channel_ids"] = None
        elif (
            isinstance(channels, list)
            and channels
            and all(_is_int(c) and c in settings.channel_ids for c in channels)
        ):
            values["channel_ids"] = list(dict.fromkeys(channels))
        else:
            errors["channel_ids"] = (
                "channel_ids must be null or a non-empty list of the store's channels"
            )
    if "origin_channel_id" in item:
        if _is_int(item["origin_channel_id"]) and item["origin_channel_id"] in settings.channel_ids:
            values["origin_channel_id"] = item["origin_channel_id"]
        else:
            errors["origin_channel_id"] = "origin_channel_id must be one of the store's channels"


def _clean_password(authentication: Any, errors: JSONDict) -> str | None:
    if authentication is None:
        return None
    if not isinstance(authentication, dict):
        errors["authentication"] = "authentication must be an object"
        return None
    password = authentication.get("new_password")
    if password is not None and (not isinstance(password, str) or not password):
        errors["authentication"] = "new_password must be a non-empty string"
        return None
    return password if isinstance(password, str) else None


def _new_record(st: _StoreState, values: JSONDict, now: float) -> JSONDict:
    channels = values.get("channel_ids")
    default_channel = _default_channel(st.settings)
    stamp = _iso(now)
    return {
        "id": 0,
        "email": values["email"],
        "first_name": values["first_name"],
        "last_name": values["last_name"],
        "company": values.get("company", ""),
        "phone": values.get("phone", ""),
        "notes": values.get("notes", ""),
        "customer_group_id": values.get("customer_group_id", 0),
        "channel_ids": channels,
        "origin_channel_id": values.get(
            "origin_channel_id", channels[0] if channels else default_channel
        ),
        "registration_ip_address": values.get("registration_ip_address", ""),
        "tax_exempt_category": values.get("tax_exempt_category", ""),
        "date_created": stamp,
        "date_modified": stamp,
    }


def _check_duplicates(st: _StoreState, changed: list[JSONDict]) -> None:
    """422 when a changed record's e-mail meets another's in an overlapping channel."""
    changed_ids = {r["id"] for r in changed if r["id"]}
    others = [c for c in st.customers.values() if c["id"] not in changed_ids]
    errors: JSONDict = {}
    for index, record in enumerate(changed):
        for other in [*others, *changed[:index]]:
            if other["email"].lower() == record["email"].lower() and _channels_overlap(
                other["channel_ids"], record["channel_ids"]
            ):
                errors[f"[{index}].email"] = "The email address is already in use"
                break
    if errors:
        raise _ApiError(422, "The customer could not be saved", errors)


def _channels_overlap(a: list[int] | None, b: list[int] | None) -> bool:
    return a is None or b is None or bool(set(a) & set(b))


def _allows_channel(customer: JSONDict, channel_id: int) -> bool:
    channels = customer.get("channel_ids")
    return channels is None or channel_id in channels


def _hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


def _default_channel(settings: SandboxStore) -> int:
    """Channel 1 when the store has it, else its first: the channel of /s/<hash>/ forms."""
    return 1 if 1 in settings.channel_ids else settings.channel_ids[0]


# -- storefront login and Current Customer JWT -------------------------------------------------


def _attempt_login(
    st: _StoreState, token: str, remote_addr: str | None, old_session: str | None, now: float
) -> _LoginOutcome:
    base = f"/s/{st.settings.store_hash}"
    entry: JSONDict = {"ok": False, "reason": "", "customer_id": None, "claims": None, "time": now}
    st.logins.append(entry)
    try:
        header, claims = _split_jwt(token)
        entry["claims"] = claims
        _verify_signature(token, header, st.settings.client_secret)
        _remember_jti(st, claims)
        customer_id, target = _check_login_claims(st, claims, remote_addr, now)
    except _LoginRefused as refused:
        entry["reason"] = refused.reason
        return _LoginOutcome(f"{base}/login.php?error=invalid_login", None)
    entry["customer_id"] = customer_id
    if _is_absolute(target):
        entry["reason"] = "redirect_to is absolute: the session is lost"
        return _LoginOutcome(target, None)
    session_id = _start_session(st, customer_id, old_session)
    entry.update(ok=True, reason="ok")
    return _LoginOutcome(base + (target if target.startswith("/") else "/" + target), session_id)


def _password_login(
    st: _StoreState, email: str, password: str, old_session: str | None, now: float
) -> _LoginOutcome:
    """``POST /login.php?action=check_login``: the form's e-mail and password."""
    base = f"/s/{st.settings.store_hash}"
    channel_id = _default_channel(st.settings)
    entry: JSONDict = {
        "method": "password",
        "ok": False,
        "reason": "",
        "email": email,
        "customer_id": None,
        "channel_id": channel_id,
        "time": now,
    }
    st.password_logins.append(entry)
    customer_id = _check_credentials(st, email, password, channel_id) if email else None
    if customer_id is None:
        entry["reason"] = "email or password incorrect"
        return _LoginOutcome(f"{base}/login.php", None)
    session_id = _start_session(st, customer_id, old_session)
    entry.update(ok=True, reason="ok", customer_id=customer_id)
    return _LoginOutcome(base + DEFAULT_REDIRECT, session_id)


def _start_session(st: _StoreState, customer_id: int, old_session: str | None) -> str:
    """A new session id for the customer; the browser's old one ends (no fixation)."""
    st.sessions.pop(old_session or "", None)
    session_id = secrets.token_urlsafe(32)
    st.sessions[session_id] = customer_id
    return session_id


def _split_jwt(token: str) -> tuple[JSONDict, JSONDict]:
    """The header and claims of a compact JWS, unverified."""
    parts = token.split(".")
    if len(parts) != 3:
        raise _LoginRefused("malformed token")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        raise _LoginRefused("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _LoginRefused("malformed token")
    return header, claims


def _verify_signature(token: str, header: JSONDict, secret: str) -> None:
    if header != {"typ": "JWT", "alg": "HS256"}:
        raise _LoginRefused('header must be exactly {"typ": "JWT", "alg": "HS256"}')
    try:
        jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"])
    except (JoseError, ValueError):
        raise _LoginRefused("bad signature") from None


def _remember_jti(st: _StoreState, claims: JSONDict) -> None:
    """Single use: a validly signed token's jti is spent, whatever else is wrong with it."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _LoginRefused("jti missing")
    if jti in st.used_jtis:
        raise _LoginRefused("jti already used")
    st.used_jtis.add(jti)


def _check_login_claims(
    st: _StoreState, claims: JSONDict, remote_addr: str | None, now: float
) -> tuple[int, str]:
    """The customer id and redirect target of a valid token, else _LoginRefused."""
    settings = st.settings
    if claims.get("iss") != settings.client_id:
        raise _LoginRefused("iss is not the app's client id")
    if claims.get("operation") != "customer_login":
        raise _LoginRefused("operation is not customer_login")
    if claims.get("store_hash") != settings.store_hash:
        raise _LoginRefused("store_hash is not this store")
    _check_iat(claims.get("iat"), now)
    customer_id = _as_int(claims.get("customer_id"))
    if customer_id is None:
        raise _LoginRefused("customer_id must be an integer")
    customer = st.customers.get(customer_id)
    if customer is None:
        raise _LoginRefused("no such customer")
    channel_id = claims.get("channel_id", 1)
    if not _is_int(channel_id) or channel_id not in settings.channel_ids:
        raise _LoginRefused("channel_id is not a channel of this store")
    if not _allows_channel(customer, channel_id):
        raise _LoginRefused("the customer may not sign in on this channel")
    if "request_ip" in claims and claims["request_ip"] != remote_addr:
        raise _LoginRefused("request_ip is not the browser's address")
    target = claims.get("redirect_to", DEFAULT_REDIRECT)
    if not isinstance(target, str) or not target:
        raise _LoginRefused("redirect_to must be a string")
    return customer_id, target


def _check_iat(iat: Any, now: float) -> None:
    if not _is_int(iat):
        raise _LoginRefused("iat must be an integer")
    if iat > now:
        raise _LoginRefused("iat is in the future")
    if iat < now - LOGIN_JWT_MAX_AGE:
        raise _LoginRefused(f"iat is older than {LOGIN_JWT_MAX_AGE} seconds")


def _is_absolute(target: str) -> bool:
    parts = urlsplit(target)
    return bool(parts.scheme or parts.netloc) or target.startswith(("//", "/\\", "\\"))


def _current_customer_jwt(settings: SandboxStore, customer: JSONDict, now: int) -> str:
    claims = {
        "customer": {
            "id": customer["id"],
            "email": customer["email"],
            "group_id": str(customer["customer_group_id"]),
        },
        "iss": "bc/apps",
        "sub": settings.store_hash,
        "iat": now,
        "exp": now + CURRENT_JWT_LIFETIME,
        "version": 1,
        "aud": settings.client_id,
        "application_id": settings.client_id,
        "store_hash": settings.store_hash,
        "operation": "current_customer",
    }
    header = {"typ": "JWT", "alg": "HS256"}
    return jwt.encode(
        header, claims, OctKey.import_key(settings.client_secret), algorithms=["HS256"]
    )


# -- small helpers -----------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _copy(value: JSONDict) -> JSONDict:
    copied: JSONDict = json.loads(json.dumps(value))
    return copied


def _iso(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _rate_headers(quota: int, left: int, reset_ms: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Time-Window-Ms": str(WINDOW_MS),
        "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        "X-Rate-Limit-Requests-Quota": str(quota),
        "X-Rate-Limit-Requests-Left": str(left),
    }


def _error_result(error: _ApiError, headers: Mapping[str, str] | None = None) -> _ApiResult:
    body = {
        "status": error.status,
        "title": error.title,
        "type": ERROR_TYPE,
        "errors": error.errors,
    }
    return _ApiResult(error.status, body, {**(headers or {}), **error.headers})


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise _ApiError(400, "The request body is not valid JSON") from None


def _recorded_body(raw: bytes) -> Any:
    try:
        return _redact(json.loads(raw)) if raw else None
    except ValueError:
        return None


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "***" if k in _REDACTED_KEYS else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _reject_unknown_params(args: MultiDict[str, str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        errors = {name: "unknown query parameter" for name in unknown}
        raise _ApiError(422, "The filter(s) are not valid", errors)


def _str_list(args: MultiDict[str, str], name: str) -> list[str]:
    values = [v.strip() for raw in args.getlist(name) for v in raw.split(",") if v.strip()]
    if not values:
        raise _ApiError(422, "The filter(s) are not valid", {name: "must not be empty"})
    return values


def _int_list(args: MultiDict[str, str], name: str) -> list[int]:
    values = _str_list(args, name)
    if not all(re.fullmatch(r"\d+", v) for v in values):
        raise _ApiError(422, "The filter(s) are not valid", {name: "must be integers"})
    return [int(v) for v in values]


def _int_param(
    args: MultiDict[str, str], name: str, default: int, minimum: int, maximum: int | None
) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) < minimum or (maximum and int(raw) > maximum):
        bound = f" and at most {maximum}" if maximum else ""
        raise _ApiError(422, "The filter(s) are not valid", {name: f"must be >= {minimum}{bound}"})
    return int(raw)


# -- the Flask app -----------------------------------------------------------------------------


def create_sandbox_app(*, clock: Callable[[], float] = time.time) -> Flask:
    """A sandbox BigCommerce serving any number of stores; state at extensions["sandbox"]."""
    app = Flask(__name__)
    state = SandboxState(clock)
    app.extensions["sandbox"] = state
    _register_control(app, state)
    _register_api(app, state)
    _register_b2b_api(app, state)
    _register_storefront(app, state)
    return app


def _json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    text = "" if body is None else json.dumps(body)
    return Response(text, status, headers=dict(headers or {}), mimetype="application/json")


def _control_error(message: str, status: int) -> Response:
    return _json_response({"status": status, "title": message, "errors": {}}, status)


def _register_control(app: Flask, state: SandboxState) -> None:
    """The JSON control API under /_sandbox/ (not part of BigCommerce)."""

    def guarded(action: Callable[[], Response]) -> Response:
        try:
            return action()
        except SandboxError as exc:
            return _control_error(str(exc), 404 if isinstance(exc, SandboxNotFound) else 422)

    def body() -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            raise SandboxError("the body is not valid JSON") from None

    @app.post("/_sandbox/stores")
    def control_add_store() -> Response:
        def run() -> Response:
            store = _store_from_json(body())
            if state.has_store(store.store_hash):
                return _control_error(f"store {store.store_hash!r} already exists", 409)
            state.add_store(store)
            return _json_response(store.public_json(), 201)

        return guarded(run)

    @app.post("/_sandbox/stores/<store_hash>/customers")
    def control_add_customer(store_hash: str) -> Response:
        def run() -> Response:
            fields = body()
            if not isinstance(fields, dict):
                raise SandboxError("the body must be a JSON object")
            return _json_response(state.add_customer(store_hash, **fields), 201)

        return guarded(run)

    @app.get("/_sandbox/stores/<store_hash>/customers")
    def control_customers(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.customers(store_hash)))

    @app.delete("/_sandbox/stores/<store_hash>/customers/<int:customer_id>")
    def control_delete_customer(store_hash: str, customer_id: int) -> Response:
        def run() -> Response:
            state.delete_customer(store_hash, customer_id)
            return _json_response(None, 204)

        return guarded(run)

    @app.get("/_sandbox/stores/<store_hash>/deliveries")
    def control_deliveries(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.deliveries(store_hash)))

    @app.post("/_sandbox/stores/<store_hash>/deliveries/<int:index>/redeliver")
    def control_redeliver(store_hash: str, index: int) -> Response:
        return guarded(lambda: _json_response({"index": state.redeliver(store_hash, index)}, 202))

    @app.get("/_sandbox/stores/<store_hash>/requests")
    def control_requests(store_hash: str) -> Response:
        return guarded(lambda: _json_response([r.to_json() for r in state.requests(store_hash)]))

    @app.delete("/_sandbox/stores/<store_hash>/requests")
    def control_clear_requests(store_hash: str) -> Response:
        def run() -> Response:
            state.clear_requests(store_hash)
            return _json_response(None, 204)

        return guarded(run)

    @app.get("/_sandbox/stores/<store_hash>/logins")
    def control_logins(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.logins(store_hash)))

    @app.get("/_sandbox/stores/<store_hash>/password-logins")
    def control_password_logins(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.password_logins(store_hash)))

    def fields() -> JSONDict:
        values = body()
        if not isinstance(values, dict):
            raise SandboxError("the body must be a JSON object")
        return values

    @app.post("/_sandbox/stores/<store_hash>/b2b/companies")
    def control_add_company(store_hash: str) -> Response:
        def run() -> Response:
            values = fields()
            if not isinstance(values.get("name"), str):
                raise SandboxError("name is required")
            try:
                company = state.add_company(store_hash, **values)
            except TypeError as exc:
                raise SandboxError(str(exc)) from None
            return _json_response(company, 201)

        return guarded(run)

    @app.get("/_sandbox/stores/<store_hash>/b2b/companies")
    def control_companies(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.companies(store_hash)))

    @app.put("/_sandbox/stores/<store_hash>/b2b/companies/<int:company_id>/status")
    def control_company_status(store_hash: str, company_id: int) -> Response:
        def run() -> Response:
            status = fields().get("status")
            if not isinstance(status, str | int):
                raise SandboxError("status is required")
            return _json_response(state.set_company_status(store_hash, company_id, status))

        return guarded(run)

    @app.post("/_sandbox/stores/<store_hash>/b2b/users")
    def control_add_company_user(store_hash: str) -> Response:
        def run() -> Response:
            values = fields()
            names = ("customer_id", "company_id", "role")
            unknown = sorted(set(values) - set(names))
            if unknown:
                raise SandboxError(f"unknown fields: {', '.join(unknown)}")
            customer_id, company_id, role = (_as_int(values.get(n)) for n in names)
            if customer_id is None or company_id is None or role is None:
                raise SandboxError("customer_id, company_id and role must be integers")
            user = state.add_company_user(store_hash, customer_id, company_id, role)
            return _json_response(user, 201)

        return guarded(run)

    @app.get("/_sandbox/stores/<store_hash>/b2b/users")
    def control_b2b_users(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.b2b_users(store_hash)))

    @app.get("/_sandbox/stores/<store_hash>/faults")
    def control_get_faults(store_hash: str) -> Response:
        return guarded(lambda: _json_response(state.faults(store_hash)))

    @app.post("/_sandbox/stores/<store_hash>/faults")
    def control_set_faults(store_hash: str) -> Response:
        def run() -> Response:
            switches = body()
            if not isinstance(switches, dict):
                raise SandboxError("the body must be a JSON object")
            state.set_faults(store_hash, **switches)
            return _json_response(state.faults(store_hash))

        return guarded(run)


def _register_api(app: Flask, state: SandboxState) -> None:
    """The management API, at the same paths as on api.bigcommerce.com."""

    @app.route(
        "/stores/<store_hash>/<any(v2, v3):version>/<path:rest>",
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
    )
    def api(store_hash: str, version: str, rest: str) -> Response:
        if state.take_reset(store_hash):
            return _reset_connection()
        before, after = state.api_delay(store_hash)
        if before:
            time.sleep(before)
        req = _ApiRequest(
            method=request.method,
            version=version,
            rest=rest,
            args=MultiDict(request.args.items(multi=True)),
            body=request.get_data(),
            token=request.headers.get("X-Auth-Token"),
            host_url=request.host_url,
        )
        result = state.handle_api(store_hash, req)
        if after:
            time.sleep(after)
        body = None if result.status == 204 else result.body
        return _json_response(body, result.status, result.headers)


def _register_b2b_api(app: Flask, state: SandboxState) -> None:
    """B2B Edition's management API, at the paths of api-b2b.bigcommerce.com."""

    @app.route(f"{b2b.BASE_PATH}/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def b2b_api(rest: str) -> Response:
        store_hash = request.headers.get("X-Store-Hash")
        before, after = state.api_delay(store_hash or "", B2B_API)
        if before:
            time.sleep(before)
        req = b2b.B2BRequest(
            method=request.method,
            path=rest,
            args=MultiDict(request.args.items(multi=True)),
            body=request.get_data(),
        )
        result = state.handle_b2b(store_hash, request.headers.get("X-Auth-Token"), req)
        if after:
            time.sleep(after)
        return _json_response(result.body, result.status, result.headers)


def _register_storefront(app: Flask, state: SandboxState) -> None:
    """The storefront pages of every store, under /s/<store_hash>/."""

    def cookie_name(store_hash: str) -> str:
        return f"SHOP_SESSION_{store_hash}"

    def session_id(store_hash: str) -> str | None:
        return request.cookies.get(cookie_name(store_hash))

    def page(store_hash: str, template: str, **context: Any) -> Response:
        # No Content-Security-Policy: like a theme without one, the page may load the
        # theme script from another origin.
        store = state.store(store_hash)
        customer = state.session_customer(store_hash, session_id(store_hash))
        company_user = state.company_user(store_hash, customer["id"]) if customer else None
        html = render_template(
            f"store/{template}",
            store=store,
            base=f"/s/{store_hash}",
            customer=customer,
            company_user=company_user,
            sso_url=_sso_link(store.sso_login_url),
            **context,
        )
        return Response(html, 200, mimetype="text/html")

    def with_session(response: BaseResponse, store_hash: str, new_session: str) -> BaseResponse:
        response.set_cookie(
            cookie_name(store_hash),
            new_session,
            path=f"/s/{store_hash}",
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
        return response

    def missing_store() -> Response:
        html = render_template("store/missing.html", store=None, base="", customer=None)
        return Response(html, 404, mimetype="text/html")

    @app.get("/s/<store_hash>")
    def storefront_root(store_hash: str) -> BaseResponse:
        return redirect(f"/s/{store_hash}/")

    @app.get("/s/<store_hash>/")
    def storefront_home(store_hash: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        return page(store_hash, "home.html")

    @app.get("/s/<store_hash>/login/token/<path:token>")
    def storefront_login_token(store_hash: str, token: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        outcome = state.attempt_login(
            store_hash, token, request.remote_addr, session_id(store_hash)
        )
        response = redirect(outcome.location)
        if outcome.session_id is not None:
            return with_session(response, store_hash, outcome.session_id)
        return response

    @app.get("/s/<store_hash>/account.php")
    def storefront_account(store_hash: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        if state.session_customer(store_hash, session_id(store_hash)) is None:
            return redirect(f"/s/{store_hash}/login.php")
        return page(store_hash, "account.html")

    @app.get("/s/<store_hash>/login.php")
    def storefront_login_page(store_hash: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        if request.args.get("action") == "logout":
            state.end_session(store_hash, session_id(store_hash))
            response = redirect(f"/s/{store_hash}/")
            response.delete_cookie(cookie_name(store_hash), path=f"/s/{store_hash}")
            return response
        error = request.args.get("error") == "invalid_login"
        return page(store_hash, "login.html", invalid_login=error)

    @app.post("/s/<store_hash>/login.php")
    def storefront_check_login(store_hash: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        if request.args.get("action") != "check_login":
            return Response("Unknown action", 400, mimetype="text/plain")
        email = request.form.get("login_email", "").strip()
        outcome = state.password_login(
            store_hash, email, request.form.get("login_pass", ""), session_id(store_hash)
        )
        if outcome.session_id is None:
            # BigCommerce shows the form again, with the e-mail kept, and a message.
            return page(store_hash, "login.html", wrong_password=True, email=email)
        return with_session(redirect(outcome.location), store_hash, outcome.session_id)

    @app.get("/s/<store_hash>/customer/current.jwt")
    def storefront_current_jwt(store_hash: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        app_client_id = request.args.get("app_client_id")
        if not app_client_id:
            return Response("app_client_id is required", 400, mimetype="text/plain")
        if app_client_id != state.store(store_hash).client_id:
            return Response("Unknown app", 404, mimetype="text/plain")
        token = state.current_customer_jwt(store_hash, session_id(store_hash))
        if token is None:
            return Response("Not signed in", 404, mimetype="text/plain")
        return Response(token, 200, mimetype="text/plain", headers={"Cache-Control": "no-store"})

    @app.get("/s/<store_hash>/<path:rest>")
    def storefront_other(store_hash: str, rest: str) -> BaseResponse:
        if not state.has_store(store_hash):
            return missing_store()
        return page(store_hash, "placeholder.html", path="/" + rest)


def _sso_link(url: str | None) -> str | None:
    if not url:
        return None
    return url if "?" in url else f"{url}?redirect_to={DEFAULT_REDIRECT}"
