"""The Flask application factory: settings -> Runtime -> blueprints; nothing else.

``create_app(settings)`` opens the storage, builds the :class:`~broker.runtime.Runtime` (the
stores of the file over those held in the database, and their live clients) and keeps it at
``app.extensions["broker"]``; blueprints read it through :func:`broker.web.context.runtime`.
No module imports this one. Nothing is global but the app, so tests build as many as they like.

In production: ``BROKER_CONFIG=broker.toml gunicorn 'broker.app:create_app()'``.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import FunctionType, MethodType
from typing import Any

import httpx
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from broker.config import Settings, load_settings
from broker.errors import ConfigError
from broker.events import configure_logging
from broker.runtime import Runtime
from broker.storage import open_storage


class BrokerFlask(Flask):
    """Flask, telling a plain function from a coroutine function without ``inspect``: Flask
    asks about every hook and view of every request (``ensure_sync``); anything but a plain
    function or method is asked the usual way."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        target = func.__func__ if type(func) is MethodType else func
        if (
            type(target) is FunctionType
            and not target.__code__.co_flags & _ASYNC
            and "_is_coroutine_marker" not in target.__dict__  # inspect.markcoroutinefunction
        ):
            return func
        return super().ensure_sync(func)


#: The code flags of an ``async def`` (and of a generator-based coroutine).
_ASYNC = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.BaseTransport | None = None,
) -> Flask:
    """Build the broker. Without ``settings``, read the file named by ``BROKER_CONFIG``."""
    if settings is None:
        path = os.environ.get("BROKER_CONFIG")
        if not path:
            raise ConfigError(["BROKER_CONFIG: set it to the path of the broker's TOML file"])
        settings = load_settings(path)
    configure_logging()
    app = BrokerFlask(__name__, template_folder=template_folder())
    app.config.update(
        SECRET_KEY=settings.broker.secret_key,
        # __Host-: Secure, Path=/, no Domain, so no other host of the domain can set or
        # shadow it. It holds random keys only (CSRF, link and confirmation records live in
        # storage): no personal data in the browser.
        SESSION_COOKIE_NAME="__Host-broker_session"
        if settings.broker.cookie_secure
        else "broker_session",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        SESSION_COOKIE_SECURE=settings.broker.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    if settings.broker.trusted_proxies:
        hops = settings.broker.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    runtime = Runtime(
        settings, open_storage(settings.broker.database_url), transport=transport, clock=clock
    )
    problems = runtime.identity_provider_problems()
    if problems:
        raise ConfigError(problems)
    app.extensions["broker"] = runtime

    from broker.web import (
        admin_api,
        admin_pages,
        app_callbacks,
        cookies,
        csrf,
        errors,
        health,
        hooks,
        link,
        logout,
        pages,
        saml,
        scim,
        sso,
        tracing,
    )

    app.session_interface = cookies.SignedSession()
    # A request's statements share one database connection (SQLite: broker.storage.sql.direct).
    app.before_request(runtime.storage.hold_connection)
    app.teardown_request(lambda _error: runtime.storage.release_connection())
    tracing.init_app(app)
    pages.init_app(app)  # before errors: its after-request hook sees their headers
    errors.init_app(app)
    app.jinja_env.globals["csrf_token"] = csrf.csrf_token
    app.register_blueprint(health.bp)
    app.register_blueprint(sso.bp)
    app.register_blueprint(link.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(saml.bp)
    app.register_blueprint(logout.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(admin_pages.bp)
    app.register_blueprint(scim.bp)
    if settings.app is not None:
        app.register_blueprint(app_callbacks.bp)
    return app


def template_folder() -> str:
    """The shopper pages: the top-level ``templates/`` of a source checkout (the one next to
    ``pyproject.toml``); installed, the same files are the package data of ``broker_templates``
    (pyproject.toml maps that name to ``templates/``: a folder of pages, no Python in it)."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "templates").is_dir():
        return str(checkout / "templates")
    spec = importlib.util.find_spec("broker_templates")
    for entry in (spec.submodule_search_locations or []) if spec else []:
        if Path(entry).is_dir():  # an editable install's namespace path holds a placeholder too
            return str(entry)
    raise RuntimeError("the broker's templates are missing: reinstall storefront-sso-broker")
