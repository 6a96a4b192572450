"""The Customer Login JWT that signs a shopper in to a BigCommerce storefront.

Follows BigCommerce's "Customer Login API" as recorded in docs/bigcommerce-api.md: header
exactly ``{"typ": "JWT", "alg": "HS256"}``, HMAC-SHA256 with the app's client secret, claims
``iss`` (client id), ``iat``, ``jti``, ``operation``, ``store_hash``, ``customer_id``, and the
optional ``channel_id``, ``redirect_to`` (relative only), ``request_ip``. The token is valid
for 30 seconds and once only, so it is minted just before the redirect.

No IO here: for a given clock value and jti the output is deterministic.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, urlsplit

from joserfc import jwt
from joserfc.jwk import OctKey

#: Longest redirect path we pass on; longer ones fall back to the default.
MAX_REDIRECT_LENGTH = 2048
#: Longest landing URL (``<storefront>/login/token/<jwt>``) a browser is sent to. RFC 9112
#: (section 3) asks every HTTP party to support request lines of at least 8000 octets; a CDN or
#: proxy in front of a storefront may refuse longer ones, after the customer was created.
MAX_LANDING_URL_LENGTH = 8000
# The longest values the claims unknown before sign-in can take: a customer id up to 2**53
# (JavaScript's safe integers), a uuid4 jti, a ten-digit iat, an IPv4-mapped IPv6 request_ip.
_LONGEST_CUSTOMER_ID = 2**53
_LONGEST_JTI = "00000000-0000-4000-8000-000000000000"
_LONGEST_IAT = 9_999_999_999
_LONGEST_IP = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
# Browsers drop tabs and newlines from URLs and treat "\" as "/": "/\t/evil.com" and
# "/\evil.com" both become "//evil.com". Anything of the kind disqualifies a path.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def safe_redirect_path(value: str | None, default: str) -> str:
    """Return ``value`` when it is a path on the same site, else ``default``.

    Accepted: "/account.php", "/cart.php?x=1#top". Refused: absolute URLs, scheme-relative
    "//host", "/\\host", "javascript:", whitespace or control characters, anything that does
    not start with exactly one "/".
    """
    if not value or len(value) > MAX_REDIRECT_LENGTH or _UNSAFE.search(value):
        return default
    if not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def mint_login_token(
    *,
    client_id: str,
    client_secret: str,
    store_hash: str,
    customer_id: int,
    channel_id: int,
    redirect_to: str,
    now: int,
    jti: str,
    request_ip: str | None = None,
) -> str:
    """Sign a Customer Login JWT. ``redirect_to`` must already be a safe relative path."""
    if safe_redirect_path(redirect_to, "") != redirect_to:
        raise ValueError("redirect_to must be a relative path on the store")
    claims: dict[str, object] = {
        "iss": client_id,
        "iat": int(now),
        "jti": jti,
        "operation": "customer_login",
        "store_hash": store_hash,
        "customer_id": int(customer_id),
        "channel_id": int(channel_id),
        "redirect_to": redirect_to,
    }
    if request_ip:
        claims["request_ip"] = request_ip
    header = {"typ": "JWT", "alg": "HS256"}
    return jwt.encode(header, claims, _signing_key(client_secret), algorithms=["HS256"])


@functools.lru_cache(maxsize=64)
def _signing_key(client_secret: str) -> OctKey:
    """The app's client secret as a key, imported once (joserfc's import parses and checks it
    each time; the key signs without changing). Keyed by the secret: one per app or store."""
    return OctKey.import_key(client_secret)


def longest_landing_url(
    storefront_url: str, *, client_id: str, store_hash: str, channel_id: int, redirect_to: str
) -> int:
    """How long the landing URL carrying ``redirect_to`` can get, at most: the login JWT is
    minted with the longest values the claims not known yet can take (the HMAC's length does
    not depend on the key). ``redirect_to`` must be a safe path (:func:`safe_redirect_path`)."""
    token = mint_login_token(
        client_id=client_id,
        client_secret="budget-" * 8,
        store_hash=store_hash,
        customer_id=_LONGEST_CUSTOMER_ID,
        channel_id=channel_id,
        redirect_to=redirect_to,
        now=_LONGEST_IAT,
        jti=_LONGEST_JTI,
        request_ip=_LONGEST_IP,
    )
    return len(storefront_login_url(storefront_url, token))


def storefront_login_url(storefront_url: str, token: str) -> str:
    """The storefront URL that consumes a login token: ``<storefront>/login/token/<jwt>``."""
    return f"{storefront_url.rstrip('/')}/login/token/{quote(token, safe='.-_')}"


def storefront_logout_url(storefront_url: str, platform: str, path: str | None = None) -> str:
    """Where a storefront session ends (docs/bigcommerce-api.md, "Logout").

    Stencil (BigCommerce-hosted): ``<storefront>/login.php?action=logout``; BigCommerce decides
    where the shopper lands (the home page), so ``path`` is not used. Catalyst (headless):
    ``<storefront>/logout?redirectTo=<path>``; Catalyst keeps only the path of ``redirectTo``
    (no query, no fragment) and lands on its ``/login`` without one, so the path alone is sent,
    ``/`` (the home page, as on Stencil) when there is none. ``path`` must be safe already
    (:func:`safe_redirect_path`)."""
    base = storefront_url.rstrip("/")
    if platform != "catalyst":
        return f"{base}/login.php?action=logout"
    only_path = urlsplit(path or "/").path or "/"
    return f"{base}/logout?redirectTo={quote(only_path, safe='/')}"
