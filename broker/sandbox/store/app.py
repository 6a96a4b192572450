"""The sandbox store's Flask app: :func:`create_sandbox_app` and nothing else.

One app serves any number of fake stores; its :class:`~broker.sandbox.store.state.SandboxState`
is at ``app.extensions["sandbox"]``. The blueprints: the control API
(:mod:`~broker.sandbox.store.control`), BigCommerce's management API, B2B Edition's and the
GraphQL Account API (:mod:`~broker.sandbox.store.api`), the storefront
(:mod:`~broker.sandbox.store.storefront`), the control API of apps
(:mod:`~broker.sandbox.store.control_apps`) and of accounts
(:mod:`~broker.sandbox.store.control_accounts`), and the OAuth token endpoint with the
control-panel page (:mod:`~broker.sandbox.store.control_panel`).
"""

from __future__ import annotations

import time

from flask import Flask

from broker.sandbox.store.api import accounts_api, b2b_api, bigcommerce_api
from broker.sandbox.store.channel_pages import channel_storefronts
from broker.sandbox.store.control import control
from broker.sandbox.store.control_accounts import control_accounts
from broker.sandbox.store.control_apps import control_apps
from broker.sandbox.store.control_panel import control_panel
from broker.sandbox.store.model import Clock
from broker.sandbox.store.state import SandboxState
from broker.sandbox.store.storefront import storefront
from broker.sandbox.store.web import EXTENSION


def create_sandbox_app(*, clock: Clock = time.time) -> Flask:
    """A sandbox BigCommerce serving any number of stores; state at extensions["sandbox"]."""
    app = Flask("broker.sandbox.store")
    app.extensions[EXTENSION] = SandboxState(clock)
    app.register_blueprint(control)
    app.register_blueprint(control_apps)
    app.register_blueprint(control_accounts)
    app.register_blueprint(control_panel)
    app.register_blueprint(bigcommerce_api)
    app.register_blueprint(b2b_api)
    app.register_blueprint(accounts_api)
    app.register_blueprint(storefront)
    app.register_blueprint(channel_storefronts)  # /s/<hash>/c/<N>/: the other channels'
    return app
