"""A faithful local BigCommerce store: a test double for our tests and for ``broker demo``.

It follows the checked API facts in ``shared/bigcommerce-api.md`` and the "The sandbox"
section of ``DESIGN.md``. One Flask app (built by :func:`create_sandbox_app`) serves any
number of fake stores, each registered as a :class:`SandboxStore`:

- the management API at ``/stores/<hash>/v3/...`` and ``/stores/<hash>/v2/...`` with the
  real quirks (``X-Auth-Token``, array bodies of at most 10, no ``GET /customers/{id}``,
  422 on a duplicate e-mail within overlapping channels, 422 on an unknown filter,
  ``X-Rate-Limit-*`` headers from a real 30-second window, a stricter limit on
  ``validate-credentials``, ``GET /v2/time``);
- the storefront at ``/s/<hash>/``: ``/login/token/<jwt>`` checks the Customer Login JWT the
  way BigCommerce does and starts a session, ``/account.php`` shows who is signed in,
  ``/login.php?action=logout`` ends it, ``/customer/current.jwt`` returns the Current
  Customer JWT;
- a JSON control API at ``/_sandbox/`` to register stores, seed customers, read the request
  and login logs and set fault switches (latency, 5xx, 429 storms, timeouts, quotas, clock
  offset).

It never replaces BigCommerce in production, and it imports nothing from the broker.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import http
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, render_template, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from werkzeug.datastructures import MultiDict
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.utils import redirect
from werkzeug.wrappers import Response as BaseResponse

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
_REDACTED_KEYS = frozenset({"password", "new_password"})


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

    def public_json(self) -> JSONDict:
        """The settings without the two secrets."""
        return {
            "store_hash": self.store_hash,
            "client_id": self.client_id,
            "channel_ids": list(self.channel_ids),
            "name": self.name,
            "sso_login_url": self.sso_login_url,
            "email_case_sensitive": self.email_case_sensitive,
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
    storm_until: float | None = None
    quota: int = DEFAULT_QUOTA
    credentials_quota: int = DEFAULT_CREDENTIALS_QUOTA
    clock_offset: float = 0.0
    reset_ms: int = DEFAULT_FAULT_RESET_MS
    rate_limit_headers: bool = True
    switches: JSONDict = field(default_factory=dict)


@dataclass
class _StoreState:
    settings: SandboxStore
    customers: dict[int, JSONDict] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    next_id: int = 1
    requests: list[RecordedRequest] = field(default_factory=list)
    logins: list[JSONDict] = field(default_factory=list)
    used_jtis: set[str] = field(default_factory=set)
    sessions: dict[str, int] = field(default_factory=dict)
    faults: _Faults = field(default_factory=_Faults)
    api_window: _RateWindow = field(default_factory=_RateWindow)
    credentials_window: _RateWindow = field(default_factory=_RateWindow)


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
    """Every fake store's data, logs and switches. Thread-safe: one lock guards it all."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stores: dict[str, _StoreState] = {}

    # public Python API (tests and `broker demo`) ---------------------------------------------

    def add_store(self, store: SandboxStore) -> None:
        _check_store(store)
        with self._lock:
            if store.store_hash in self._stores:
                raise SandboxError(f"store {store.store_hash!r} already exists")
            self._stores[store.store_hash] = _StoreState(settings=store)

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

    def requests(self, store_hash: str) -> list[RecordedRequest]:
        with self._lock:
            return list(self._get(store_hash).requests)

    def clear_requests(self, store_hash: str) -> None:
        with self._lock:
            self._get(store_hash).requests.clear()

    def logins(self, store_hash: str) -> list[JSONDict]:
        with self._lock:
            return [_copy(entry) for entry in self._get(store_hash).logins]

    def set_faults(self, store_hash: str, **switches: Any) -> None:
        """Replace the store's fault switches (no switch: clear them); rate windows restart."""
        with self._lock:
            st = self._get(store_hash)
            st.faults = _parse_faults(switches, self._clock())
            st.api_window = _RateWindow()
            st.credentials_window = _RateWindow()

    def faults(self, store_hash: str) -> JSONDict:
        with self._lock:
            return _copy(self._get(store_hash).faults.switches)

    # the app's side ----------------------------------------------------------------------

    def has_store(self, store_hash: str) -> bool:
        with self._lock:
            return store_hash in self._stores

    def api_delay(self, store_hash: str) -> tuple[float, float]:
        """Seconds to sleep before and after handling the next API request."""
        with self._lock:
            st = self._stores.get(store_hash)
            before, after = (0, 0) if st is None else _take_delay(st.faults)
            return before / 1000, after / 1000

    def handle_api(self, store_hash: str, req: _ApiRequest) -> _ApiResult:
        with self._lock:
            st = self._stores.get(store_hash)
            if st is None:
                return _error_result(_ApiError(404, "Store not found"))
            now = self._clock()
            result = _api_result(st, req, now)
            st.requests.append(
                RecordedRequest(
                    method=req.method,
                    path=f"/{req.version}/{req.rest}",
                    query=req.args.to_dict(),
                    status=result.status,
                    body=_recorded_body(req.body),
                    time=now,
                )
            )
            return result

    def attempt_login(
        self, store_hash: str, token: str, remote_addr: str | None, old_session: str | None
    ) -> _LoginOutcome:
        with self._lock:
            st = self._get(store_hash)
            now = self._clock() + st.faults.clock_offset
            return _attempt_login(st, token, remote_addr, old_session, now)

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
            raise SandboxError(f"no sandbox store {store_hash!r}")
        return st


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
}
FAULT_SWITCHES = frozenset({*_INT_SWITCHES, "clock_offset", "rate_limit_headers"})


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
    count = switches.get("count")
    storm_ms = switches.get("rate_limit_for_ms")
    return _Faults(
        latency_ms=switches.get("latency_ms") or 0,
        status=status,
        status_left=count,
        timeout_ms=switches.get("timeout_ms") or 0,
        timeout_left=count,
        storm_until=now + storm_ms / 1000 if storm_ms else None,
        quota=switches.get("quota") or DEFAULT_QUOTA,
        credentials_quota=switches.get("credentials_quota") or DEFAULT_CREDENTIALS_QUOTA,
        clock_offset=float(offset),
        reset_ms=switches.get("reset_ms", DEFAULT_FAULT_RESET_MS),
        rate_limit_headers=headers,
        switches=dict(switches),
    )


def _take_delay(faults: _Faults) -> tuple[int, int]:
    """Milliseconds to wait before handling and after handling (counted timeouts count down).

    Latency comes before the store acts; a timeout comes after it, so a client that gives up
    does not know whether its request took effect: the case a create must survive.
    """
    timeout = 0
    if faults.timeout_ms and (faults.timeout_left is None or faults.timeout_left > 0):
        timeout = faults.timeout_ms
        if faults.timeout_left is not None:
            faults.timeout_left -= 1
    return faults.latency_ms, timeout


def _forced_result(st: _StoreState, now: float) -> _ApiResult | None:
    """The answer a 429 storm or a status switch imposes on this request, if any."""
    faults = st.faults
    if faults.storm_until is not None and now < faults.storm_until:
        reset_ms = max(1, math.ceil((faults.storm_until - now) * 1000))
        error = _ApiError(
            429, "Too many requests", headers=_rate_headers(faults.quota, 0, reset_ms)
        )
        return _error_result(error)
    if faults.status is None or faults.status_left == 0:
        return None
    if faults.status_left is not None:
        faults.status_left -= 1
    headers: dict[str, str] = {}
    if faults.rate_limit_headers:
        if faults.status == 429:
            headers = _rate_headers(faults.quota, 0, faults.reset_ms)
        else:
            headers = st.api_window.headers(now, faults.quota)
    return _error_result(_ApiError(faults.status, _phrase(faults.status), headers=headers))


# -- the management API ----------------------------------------------------------------------


def _api_result(st: _StoreState, req: _ApiRequest, now: float) -> _ApiResult:
    forced = _forced_result(st, now)
    if forced is not None:
        return forced
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
    return 200, {"data": [_copy(c) for c in created], "meta": {}}


def _put_customers(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    items = _batch_body(req.body)
    updated = _update_customers(st, items, now)
    return 200, {"data": [_copy(c) for c in updated], "meta": {}}


def _delete_customers(st: _StoreState, req: _ApiRequest, now: float) -> tuple[int, Any]:
    _reject_unknown_params(req.args, frozenset({"id:in"}))
    if "id:in" in req.args:
        for customer_id in _int_list(req.args, "id:in"):
            st.customers.pop(customer_id, None)
            st.passwords.pop(customer_id, None)
    return 204, None


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
    email = str(body["email"]).lower()
    for customer_id, customer in sorted(st.customers.items()):
        if customer["email"].lower() != email or not _allows_channel(customer, channel_id):
            continue
        hashed = st.passwords.get(customer_id)
        if hashed is not None and check_password_hash(hashed, str(body["password"])):
            return 200, {"is_valid": True, "customer_id": customer_id}
    return 200, {"is_valid": False, "customer_id": None}


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
    default_channel = 1 if 1 in st.settings.channel_ids else st.settings.channel_ids[0]
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
    st.sessions.pop(old_session or "", None)
    session_id = secrets.token_urlsafe(32)
    st.sessions[session_id] = customer_id
    entry.update(ok=True, reason="ok")
    return _LoginOutcome(base + (target if target.startswith("/") else "/" + target), session_id)


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
            missing = str(exc).startswith("no sandbox store")
            return _control_error(str(exc), 404 if missing else 422)

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


def _register_storefront(app: Flask, state: SandboxState) -> None:
    """The storefront pages of every store, under /s/<store_hash>/."""

    def cookie_name(store_hash: str) -> str:
        return f"SHOP_SESSION_{store_hash}"

    def session_id(store_hash: str) -> str | None:
        return request.cookies.get(cookie_name(store_hash))

    def page(store_hash: str, template: str, **context: Any) -> Response:
        store = state.store(store_hash)
        customer = state.session_customer(store_hash, session_id(store_hash))
        html = render_template(
            f"store/{template}",
            store=store,
            base=f"/s/{store_hash}",
            customer=customer,
            sso_url=_sso_link(store.sso_login_url),
            **context,
        )
        return Response(html, 200, mimetype="text/html")

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
            response.set_cookie(
                cookie_name(store_hash),
                outcome.session_id,
                path=f"/s/{store_hash}",
                httponly=True,
                samesite="Lax",
                secure=request.is_secure,
            )
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
