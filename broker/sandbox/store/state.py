"""The sandbox's in-memory state: every fake store, one lock, the request log, webhook threads.

No framework. :class:`SandboxState` is what tests, ``bench/`` and ``broker demo`` drive from
Python (``add_store``, ``add_customer``, ``customers``, ``requests``, ``logins``,
``set_faults``...) and what the blueprints call for every request. One lock guards it all:
each method takes it, runs the pure functions of the other modules on one store's
:class:`~broker.sandbox.store.data.StoreData`, and lets go. Two things happen outside it: the
HTTP layer's sleeps (latency and timeout faults), and webhook deliveries, which are decided
under the lock (so the delivery log is complete as soon as the change is made) and sent by
background threads once it is released, in no promised order, as BigCommerce promises none
(``docs/bigcommerce-api.md``, "Webhooks").

The request log holds every request to either management API that named a known store, with
the status it answered; passwords and hook headers (usually a shared secret) are redacted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.datastructures import MultiDict

from broker.sandbox import b2b
from broker.sandbox.store import customers, hooks, login, management
from broker.sandbox.store.account_desk import AccountDesk
from broker.sandbox.store.accounts import AccountRegistry
from broker.sandbox.store.app_desk import AppDesk
from broker.sandbox.store.apps import AppRegistry
from broker.sandbox.store.channels import ChannelDesk
from broker.sandbox.store.data import Directory, StoreData, remove_customers
from broker.sandbox.store.faults import (
    BIGCOMMERCE_API,
    RateWindow,
    parse_faults,
    take_connection_reset,
    take_delay,
)
from broker.sandbox.store.login import LoginOutcome
from broker.sandbox.store.model import (
    Clock,
    JSONDict,
    RecordedRequest,
    SandboxConflict,
    SandboxError,
    SandboxNotFound,
    SandboxStore,
    check_store,
    copy_json,
    is_int,
)
from broker.sandbox.store.v3 import ApiError, ApiReply, ApiRequest

# Hook headers usually carry the receiver's shared secret: kept out of the request log too.
_REDACTED_KEYS = frozenset({"password", "new_password", "headers"})


class SandboxState(AppDesk, ChannelDesk, AccountDesk):
    """Every fake store's data, logs and switches. Thread-safe: one lock guards it all.

    The app side (apps, installs, control-panel users, scripts, customer groups) is
    :class:`~broker.sandbox.store.app_desk.AppDesk`'s; the GraphQL Account API's accounts
    are :class:`~broker.sandbox.store.account_desk.AccountDesk`'s.

    Webhook deliveries are decided under the lock (so the delivery log is complete as soon as
    the change is made) and sent by background threads once it is released.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a delivery finished
        self._stores: dict[str, StoreData] = {}
        self._apps = AppRegistry()  # the apps every store may install, and their codes
        self._accounts = AccountRegistry()  # the GraphQL Account API's accounts

    # public Python API (tests and `broker demo`) ---------------------------------------------

    def add_store(self, store: SandboxStore) -> None:
        """Register a store; SandboxError for bad settings, SandboxConflict if it exists."""
        check_store(store)
        with self._lock:
            if store.store_hash in self._stores:
                raise SandboxConflict(f"store {store.store_hash!r} already exists")
            self._stores[store.store_hash] = StoreData.empty(store)

    def store(self, store_hash: str) -> SandboxStore:
        with self._lock:
            return self._get(store_hash).settings

    def customers(self, store_hash: str) -> list[JSONDict]:
        with self._lock:
            st = self._get(store_hash)
            return [copy_json(c) for _, c in sorted(st.customers.records.items())]

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
                created = customers.create(st.customers, st.settings, [item], self._clock())
            except ApiError as exc:
                raise SandboxError(f"{exc.title}: {exc.errors}") from None
            return copy_json(created[0])

    def delete_customer(self, store_hash: str, customer_id: int) -> None:
        """Delete one customer as a merchant would in the control panel: hooks are notified.

        (Seeding with :meth:`add_customer` notifies no hook: it sets up the world.)
        """
        with self._lock:
            st = self._get(store_hash)
            if not is_int(customer_id) or customer_id not in st.customers.records:
                raise SandboxNotFound(f"no customer {customer_id!r} in store {store_hash!r}")
            remove_customers(st, [customer_id], self._clock())
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
            return [copy_json(entry) for entry in self._get(store_hash).login.logins]

    def password_logins(self, store_hash: str) -> list[JSONDict]:
        """Every storefront password sign-in: method ("password"), ok, reason, email,
        customer_id, channel_id, time (never the password)."""
        with self._lock:
            return [copy_json(entry) for entry in self._get(store_hash).login.password_logins]

    def hooks(self, store_hash: str) -> list[JSONDict]:
        """The store's webhooks, as ``GET /v3/hooks`` shows them."""
        with self._lock:
            registered = self._get(store_hash).hooks.registered
            return [copy_json(hook) for _, hook in sorted(registered.items())]

    def deliveries(self, store_hash: str) -> list[JSONDict]:
        """Every webhook delivery so far, oldest first: index, hook_id, scope, destination,
        payload, status (the receiver's answer) or error, done, redelivery_of, time."""
        with self._lock:
            return [d.to_json() for d in self._get(store_hash).hooks.deliveries]

    def redeliver(self, store_hash: str, index: int) -> int:
        """POST delivery ``index``'s exact payload again (same ``hash``), as BigCommerce's
        retries do; the index of the new delivery."""
        with self._lock:
            st = self._get(store_hash)
            again = hooks.redeliver(st.hooks, index, self._clock())
            if again is None:
                raise SandboxNotFound(f"no delivery {index!r} in store {store_hash!r}")
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
            book = self._get(store_hash).hooks

            def finished() -> bool:
                return len(book.deliveries) >= count and all(d.done for d in book.deliveries)

            if not self._changed.wait_for(finished, timeout):
                seen = [(d.index, d.scope, d.done) for d in book.deliveries]
                raise TimeoutError(
                    f"waited {timeout}s for {count} finished deliveries; have {seen}"
                )
            return [d.to_json() for d in book.deliveries]

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
                    st.b2b_book, Directory(st, now), customer_id, company_id, role, now
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

    # fault switches ----------------------------------------------------------------------------

    def set_faults(self, store_hash: str, **switches: Any) -> None:
        """Replace the store's fault switches (no switch: clear them); rate windows restart."""
        with self._lock:
            st = self._get(store_hash)
            st.faults = parse_faults(switches, self._clock())
            st.api_window = RateWindow()
            st.credentials_window = RateWindow()
            st.b2b_window = RateWindow()

    def faults(self, store_hash: str) -> JSONDict:
        with self._lock:
            return copy_json(self._get(store_hash).faults.switches)

    # the app's side ----------------------------------------------------------------------

    def has_store(self, store_hash: str) -> bool:
        with self._lock:
            return store_hash in self._stores

    def take_reset(self, store_hash: str, api: str = BIGCOMMERCE_API) -> bool:
        """Whether to drop the next request to ``api`` with a TCP reset (the ``resets``
        switch: that many requests, before the store acts on them)."""
        with self._lock:
            st = self._stores.get(store_hash)
            return st is not None and take_connection_reset(st.faults, api)

    def api_delay(self, store_hash: str, api: str = BIGCOMMERCE_API) -> tuple[float, float]:
        """Seconds to sleep before and after handling the next request to ``api``."""
        with self._lock:
            st = self._stores.get(store_hash)
            before, after = (0, 0) if st is None else take_delay(st.faults, api)
            return before / 1000, after / 1000

    def handle_api(self, store_hash: str, req: ApiRequest) -> ApiReply:
        """One request to BigCommerce's API, logged; an error answer is raised as ApiError
        (logged too, unless the store is unknown)."""
        try:
            with self._lock:
                st = self._stores.get(store_hash)
                if st is None:
                    raise ApiError(404, "Store not found")
                now = self._clock()
                path = f"/{req.version}/{req.rest}"
                try:
                    reply = management.answer_api(st, req, now)
                except ApiError as error:
                    _record(st, req.method, path, req.args, req.body, error.status, now)
                    raise
                _record(st, req.method, path, req.args, req.body, reply.status, now)
                return reply
        finally:
            self._start_deliveries(store_hash)

    def handle_b2b(
        self, store_hash: str | None, token: str | None, req: b2b.B2BRequest
    ) -> ApiReply:
        """One B2B Edition request: the store named by X-Store-Hash, its token checked. An
        error before B2B Edition's own answer is raised as ApiError (logged for a known store)."""
        try:
            with self._lock:
                st = self._stores.get(store_hash or "")
                if store_hash is None or st is None:
                    raise ApiError(401, b2b.UNAUTHORIZED)
                now = self._clock()
                path = f"{b2b.BASE_PATH}/{req.path}"
                try:
                    reply = management.answer_b2b(st, token, req, now)
                except ApiError as error:
                    _record(st, req.method, path, req.args, req.body, error.status, now)
                    raise
                _record(st, req.method, path, req.args, req.body, reply.status, now)
                return reply
        finally:
            if store_hash is not None:
                self._start_deliveries(store_hash)

    def attempt_login(
        self, store_hash: str, token: str, remote_addr: str | None, old_session: str | None
    ) -> LoginOutcome:
        with self._lock:
            st = self._get(store_hash)
            now = self._clock() + st.faults.clock_offset
            return login.attempt_login(
                st.login,
                st.settings,
                st.customers,
                token,
                remote_addr,
                old_session,
                now,
                self._app_secrets(st),
            )

    def password_login(
        self, store_hash: str, email: str, password: str, old_session: str | None
    ) -> LoginOutcome:
        """The storefront's password form: the check validate-credentials makes, on the
        storefront's channel; a new session when it passes."""
        with self._lock:
            st = self._get(store_hash)
            return login.password_login(
                st.login, st.settings, st.customers, email, password, old_session, self._clock()
            )

    def session_customer(self, store_hash: str, session_id: str | None) -> JSONDict | None:
        with self._lock:
            st = self._get(store_hash)
            customer = login.session_customer(st.login, st.customers, session_id)
            return copy_json(customer) if customer is not None else None

    def end_session(self, store_hash: str, session_id: str | None) -> None:
        with self._lock:
            login.end_session(self._get(store_hash).login, session_id)

    def current_customer_jwt(
        self, store_hash: str, session_id: str | None, app_client_id: str | None = None
    ) -> str | None:
        """The Current Customer JWT of the signed-in customer, None for a guest; for the
        store's own client id (by default) or an installed app's (SandboxNotFound for any
        other)."""
        with self._lock:
            st = self._get(store_hash)
            signers = login.signing_keys(st.settings, self._app_secrets(st))
            client_id = app_client_id or st.settings.client_id
            if client_id not in signers:
                raise SandboxNotFound(f"no app {client_id!r} on store {store_hash!r}")
            customer = login.session_customer(st.login, st.customers, session_id)
            if customer is None:
                return None
            now = int(self._clock() + st.faults.clock_offset)
            return login.current_customer_jwt(
                st.settings, customer, now, client_id, signers[client_id]
            )

    def _get(self, store_hash: str) -> StoreData:
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
            if st is None or not st.hooks.outbox:
                return
            pending = hooks.take_outbox(st.hooks)
        for index in pending:
            threading.Thread(
                target=self._deliver,
                args=(store_hash, index),
                name=f"sandbox-webhook-{store_hash}-{index}",
                daemon=True,
            ).start()

    def _deliver(self, store_hash: str, index: int) -> None:
        with self._lock:
            delivery = self._stores[store_hash].hooks.deliveries[index]
            destination, headers = delivery.destination, dict(delivery.headers)
            body = delivery.body()
        status, error = hooks.send(destination, headers, body)
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


# -- the request log ---------------------------------------------------------------------------


def _record(
    st: StoreData,
    method: str,
    path: str,
    args: MultiDict[str, str],
    body: bytes,
    status: int,
    now: float,
) -> None:
    """Log one API request (main API or B2B) in the store's request log."""
    st.requests.append(
        RecordedRequest(
            method=method,
            path=path,
            query=args.to_dict(),
            status=status,
            body=_recorded_body(body),
            time=now,
        )
    )


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
