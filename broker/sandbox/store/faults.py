"""Rate windows and fault switches: how the sandbox store runs out of patience, on purpose.

No IO, no framework: the HTTP layer asks :func:`take_connection_reset` and :func:`take_delay`
what to do to a request, and the API pipeline asks :func:`forced_error`. Facts followed
(``docs/bigcommerce-api.md``, "Rate limits" and "Customers V3"):

- a store's quota is counted in a fixed 30-second window that the first request in it starts;
  every answer carries ``X-Rate-Limit-Time-Window-Ms`` (30000), ``-Time-Reset-Ms``,
  ``-Requests-Quota`` and ``-Requests-Left``; over quota is 429 with the same headers;
- the default quota is 150 (Standard and Plus plans); ``validate-credentials`` has its own,
  stricter limit whose numbers are unpublished: the sandbox takes 5 per window;
- a 429 without those headers is platform load (the ``rate_limit_headers`` switch).

B2B Edition's API has its own window (``docs/bigcommerce-api.md``, "B2B Edition"); the
sandbox counts it with the same quota switch.

The switches (:data:`FAULT_SWITCHES`, set by ``SandboxState.set_faults`` or
``POST /_sandbox/stores/<hash>/faults``):
``latency_ms`` before every request; ``status`` (an error status for the next ``count``
requests, or all); ``rate_limit_for_ms`` (a 429 storm); ``timeout_ms`` (a pause *after* the
store acted, for the next ``count`` requests or all); ``resets`` (that many TCP resets before
the store acts, main API only); ``quota``, ``credentials_quota``; ``reset_ms`` (the
``X-Rate-Limit-Time-Reset-Ms`` of a ``status=429``); ``clock_offset`` (seconds added to the
store's clock: ``/v2/time``, login JWT ages); ``rate_limit_headers``; ``only`` ("bigcommerce"
or "b2b": the one API the faults hit).

An account of the GraphQL Account API (:mod:`~broker.sandbox.store.accounts`) has switches of
its own, parsed here too (``parse_faults(..., apis=ACCOUNT_APIS,
allowed=ACCOUNT_FAULT_SWITCHES)``): the same names but ``credentials_quota`` and
``clock_offset``, ``quota`` standing for its hourly limit and ``only`` taking "account"; its
window is an hour long (:class:`RateWindow` ``window_ms``).
"""

from __future__ import annotations

import http
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.sandbox.store.model import JSONDict, SandboxError, is_int
from broker.sandbox.store.v3 import ApiError

WINDOW_MS = 30_000
DEFAULT_QUOTA = 150
DEFAULT_CREDENTIALS_QUOTA = 5
DEFAULT_FAULT_RESET_MS = 1_000
# The two APIs of a store, as the `only` fault switch names them: BigCommerce's own
# (/stores/<hash>/v2|v3) and B2B Edition's (/api/v3/io).
BIGCOMMERCE_API = "bigcommerce"
B2B_API = "b2b"
STORE_APIS = (BIGCOMMERCE_API, B2B_API)
# The GraphQL Account API (/accounts/<uuid>/graphql), as an account's `only` switch names it.
ACCOUNT_API = "account"
ACCOUNT_APIS = (ACCOUNT_API,)


@dataclass
class RateWindow:
    """A fixed window of requests (30 seconds unless ``window_ms`` says otherwise), started by
    the first request in it."""

    start: float | None = None
    used: int = 0
    window_ms: int = WINDOW_MS

    def _roll(self, now: float) -> float:
        if self.start is None or now >= self.start + self.window_ms / 1000 or now < self.start:
            self.start = now
            self.used = 0
        return self.start

    def consume(self, now: float, quota: int) -> bool:
        """Count one request; False (and nothing counted) when the quota is used up."""
        self._roll(now)
        if self.used >= quota:
            return False
        self.used += 1
        return True

    def headers(self, now: float, quota: int) -> dict[str, str]:
        start = self._roll(now)
        reset_ms = max(0, math.ceil((start + self.window_ms / 1000 - now) * 1000))
        return rate_headers(quota, max(0, quota - self.used), reset_ms, self.window_ms)


@dataclass
class Faults:
    """A store's fault switches, parsed; the counted ones count down here."""

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
    switches: JSONDict = field(default_factory=dict)  # as they were set


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
# An account has no validate-credentials and no clock of its own.
ACCOUNT_FAULT_SWITCHES = FAULT_SWITCHES - {"credentials_quota", "clock_offset"}


def parse_faults(
    switches: Mapping[str, Any],
    now: float,
    *,
    apis: Collection[str] = STORE_APIS,
    allowed: frozenset[str] = FAULT_SWITCHES,
) -> Faults:
    """The faults these switches set (no switch: none); SandboxError names a bad one.

    ``apis`` are the names ``only`` may take, ``allowed`` the switches (a store's by default).
    """
    unknown = sorted(set(switches) - allowed)
    if unknown:
        raise SandboxError(f"unknown fault switches: {', '.join(unknown)}")
    for name, minimum in _INT_SWITCHES.items():
        value = switches.get(name)
        if value is not None and (not is_int(value) or value < minimum):
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
    if only is not None and only not in apis:
        names = ", ".join(repr(api) for api in apis)
        raise SandboxError(f"only must be {names} or null (every API)")
    count = switches.get("count")
    storm_ms = switches.get("rate_limit_for_ms")
    return Faults(
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


def take_connection_reset(faults: Faults, api: str) -> bool:
    """Whether to drop this request to ``api`` with a TCP reset (counts one down)."""
    if faults.resets_left <= 0 or faults.only not in (None, api):
        return False
    faults.resets_left -= 1
    return True


def take_delay(faults: Faults, api: str) -> tuple[int, int]:
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


def forced_error(
    faults: Faults, window: RateWindow, now: float, api: str, quota: int | None = None
) -> ApiError | None:
    """The error a 429 storm or a status switch imposes on this request to ``api``, if any.

    ``window`` is the API's rate window, whose headers a forced error other than 429 carries;
    ``quota`` the quota they show (the ``quota`` switch's by default).
    """
    if faults.only not in (None, api):
        return None
    quota = faults.quota if quota is None else quota
    if faults.storm_until is not None and now < faults.storm_until:
        reset_ms = max(1, math.ceil((faults.storm_until - now) * 1000))
        storm = rate_headers(quota, 0, reset_ms, window.window_ms)
        return ApiError(429, "Too many requests", headers=storm)
    if faults.status is None or faults.status_left == 0:
        return None
    if faults.status_left is not None:
        faults.status_left -= 1
    headers: dict[str, str] = {}
    if faults.rate_limit_headers:
        if faults.status == 429:
            headers = rate_headers(quota, 0, faults.reset_ms, window.window_ms)
        else:
            headers = window.headers(now, quota)
    return ApiError(faults.status, _phrase(faults.status), headers=headers)


def rate_headers(
    quota: int, left: int, reset_ms: int, window_ms: int = WINDOW_MS
) -> dict[str, str]:
    return {
        "X-Rate-Limit-Time-Window-Ms": str(window_ms),
        "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        "X-Rate-Limit-Requests-Quota": str(quota),
        "X-Rate-Limit-Requests-Left": str(left),
    }


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
