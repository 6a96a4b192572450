"""CSRF defences: tokens for the broker's own forms, and where a request came from.

The token lives in the signed session cookie (itsdangerous, via Flask's session) and in a
hidden field; a POST whose field does not match is refused before anything else happens.

Requests the storefront's pages make to the broker (another origin, usually another site)
cannot carry such a token; :func:`check_origin` refuses those whose ``Origin`` (or, without
one, ``Referer``) names another origin than the ones allowed, or whose ``Sec-Fetch-Site``
says no page made them.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from urllib.parse import urlsplit

from flask import request, session

from broker.errors import CrossSiteRequest, FlowExpired

#: The URL fragment that hands the account-linking nonce to the storefront script.
NONCE_FRAGMENT = "sso-link-nonce"

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


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute URL, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def claimed_origin() -> str | None:
    """The origin of the page that made this request, as the browser says: ``Origin``, else
    ``Referer``'s origin; None when it says neither (``Origin: null`` counts as neither)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin_of(origin) or origin
    referer = request.headers.get("Referer")
    return origin_of(referer) if referer else None


def check_origin(allowed: Collection[str]) -> None:
    """Refuse (403) a request made by a page of another origin than ``allowed``, or one that
    Sec-Fetch-Site says no page made; a request saying nothing of its origin passes (older
    browsers, no-referrer pages): the caller must have a second proof for that case."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = claimed_origin()
    wanted = {origin_of(url) for url in allowed}
    if site == "none" or (origin is not None and origin not in wanted):
        raise CrossSiteRequest(
            "This request came from another site than the store's, so nothing was done. "
            "Start again from the store.",
            detail=f"origin check: sec-fetch-site {site!r}, "
            f"origin {'absent' if origin is None else 'of another site'}",
        )
