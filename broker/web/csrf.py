"""CSRF tokens for the broker's own forms: one random token per browser session.

The token lives in the signed session cookie (itsdangerous, via Flask's session) and in a
hidden field; a POST whose field does not match is refused before anything else happens.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

from broker.errors import FlowExpired

FIELD = "csrf_token"


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    expected = session.get("csrf")
    given = request.form.get(FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise FlowExpired(
            "This form has expired or did not come from this page. Please start again.",
            detail="csrf token missing or wrong",
        )
