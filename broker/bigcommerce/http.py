"""The one place that knows BigCommerce's rate limits and retries (main API and B2B alike).

Follows docs/bigcommerce-api.md, "Rate limits":

- 429 with ``X-Rate-Limit-Time-Reset-Ms``: wait for the reset, then retry, as long as the
  request's deadline allows; past it, :class:`~broker.errors.RateLimited` (a "busy" page).
  When a response says no quota is left, the next requests wait for the reset first: the quota
  is shared by every app on the store, so a 429 spent is a 429 another app may get.
- A 429 without those headers is platform load: back off and retry within the deadline.
- Timeouts, connection errors and 5xx: idempotent requests retry with jittered backoff;
  a create is never retried blindly (the caller looks up first).
- 401/403 and other unexpected answers: :class:`~broker.errors.BigCommerceUnavailable`,
  unless the caller said it expects that status (``accept``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from broker import metrics
from broker.backchannel import BackChannelClient
from broker.errors import BigCommerceUnavailable, RateLimited

#: Total time one logical request may take, waits for rate-limit resets included.
DEFAULT_DEADLINE_SECONDS = 8.0
MAX_ATTEMPTS = 4


class StoreHTTP:
    """A pooled, thread-safe client for one API of one store, with its quota state."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        store: str = "",
        api: str = "store",
    ) -> None:
        #: The metrics' labels: the store's key and which API (store, b2b, app).
        self._labels = (store, api)
        self._http = BackChannelClient(
            base_url=base_url,
            headers={
                **headers,
                "Accept": "application/json",
                "User-Agent": "storefront-sso-broker",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )
        self._clock = clock
        self._sleep = sleep
        self._deadline_seconds = deadline_seconds
        self._quota_lock = threading.Lock()
        self._quota_exhausted_until = 0.0
        #: The last answer's quota: (requests left, the window's quota, when it resets).
        self._last_quota: tuple[int, int, float] | None = None

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one logical request; statuses in ``accept`` are returned, not raised."""
        deadline = self._clock() + self._deadline_seconds
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_quota(deadline, f"{method} {path}")
            started = time.perf_counter()
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                metrics.bigcommerce_answered(*self._labels, None, time.perf_counter() - started)
                if not idempotent or not self._may_retry(attempt, deadline, _backoff(attempt)):
                    raise BigCommerceUnavailable(
                        "The store could not be reached. Please try again shortly.",
                        detail=f"{method} {path}: {type(exc).__name__}",
                    ) from None
                continue
            status = response.status_code
            metrics.bigcommerce_answered(*self._labels, status, time.perf_counter() - started)
            self._note_quota(response)
            if status in accept:
                return response
            if status == 429:
                wait = _rate_limit_wait(response, attempt)
                if self._may_retry(attempt, deadline, wait):
                    continue
                raise RateLimited(
                    "The store is busy right now.",
                    retry_after=math.ceil(wait),
                    detail=f"{method} {path}: 429",
                )
            if status >= 500:
                if idempotent and self._may_retry(attempt, deadline, _backoff(attempt)):
                    continue
                raise BigCommerceUnavailable(
                    "The store is not answering right now. Please try again shortly.",
                    detail=f"{method} {path}: {status}",
                )
            if status >= 400:
                raise BigCommerceUnavailable(
                    "The store refused the broker's request.",
                    detail=f"{method} {path}: {status}",
                )
            return response

    def spare(self, reserve: float) -> float | None:
        """None when background work may use the store's quota now; else the seconds until
        the window resets. ``reserve``: the share of the window's quota kept for shoppers
        (the quota is shared by every request of the store: sign-ins come first)."""
        with self._quota_lock:
            known = self._last_quota
        if known is None:
            return None
        left, quota, resets_at = known
        wait = resets_at - self._clock()
        if wait <= 0 or left > quota * reserve:
            return None
        return wait

    def _note_quota(self, response: httpx.Response) -> None:
        left = response.headers.get("X-Rate-Limit-Requests-Left", "")
        reset_ms = response.headers.get("X-Rate-Limit-Time-Reset-Ms", "")
        quota = response.headers.get("X-Rate-Limit-Requests-Quota", "")
        if left.isdigit() and quota.isdigit() and reset_ms.isdigit():
            with self._quota_lock:
                self._last_quota = (int(left), int(quota), self._clock() + int(reset_ms) / 1000)
        if left == "0" and reset_ms.isdigit():
            with self._quota_lock:
                self._quota_exhausted_until = self._clock() + int(reset_ms) / 1000

    def _wait_for_quota(self, deadline: float, what: str) -> None:
        with self._quota_lock:
            wait = self._quota_exhausted_until - self._clock()
        if wait <= 0:
            return
        if self._clock() + wait >= deadline:
            raise RateLimited(
                "The store is busy right now.", retry_after=math.ceil(wait), detail=f"{what}: quota"
            )
        self._sleep(wait)

    def _may_retry(self, attempt: int, deadline: float, wait: float) -> bool:
        """Sleep ``wait`` and say yes when another attempt fits in the deadline."""
        if attempt >= MAX_ATTEMPTS or self._clock() + wait >= deadline:
            return False
        self._sleep(wait)
        return True


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: 0-0.2 s, 0-0.4 s, 0-0.8 s..."""
    return random.uniform(0, 0.2 * 2 ** (attempt - 1))  # noqa: S311 - jitter, not secrecy


def _rate_limit_wait(response: httpx.Response, attempt: int) -> float:
    reset_ms = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
    if reset_ms and reset_ms.isdigit():
        return int(reset_ms) / 1000 + 0.05
    return 1.0 + _backoff(attempt)  # platform load: no headers, back off
