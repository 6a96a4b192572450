"""The BigCommerce side of the broker as an app: install codes, signed payloads, store facts.

Follows docs/bigcommerce-api.md, "App install":

- :func:`exchange_code`: the install's ``code`` for the store's API token, at
  ``{login_url}/oauth2/token`` with the exact registered ``redirect_uri``. A code is single
  use, so this is never retried: a failure is the merchant's to retry (install again).
- :func:`verify_signed_payload`: ``signed_payload_jwt`` of ``load``, ``uninstall`` and
  ``remove_user``: HS256 (or HS512) with the app's client secret, ``aud`` the client id,
  ``exp``/``nbf``, ``sub`` ``stores/{hash}``, a ``jti``.
- :func:`learn_store`: the store's name, its default storefront, its channels and their
  storefront URLs (``/v2/store``, ``/v3/channels``, ``/v3/sites``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from broker.backchannel import BackChannelClient
from broker.bigcommerce.http import StoreHTTP
from broker.errors import AppCallbackRefused, BigCommerceUnavailable
from broker.settings.values import AppSettings

#: A store hash as BigCommerce writes it in ``stores/{hash}`` (the broker's store key).
STORE_CONTEXT = re.compile(r"^stores/([a-z0-9]{1,32})$")
#: Payloads live 24 hours; allow a little clock difference on top.
LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class InstallGrant:
    """What BigCommerce granted at an install: the store's token and who installed."""

    store_hash: str
    access_token: str
    scope: str
    user_id: int | None
    owner_id: int | None


@dataclass(frozen=True)
class SignedPayload:
    """A verified ``signed_payload_jwt``: which store, which control-panel user."""

    store_hash: str
    user_id: int
    owner_id: int | None
    jti: str
    expires_at: int
    url: str
    channel_id: int | None
    locale: str | None


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    platform: str
    storefront_url: str | None


@dataclass(frozen=True)
class StoreFacts:
    """What the broker learns of a store when it is installed."""

    name: str
    storefront_url: str
    channels: tuple[Channel, ...]


def store_from_context(context: str) -> str:
    match = STORE_CONTEXT.match(context or "")
    if match is None:
        raise AppCallbackRefused(
            "BigCommerce did not say which store this is.", detail="context is not stores/{hash}"
        )
    return match.group(1)


def exchange_code(
    app: AppSettings,
    *,
    code: str,
    scope: str,
    context: str,
    redirect_uri: str,
    transport: httpx.BaseTransport | None = None,
) -> InstallGrant:
    """Trade an install code for the store's token (once: codes are single use)."""
    store_hash = store_from_context(context)
    form = {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "code": code,
        "context": context,
        "scope": scope,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
    }
    try:
        with BackChannelClient(transport=transport, timeout=httpx.Timeout(10.0)) as http:
            response = http.post(
                f"{app.login_url.rstrip('/')}/oauth2/token",
                data=form,
                headers={"Accept": "application/json", "User-Agent": "storefront-sso-broker"},
            )
    except httpx.TransportError as exc:
        raise BigCommerceUnavailable(
            "BigCommerce could not be reached to finish the install. Please install the app again.",
            detail=f"oauth2/token: {type(exc).__name__}",
        ) from None
    if 400 <= response.status_code < 500:
        raise AppCallbackRefused(
            "BigCommerce did not accept this install (the link may have been used already or "
            "expired). Please install the app again from the control panel.",
            detail=f"oauth2/token: {response.status_code}",
        )
    body = _json(response, "oauth2/token")
    token = body.get("access_token")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        raise BigCommerceUnavailable(
            "BigCommerce did not finish the install. Please install the app again.",
            detail=f"oauth2/token: {response.status_code}",
        )
    if body.get("context") not in (None, context):
        raise AppCallbackRefused(
            "BigCommerce answered for another store.", detail="oauth2/token: context differs"
        )
    return InstallGrant(
        store_hash=store_hash,
        access_token=token,
        scope=str(body.get("scope") or scope),
        user_id=_id_of(body.get("user")),
        owner_id=_id_of(body.get("owner")),
    )


def verify_signed_payload(app: AppSettings, token: str, *, now: int) -> SignedPayload:
    """Verify a ``signed_payload_jwt``; AppCallbackRefused with the reason in its detail."""
    if not token:
        raise AppCallbackRefused(
            "This request carries no signed payload.", detail="signed_payload_jwt missing"
        )
    try:
        decoded = jwt.decode(
            token, OctKey.import_key(app.client_secret), algorithms=["HS256", "HS512"]
        )
        JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            aud={"essential": True, "value": app.client_id},
            exp={"essential": True},
            nbf={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise AppCallbackRefused(
            "This request from BigCommerce could not be verified (it may have expired). Open "
            "the app again from the control panel.",
            detail=f"signed payload: {type(exc).__name__}",
        ) from None
    claims = decoded.claims
    store_hash = store_from_context(str(claims.get("sub") or ""))
    user_id = _id_of(claims.get("user"))
    if user_id is None:
        raise AppCallbackRefused("BigCommerce did not say who you are.", detail="no user.id")
    channel = claims.get("channel_id")
    user = claims.get("user")
    locale = user.get("locale") if isinstance(user, Mapping) else None
    return SignedPayload(
        store_hash=store_hash,
        user_id=user_id,
        owner_id=_id_of(claims.get("owner")),
        jti=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        url=str(claims.get("url") or "/"),
        channel_id=channel if isinstance(channel, int) and not isinstance(channel, bool) else None,
        locale=locale if isinstance(locale, str) else None,
    )


def learn_store(
    app: AppSettings,
    store_hash: str,
    access_token: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> StoreFacts:
    """The store's name, default storefront and channels with their storefront URLs."""
    http = StoreHTTP(
        base_url=f"{app.api_url.rstrip('/')}/stores/{store_hash}",
        headers={"X-Auth-Token": access_token},
        timeout=10.0,
        transport=transport,
        store=store_hash,
        api="app",
    )
    try:
        store = _json(http.request("GET", "/v2/store"), "v2/store")
        channels = _data(http.request("GET", "/v3/channels"), "v3/channels")
        storefronts = [c for c in channels if c.get("type", "storefront") == "storefront"]
        urls: dict[int, str] = {}
        if storefronts:
            ids = ",".join(str(c["id"]) for c in storefronts if _is_id(c.get("id")))
            for site in _data(
                http.request("GET", "/v3/sites", params={"channel_id:in": ids}), "v3/sites"
            ):
                url = _primary_url(site)
                if _is_id(site.get("channel_id")) and url:
                    urls.setdefault(int(site["channel_id"]), url)
    finally:
        http.close()
    secure_url = str(store.get("secure_url") or "").rstrip("/")
    if not secure_url.startswith(("https://", "http://")):
        raise BigCommerceUnavailable(
            "The store did not say where its storefront is.", detail="v2/store: no secure_url"
        )
    found = tuple(
        Channel(
            id=int(c["id"]),
            name=str(c.get("name") or f"Channel {c['id']}"),
            platform=str(c.get("platform") or "bigcommerce"),
            storefront_url=urls.get(int(c["id"])),
        )
        for c in storefronts
        if _is_id(c.get("id"))
    )
    return StoreFacts(
        name=str(store.get("name") or store_hash), storefront_url=secure_url, channels=found
    )


def _primary_url(site: Mapping[str, Any]) -> str | None:
    typed = site.get("urls")
    if isinstance(typed, list):
        for kind in ("primary", "canonical"):
            for entry in typed:
                if isinstance(entry, Mapping) and entry.get("type") == kind and entry.get("url"):
                    return str(entry["url"]).rstrip("/")
    url = site.get("url")
    return str(url).rstrip("/") if url else None


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BigCommerceUnavailable(
            "BigCommerce answered something the broker cannot read.", detail=f"{what}: not JSON"
        )
    return body


def _data(response: httpx.Response, what: str) -> list[Mapping[str, Any]]:
    data = _json(response, what).get("data")
    return [item for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_of(value: Any) -> int | None:
    if isinstance(value, Mapping) and _is_id(value.get("id")):
        return int(value["id"])
    return None
