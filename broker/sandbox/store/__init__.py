"""A faithful local BigCommerce store: a test double for our tests and for ``broker demo``.

It follows the checked API facts in ``docs/bigcommerce-api.md`` and "The sandbox" in
``DESIGN.md``. One Flask app (built by :func:`create_sandbox_app`) serves any number of fake
stores, each registered as a :class:`SandboxStore`:

- the management API at ``/stores/<hash>/v3/...`` and ``/stores/<hash>/v2/...`` with the real
  quirks (``X-Auth-Token``, array bodies of at most 10, no ``GET /customers/{id}``, 422 on a
  duplicate e-mail within overlapping channels, 422 on an unknown filter,
  ``X-Rate-Limit-*`` headers from a real 30-second window, a stricter limit on
  ``validate-credentials``, ``GET /v2/time``), and webhooks at ``/v3/hooks`` for the customer
  scopes, delivered from background threads, logged, and sent again on request;
- the storefront at ``/s/<hash>/``: ``/login/token/<jwt>`` checked the way BigCommerce checks
  it, the password form, the account page, logout, ``/customer/current.jwt``, and a store's
  ``theme_script_url`` on every page;
- B2B Edition's management API at ``/api/v3/io/...`` (:mod:`broker.sandbox.b2b` holds its
  rules);
- a JSON control API at ``/_sandbox/`` to register stores, seed data, read the request, login
  and delivery logs and set fault switches (latency, 5xx, 429 storms, timeouts, connection
  resets, quotas, clock offset).

It never replaces BigCommerce in production, and it imports nothing from the broker. One
module per concern; the pure ones (no IO, no framework, as :mod:`broker.sandbox.b2b`) under
the thin HTTP ones:

- :mod:`~broker.sandbox.store.model`: a store's settings, the errors, JSON helpers;
- :mod:`~broker.sandbox.store.v3`: the API's conventions (error shape, filters, pagination);
- :mod:`~broker.sandbox.store.faults`: rate windows and fault switches;
- :mod:`~broker.sandbox.store.customers`: Customers V3;
- :mod:`~broker.sandbox.store.hooks`: webhooks and their deliveries;
- :mod:`~broker.sandbox.store.login`: storefront sign-in, sessions, Current Customer JWT;
- :mod:`~broker.sandbox.store.data`: one store's data, and changes that cross concerns;
- :mod:`~broker.sandbox.store.management`: the two APIs' checks and routes;
- :mod:`~broker.sandbox.store.state`: :class:`SandboxState`, the lock, the request log;
- :mod:`~broker.sandbox.store.web`, :mod:`~broker.sandbox.store.api`,
  :mod:`~broker.sandbox.store.storefront`, :mod:`~broker.sandbox.store.control`: the
  blueprints; :mod:`~broker.sandbox.store.app`: :func:`create_sandbox_app`.

Errors::

    SandboxError (ValueError)    bad input to the Python or control API (422)
     +-- SandboxNotFound         no such store, customer, company or delivery (404)
     +-- SandboxConflict         the store already exists (409)
"""

from __future__ import annotations

from broker.sandbox.store.app import create_sandbox_app
from broker.sandbox.store.customers import MAX_BATCH, PASSWORD_HASH_METHOD
from broker.sandbox.store.faults import (
    B2B_API,
    BIGCOMMERCE_API,
    DEFAULT_CREDENTIALS_QUOTA,
    DEFAULT_FAULT_RESET_MS,
    DEFAULT_QUOTA,
    FAULT_SWITCHES,
    WINDOW_MS,
)
from broker.sandbox.store.hooks import DELIVERY_TIMEOUT, HOOK_SCOPES, MAX_HOOKS_PER_SCOPE
from broker.sandbox.store.login import CURRENT_JWT_LIFETIME, DEFAULT_REDIRECT, LOGIN_JWT_MAX_AGE
from broker.sandbox.store.model import (
    Clock,
    JSONDict,
    RecordedRequest,
    SandboxConflict,
    SandboxError,
    SandboxNotFound,
    SandboxStore,
)
from broker.sandbox.store.state import SandboxState
from broker.sandbox.store.v3 import DEFAULT_LIMIT, ERROR_TYPE, MAX_LIMIT

__all__ = [
    "B2B_API",
    "BIGCOMMERCE_API",
    "CURRENT_JWT_LIFETIME",
    "DEFAULT_CREDENTIALS_QUOTA",
    "DEFAULT_FAULT_RESET_MS",
    "DEFAULT_LIMIT",
    "DEFAULT_QUOTA",
    "DEFAULT_REDIRECT",
    "DELIVERY_TIMEOUT",
    "ERROR_TYPE",
    "FAULT_SWITCHES",
    "HOOK_SCOPES",
    "LOGIN_JWT_MAX_AGE",
    "MAX_BATCH",
    "MAX_HOOKS_PER_SCOPE",
    "MAX_LIMIT",
    "PASSWORD_HASH_METHOD",
    "WINDOW_MS",
    "Clock",
    "JSONDict",
    "RecordedRequest",
    "SandboxConflict",
    "SandboxError",
    "SandboxNotFound",
    "SandboxState",
    "SandboxStore",
    "create_sandbox_app",
]
