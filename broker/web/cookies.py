"""The broker's own cookies, one shape for all: HttpOnly, SameSite=Lax, path ``/``, and over
https ``Secure`` with the ``__Host-`` prefix (this host only: no Domain, so no other host of
the parent domain can set or shadow them). Over plain http (localhost) the bare name.

Lax: the OIDC callback, the link pages and the storefront's top-level visits bring them; a
cross-site POST (the SAML ACS) does not, which is why that flow is kept server-side.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask import Response as FlaskResponse
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.http import http_date
from werkzeug.wrappers import Response


def cookie_name(base: str, secure: bool) -> str:
    return f"__Host-{base}" if secure else base


def give(response: Response, base: str, value: str, *, secure: bool, max_age: int) -> None:
    """Set cookie ``base`` (named by :func:`cookie_name`) for ``max_age`` seconds."""
    response.set_cookie(
        cookie_name(base, secure),
        value,
        max_age=max_age,
        expires=_expires(max_age),
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


#: ``max_age`` -> (the second it was formatted for, its ``Expires`` date).
_EXPIRES: dict[int, tuple[int, str]] = {}


def _expires(max_age: int) -> str:
    """The ``Expires`` werkzeug would write for ``max_age`` from now (an HTTP date), formatted
    once a second for each ``max_age`` (email.utils formats it from scratch each time)."""
    second = int(time.time()) + max_age
    known = _EXPIRES.get(max_age)
    if known is None or known[0] != second:
        known = _EXPIRES[max_age] = (second, http_date(second))
    return known[1]


def drop(response: Response, name: str, *, secure: bool) -> None:
    """Delete the cookie called ``name`` (already prefixed: as the request named it)."""
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")


class SignedSession(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie unchanged, with the serializer built once
    per key: Flask builds one for every request that opens or saves a session (and, building
    it, serializes an empty dict to learn that its output is text), a tenth of a millisecond a
    sign-in (bench/README.md). The serializer keeps nothing between calls."""

    def __init__(self) -> None:
        self._built: tuple[Any, URLSafeTimedSerializer | None] | None = None

    def save_session(self, app: Flask, session: Any, response: FlaskResponse) -> None:
        # Empty, unchanged and unread (a plain sign-in): Flask's would return at its end,
        # having read seven settings first, setting nothing and adding no Vary.
        if not session and not session.modified and not session.accessed:
            return
        super().save_session(app, session, response)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        built = self._built
        if built is None or built[0] != keys:
            built = self._built = (keys, super().get_signing_serializer(app))
        return built[1]
