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
- the GraphQL Account API at ``POST /accounts/<uuid>/graphql`` (graphql-core runs its SDL):
  an account's users and its stores' users (the stores' control-panel users), cursor paging,
  adding and removing users to the account and its stores, token scopes, 70 requests an hour
  per account (429 with ``X-Rate-Limit-*`` headers), errors with ``extensions.code``;
- the app side of BigCommerce: apps any store may install (each with its client id and
  secret, scopes, and callbacks under ``{callback_base}/bigcommerce/``: ``auth``, ``load``,
  ``uninstall``, ``remove_user``), control-panel users (the owner is user 1,
  ``owner@<hash>.example``), the OAuth token endpoint ``POST /oauth2/token`` (single-use
  codes that live 10 minutes, bound to app, store and ``redirect_uri``), the app's token
  accepted by the store's API beside the store's own, Customer Login JWTs and Current
  Customer JWTs of installed apps (signed with the app's secret), signed ``load``,
  ``uninstall`` and ``remove_user`` payloads (the last two sent server to server), the
  Scripts API at ``/v3/content/scripts`` (rendered on storefront pages), customer groups at
  ``/v2/customer_groups``, and a control-panel page ``GET /manage/<hash>/apps/<client_id>
  ?user=<id>`` that opens the app in ``<iframe id="app-frame">`` (the install while it is not
  installed, then the load) with an "Uninstall app" button;
- a JSON control API at ``/_sandbox/`` to register stores, seed data, read the request, login
  and delivery logs and set fault switches (latency, 5xx, 429 storms, timeouts, connection
  resets, quotas, clock offset); and for apps (:mod:`~broker.sandbox.store.control_apps`):
  ``POST /_sandbox/apps``, ``POST .../stores/<hash>/users``, ``POST
  .../stores/<hash>/apps/<client_id>/install | load | uninstall | grant | revoke``,
  ``POST /_sandbox/apps/<client_id>/payload`` (a payload with chosen faults),
  ``POST .../stores/<hash>/customer_groups``, and logs of token exchanges and callbacks; and
  for accounts (:mod:`~broker.sandbox.store.control_accounts`): ``POST /_sandbox/accounts``,
  ``GET /_sandbox/accounts/<uuid>``, ``POST .../users``, ``POST .../faults``.

It never replaces BigCommerce in production, and it imports nothing from the broker. One
module per concern; the pure ones (no IO, no framework, as :mod:`broker.sandbox.b2b`) under
the thin HTTP ones:

- :mod:`~broker.sandbox.store.model`: a store's settings, the errors, JSON helpers;
- :mod:`~broker.sandbox.store.v3`: the API's conventions (error shape, filters, pagination);
- :mod:`~broker.sandbox.store.faults`: rate windows and fault switches;
- :mod:`~broker.sandbox.store.customers`: Customers V3;
- :mod:`~broker.sandbox.store.hooks`: webhooks and their deliveries;
- :mod:`~broker.sandbox.store.login`: storefront sign-in, sessions, Current Customer JWT;
- :mod:`~broker.sandbox.store.apps`: apps, install codes, the token exchange;
- :mod:`~broker.sandbox.store.installs`: a store's control-panel users, installs, tokens;
- :mod:`~broker.sandbox.store.payloads`: the signed payloads of the app callbacks;
- :mod:`~broker.sandbox.store.accounts`: the Account API's accounts, their users and stores;
- :mod:`~broker.sandbox.store.account_graphql`: its GraphQL schema and execution;
- :mod:`~broker.sandbox.store.scripts`: the Scripts API and the storefront's script tags;
- :mod:`~broker.sandbox.store.groups`: customer groups;
- :mod:`~broker.sandbox.store.data`: one store's data, and changes that cross concerns;
- :mod:`~broker.sandbox.store.management`: the two APIs' checks and routes;
- :mod:`~broker.sandbox.store.state`: :class:`SandboxState`, the lock, the request log;
  :mod:`~broker.sandbox.store.app_desk`: its app side (and the callbacks' one IO);
  :mod:`~broker.sandbox.store.account_desk`: its accounts;
- :mod:`~broker.sandbox.store.web`, :mod:`~broker.sandbox.store.api`,
  :mod:`~broker.sandbox.store.storefront`, :mod:`~broker.sandbox.store.control`,
  :mod:`~broker.sandbox.store.control_apps`, :mod:`~broker.sandbox.store.control_accounts`,
  :mod:`~broker.sandbox.store.control_panel`: the blueprints;
  :mod:`~broker.sandbox.store.app`: :func:`create_sandbox_app`.

Errors::

    SandboxError (ValueError)    bad input to the Python or control API (422)
     +-- SandboxNotFound         no such store, customer, company, delivery, app or user (404)
     +-- SandboxConflict         the store, app or user already exists (409)
     +-- SandboxForbidden        the app is not installed, or not granted to the user (403)
"""

from __future__ import annotations

from broker.sandbox.store.accounts import (
    ACCOUNT_SCOPES,
    DEFAULT_REQUESTS_PER_HOUR,
    HOUR_MS,
    AccountError,
)
from broker.sandbox.store.app import create_sandbox_app
from broker.sandbox.store.app_desk import CALLBACK_TIMEOUT
from broker.sandbox.store.apps import CODE_LIFETIME, OAuthError, SandboxApp
from broker.sandbox.store.customers import MAX_BATCH, PASSWORD_HASH_METHOD
from broker.sandbox.store.faults import (
    ACCOUNT_API,
    B2B_API,
    BIGCOMMERCE_API,
    DEFAULT_CREDENTIALS_QUOTA,
    DEFAULT_FAULT_RESET_MS,
    DEFAULT_QUOTA,
    FAULT_SWITCHES,
    WINDOW_MS,
)
from broker.sandbox.store.hooks import DELIVERY_TIMEOUT, HOOK_SCOPES, MAX_HOOKS_PER_SCOPE
from broker.sandbox.store.installs import OWNER_ID
from broker.sandbox.store.login import CURRENT_JWT_LIFETIME, DEFAULT_REDIRECT, LOGIN_JWT_MAX_AGE
from broker.sandbox.store.model import (
    Clock,
    JSONDict,
    RecordedRequest,
    SandboxConflict,
    SandboxError,
    SandboxForbidden,
    SandboxNotFound,
    SandboxStore,
)
from broker.sandbox.store.payloads import PAYLOAD_LIFETIME, PayloadFaults
from broker.sandbox.store.state import SandboxState
from broker.sandbox.store.v3 import DEFAULT_LIMIT, ERROR_TYPE, MAX_LIMIT

__all__ = [
    "ACCOUNT_API",
    "ACCOUNT_SCOPES",
    "B2B_API",
    "BIGCOMMERCE_API",
    "CALLBACK_TIMEOUT",
    "CODE_LIFETIME",
    "CURRENT_JWT_LIFETIME",
    "DEFAULT_CREDENTIALS_QUOTA",
    "DEFAULT_FAULT_RESET_MS",
    "DEFAULT_LIMIT",
    "DEFAULT_QUOTA",
    "DEFAULT_REDIRECT",
    "DEFAULT_REQUESTS_PER_HOUR",
    "DELIVERY_TIMEOUT",
    "ERROR_TYPE",
    "FAULT_SWITCHES",
    "HOOK_SCOPES",
    "HOUR_MS",
    "LOGIN_JWT_MAX_AGE",
    "MAX_BATCH",
    "MAX_HOOKS_PER_SCOPE",
    "MAX_LIMIT",
    "OWNER_ID",
    "PASSWORD_HASH_METHOD",
    "PAYLOAD_LIFETIME",
    "WINDOW_MS",
    "AccountError",
    "Clock",
    "JSONDict",
    "OAuthError",
    "PayloadFaults",
    "RecordedRequest",
    "SandboxApp",
    "SandboxConflict",
    "SandboxError",
    "SandboxForbidden",
    "SandboxNotFound",
    "SandboxState",
    "SandboxStore",
    "create_sandbox_app",
]
