"""The account side of :class:`~broker.sandbox.store.state.SandboxState`: the GraphQL Account
API's accounts, what tests, ``broker demo`` and the blueprints do with them.

:class:`AccountDesk` is a mixin of ``SandboxState``: each method takes the state's one lock
and runs the pure rules of :mod:`~broker.sandbox.store.accounts` and
:mod:`~broker.sandbox.store.account_graphql` on the account and the stores' data (their
control-panel users are the accounts' store users). Facts followed (``docs/bigcommerce-api.md``,
"GraphQL Account API"): 70 requests an hour per account for everything under ``/accounts``,
HTTP 429 over it.

Where the sandbox decides (not verified BigCommerce behaviour): the order of the checks of one
request under ``/accounts/<uuid>/``: an unknown account is 404 (counted nowhere); then the
request is counted in the account's hourly window (429 ``{"status", "title"}`` when it is
used up), then the account's fault switches (a forced status), then the ``X-Auth-Token``
(401), then the path (404 for anything but ``graphql``, 405 for anything but ``POST``), then
GraphQL; so a refused request is counted too. Every answer but a 404 for an unknown account
carries the window's ``X-Rate-Limit-*`` headers (``X-Rate-Limit-Time-Window-Ms`` 3600000).
A TCP reset (the ``resets`` switch) comes before anything and is not counted. Each counted
request is logged: time, operation name, status, the codes of its GraphQL errors.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broker.sandbox.store import account_graphql, accounts
from broker.sandbox.store.account_graphql import AccountCall
from broker.sandbox.store.accounts import (
    ALREADY_EXISTS,
    FORBIDDEN,
    NOT_FOUND,
    Account,
    AccountError,
    AccountRegistry,
)
from broker.sandbox.store.data import StoreData
from broker.sandbox.store.faults import (
    ACCOUNT_API,
    ACCOUNT_APIS,
    ACCOUNT_FAULT_SWITCHES,
    forced_error,
    parse_faults,
    take_connection_reset,
    take_delay,
)
from broker.sandbox.store.model import (
    Clock,
    JSONDict,
    SandboxConflict,
    SandboxError,
    SandboxForbidden,
    SandboxNotFound,
    copy_json,
)
from broker.sandbox.store.v3 import ApiError, ApiReply

GRAPHQL_PATH = "graphql"


class AccountDesk:
    """The GraphQL Account API's accounts (a mixin of SandboxState)."""

    _lock: threading.Lock
    _clock: Clock
    _stores: dict[str, StoreData]
    _accounts: AccountRegistry

    # the control API -------------------------------------------------------------------------

    def add_account(self, **fields: Any) -> JSONDict:
        """Register an account: ``name``, ``stores`` (hashes of existing stores), and
        optionally ``uuid``, ``token``, ``scopes``, ``requests_per_hour``; the answer holds its
        uuid and token. SandboxConflict when the uuid or a store is taken."""
        account = accounts.new_account(fields)
        with self._lock:
            accounts.register(self._accounts, account, self._stores, self._clock())
            return accounts.created_json(account)

    def account(self, account_uuid: str) -> JSONDict:
        """The account's users, each store's users and the request log (never its token)."""
        with self._lock:
            found = self._account(account_uuid)
            return accounts.account_json(self._accounts, found, self._stores)

    def add_account_user(
        self, account_uuid: str, email: Any, first_name: Any = "", last_name: Any = ""
    ) -> JSONDict:
        """Seed a user of the account (of none of its stores)."""
        if not isinstance(first_name, str) or not isinstance(last_name, str):
            raise SandboxError("first_name and last_name must be strings")
        with self._lock:
            found = self._account(account_uuid)
            with _as_sandbox_error():
                user = accounts.add_to_account(
                    self._accounts, found, email, self._clock(), first_name, last_name
                )
            return accounts.user_json(user)

    def set_account_faults(self, account_uuid: str, **switches: Any) -> None:
        """Replace the account's fault switches (the store ones' names, but
        ``credentials_quota`` and ``clock_offset``; ``quota`` is the hourly limit while set;
        ``only`` may be "account"); the hourly window restarts."""
        with self._lock:
            found = self._account(account_uuid)
            found.faults = parse_faults(
                switches, self._clock(), apis=ACCOUNT_APIS, allowed=ACCOUNT_FAULT_SWITCHES
            )
            found.window = accounts.hour_window()

    def account_faults(self, account_uuid: str) -> JSONDict:
        with self._lock:
            return copy_json(self._account(account_uuid).faults.switches)

    # the HTTP layer --------------------------------------------------------------------------

    def take_account_reset(self, account_uuid: str) -> bool:
        """Whether to drop the next request to the account with a TCP reset."""
        with self._lock:
            found = self._accounts.accounts.get(account_uuid.lower())
            return found is not None and take_connection_reset(found.faults, ACCOUNT_API)

    def account_delay(self, account_uuid: str) -> tuple[float, float]:
        """Seconds to sleep before and after handling the next request to the account."""
        with self._lock:
            found = self._accounts.accounts.get(account_uuid.lower())
            before, after = (0, 0) if found is None else take_delay(found.faults, ACCOUNT_API)
            return before / 1000, after / 1000

    def handle_account(
        self, account_uuid: str, method: str, path: str, token: str | None, body: bytes
    ) -> ApiReply:
        """One request under ``/accounts/<uuid>/``: the answer, or an ApiError (the order of
        the checks is in the module's docstring)."""
        with self._lock:
            found = self._accounts.accounts.get(account_uuid.lower())
            if found is None:
                raise ApiError(404, "Account not found")
            now = self._clock()
            try:
                reply = self._answer(found, method, path, token, body, now)
            except ApiError as error:
                _log(found, now, account_graphql.operation_of(body), error.status, ())
                raise
            return reply

    def _answer(
        self, found: Account, method: str, path: str, token: str | None, body: bytes, now: float
    ) -> ApiReply:
        window, limit = found.window, found.limit
        if not window.consume(now, limit):
            raise ApiError(429, "Too many requests", headers=window.headers(now, limit))
        headers = window.headers(now, limit)
        forced = forced_error(found.faults, window, now, ACCOUNT_API, limit)
        if forced is not None:
            raise forced
        if token is None or not hmac.compare_digest(token.encode(), found.token.encode()):
            raise ApiError(401, "Unauthorized: missing or invalid X-Auth-Token", headers=headers)
        if path != GRAPHQL_PATH:
            raise ApiError(404, "The route is not found, check the URL", headers=headers)
        if method != "POST":
            raise ApiError(405, "Method not allowed", headers=headers)
        accounts.sync(self._accounts, found, self._stores, now)
        call = AccountCall(self._accounts, found, self._stores, now)
        result = account_graphql.answer(call, body)
        _log(found, now, result.operation, result.status, result.codes)
        return ApiReply(result.status, result.body, headers)

    def _account(self, account_uuid: str) -> Account:
        found = accounts.get_account(self._accounts, account_uuid)
        accounts.sync(self._accounts, found, self._stores, self._clock())
        return found


def _log(
    found: Account, now: float, operation: str | None, status: int, codes: tuple[str, ...]
) -> None:
    found.requests.append(
        {"time": now, "operation": operation, "status": status, "codes": list(codes)}
    )


@contextmanager
def _as_sandbox_error() -> Iterator[None]:
    """The Account API's refusals as the control API's errors (404, 409, 403, else 422)."""
    try:
        yield
    except AccountError as error:
        kinds: dict[str, type[SandboxError]] = {
            NOT_FOUND: SandboxNotFound,
            ALREADY_EXISTS: SandboxConflict,
            FORBIDDEN: SandboxForbidden,
        }
        raise kinds.get(error.code, SandboxError)(error.message) from None
