"""``broker check``, once the file is valid: reach every store and connection of the file, and
say what was checked, what failed and why, and what to register at each IdP.

Each store's API is asked for one customer (``GET /v3/customers?limit=1``, the scope sign-ins
need most); each connection runs the admin's connection test
(:func:`broker.admin.checks.check_connection`: discovery, algorithms, signing keys; SAML
metadata, certificates and their expiry), so the file and the admin tell the same things. On
top of that, for a failure, the URL asked, the HTTP status it answered and a hint; and for an
OIDC connection, whether the IdP knows its ``client_id``, where the IdP lets the broker tell:
an authorization request with ``prompt=none`` (the IdP shows no sign-in page for it) must,
for a client and redirect URI it knows, be answered with a redirect to that redirect URI
(RFC 6749, 4.1.2.1; OpenID Connect Core, 3.1.2.6); an error page instead, or
``error=invalid_client`` / ``unauthorized_client``, says it does not. The token endpoint is not
asked: without the client's credentials its ``invalid_client`` says nothing.

A line is a check (``ok`` true or false) or a warning (``ok`` None): advice that stops no
sign-in (a certificate expiring within 30 days, an IdP that may not know the client).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from broker.admin.checks import check_connection
from broker.backchannel import BackChannelClient
from broker.bigcommerce.account import HINTS as ACCOUNT_HINTS
from broker.bigcommerce.account import AccountClient, AccountHTTPError, AccountRefused
from broker.bigcommerce.http import StoreHTTP
from broker.config import Connection, OIDCConnection, SAMLConnection, Settings, StoreSettings
from broker.errors import BrokerError
from broker.upstream.claims import shared_identity_providers
from broker.upstream.egress import GuardedTransport, is_loopback_host
from broker.upstream.oidc import discovery_url
from broker.upstream.registry import open_provider

#: Hints for what a store's API answered (docs/bigcommerce-api.md, "Authentication").
STORE_HINTS = {
    401: "the access_token is wrong or revoked (Settings > API > Store-level API accounts)",
    403: "the API account lacks a scope: it needs Customers (modify) and Customers Login (login)",
    404: "the store_hash (or api_url) is wrong: store_hash is the part after /stores/ in the "
    "API path the control panel shows",
}
#: The OAuth errors that say the IdP does not take this client (RFC 6749, 4.1.2.1 and 5.2).
CLIENT_ERRORS = ("invalid_client", "unauthorized_client")


@dataclass
class Line:
    """One line of the listing: a check (``ok`` true or false) or a warning (``ok`` None)."""

    ok: bool | None
    name: str
    detail: str
    #: For a failure: the URL asked, what it answered (an HTTP status, or why none came), a hint.
    url: str | None = None
    answer: str | None = None
    hint: str | None = None


@dataclass
class Section:
    """One store, or one connection: what was checked, and what to register at the IdP."""

    key: str  # the file's key: stores.acme, stores.acme.connections.okta
    title: str
    lines: list[Line] = field(default_factory=list)
    register: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[Line]:
        return [line for line in self.lines if line.ok is False]


def check_file(
    settings: Settings,
    *,
    transport: Callable[[bool], httpx.BaseTransport] | None = None,
    now: Callable[[], float] = time.time,
) -> list[Section]:
    """A section per store of the file, then one per connection of it. ``transport(loopback)``
    makes the transport of the IdP requests made here (default: the egress guard)."""
    make = transport or (lambda loopback: GuardedTransport(allow_loopback=loopback))
    base = settings.broker.base_url
    sections: list[Section] = []
    for store in settings.stores.values():
        store_section = _store(store)
        sections.append(store_section)
        declared: dict[str, str] = {}
        for conn in store.connections.values():
            section, idp = _connection(store, conn, base, make, now())
            sections.append(section)
            if idp is not None:
                declared[conn.key] = idp
        for clash in shared_identity_providers(store.key, declared):
            store_section.lines.append(Line(False, "one IdP per connection", clash))
    return sections


# -- the store ---------------------------------------------------------------------------


def _store(store: StoreSettings) -> Section:
    section = Section(key=f"stores.{store.key}", title=f"store {store.key} ({store.api_base})")
    http = StoreHTTP(
        base_url=store.api_base,
        headers={"X-Auth-Token": store.access_token},
        timeout=store.api_timeout_seconds,
        deadline_seconds=store.api_timeout_seconds,
        store=store.key,
    )
    url = f"{store.api_base}/v3/customers?limit=1"
    try:
        response = http.request(
            "GET", "/v3/customers", params={"limit": 1}, accept=tuple(STORE_HINTS)
        )
    except BrokerError as error:
        section.lines.append(
            Line(False, "store API", f"{error.message} ({error.detail})", url=url, answer=None)
        )
        return section
    finally:
        http.close()
    status = response.status_code
    if status in STORE_HINTS:
        section.lines.append(
            Line(
                False,
                "store API",
                "The store refused the broker's request.",
                url=url,
                answer=f"HTTP {status}",
                hint=STORE_HINTS[status],
            )
        )
    else:
        section.lines.append(Line(True, "store API", f"the access token reads customers ({url})"))
    if store.staff is not None:
        section.lines.append(_staff(store))
    return section


def _staff(store: StoreSettings) -> Line:
    """One read of the store's users on the Account API (one of the account's hourly 70)."""
    staff = store.staff
    assert staff is not None
    url = f"{staff.api_url.rstrip('/')}/accounts/{staff.account_uuid}/graphql"
    client = AccountClient(staff, store_key=store.key, store_hash=store.store_hash)
    try:
        users, more = client.store_users_page(None)
    except AccountRefused as refused:
        return Line(
            False,
            "control-panel staff",
            f"the Account API refused: {refused.error_code}",
            url=url,
            hint="the account does not hold this store (account_uuid), or the token lacks "
            "the Account Users scopes",
        )
    except AccountHTTPError as error:
        return Line(
            False,
            "control-panel staff",
            error.message,
            url=url,
            answer=f"HTTP {error.status}",
            hint=ACCOUNT_HINTS[error.status],
        )
    except BrokerError as error:
        return Line(False, "control-panel staff", error.message, url=url, answer=error.detail)
    finally:
        client.close()
    count = f"{len(users)}{'+' if more else ''}"
    groups = ", ".join(staff.groups)
    return Line(
        True,
        "control-panel staff",
        f"the account token reads the store's {count} users; {groups} through "
        f"{', '.join(staff.connections)} (this check used 1 of the account's "
        f"{staff.requests_per_hour} requests this hour)",
    )


# -- a connection ------------------------------------------------------------------------


def _connection(
    store: StoreSettings,
    conn: Connection,
    base: str,
    make: Callable[[bool], httpx.BaseTransport],
    now: float,
) -> tuple[Section, str | None]:
    """The connection's section, and the IdP it declares (None: not known)."""
    key = f"stores.{store.key}.connections.{conn.key}"
    provider = open_provider(conn, base_url=base, store_key=store.key)
    report = check_connection(conn, provider, base, store.key, now)
    if isinstance(conn, OIDCConnection):
        title = f"connection {store.key}/{conn.key} (oidc, issuer {conn.issuer})"
    else:
        title = f"connection {store.key}/{conn.key} (saml)"
    section = Section(key=key, title=title)
    facts = report.facts
    loopback = _loopback(conn)
    with BackChannelClient(transport=make(loopback), timeout=10.0) as http:
        for check in report.checks:
            line = Line(bool(check["ok"]), str(check["name"]), str(check["detail"]))
            if not line.ok:
                _diagnose(line, conn, facts, http)
            section.lines.append(line)
        for warning in report.warnings:
            section.lines.append(Line(None, "warning", warning))
        if isinstance(conn, OIDCConnection) and report.checks and report.checks[0]["ok"]:
            _probe_client(section, conn, facts, http)
    section.register = _to_register(store, conn, base, facts)
    if isinstance(conn, OIDCConnection):
        return section, conn.issuer
    entity = facts.get("idp_entity_id")
    return section, entity if isinstance(entity, str) else None


def _loopback(conn: Connection) -> bool:
    if isinstance(conn, OIDCConnection):
        return is_loopback_host(urlsplit(conn.issuer).hostname)
    if isinstance(conn, SAMLConnection) and conn.idp_metadata_url:
        return is_loopback_host(urlsplit(conn.idp_metadata_url).hostname)
    return False


def _diagnose(line: Line, conn: Connection, facts: dict[str, Any], http: httpx.Client) -> None:
    """For a failed check: the URL it needed, what that URL answers now, and a hint."""
    url: str | None = None
    hints: dict[int, str] = {}
    if isinstance(conn, OIDCConnection) and line.name == "discovery":
        url = discovery_url(conn.issuer)
        hints = {
            404: "the issuer URL is wrong: discovery is the issuer + "
            "/.well-known/openid-configuration (Okta: https://<org>.okta.com, Entra ID: "
            "https://login.microsoftonline.com/<tenant>/v2.0)",
            401: "the IdP does not publish its configuration to the broker's address",
            403: "the IdP does not publish its configuration to the broker's address",
        }
    elif isinstance(conn, OIDCConnection) and line.name == "signing keys":
        jwks = facts.get("jwks_uri")
        url = jwks if isinstance(jwks, str) else None
        hints = {404: "the IdP's jwks_uri (from its discovery document) is not there"}
    elif isinstance(conn, SAMLConnection) and line.name == "metadata" and conn.idp_metadata_url:
        url = conn.idp_metadata_url
        hints = {
            404: "idp_metadata_url is wrong: copy the federation metadata URL from the IdP",
            401: "the IdP does not publish its metadata without sign-in: save it to a file "
            "(idp_metadata_file)",
            403: "the IdP does not publish its metadata to the broker's address: save it to a "
            "file (idp_metadata_file)",
        }
    if url is None:
        return
    line.url = url
    try:
        status = http.get(url).status_code
    except httpx.HTTPError as exc:
        line.answer = f"no answer ({type(exc).__name__})"
        line.hint = "the broker cannot reach it from here: check the URL, DNS, firewalls"
        return
    line.answer = f"HTTP {status}"
    line.hint = hints.get(status)


def _probe_client(
    section: Section, conn: OIDCConnection, facts: dict[str, Any], http: httpx.Client
) -> None:
    """Ask the authorization endpoint, as a browser would but with ``prompt=none``, whether it
    takes this client and redirect URI (see the module docstring); never followed."""
    endpoint = facts.get("authorization_endpoint")
    redirect_uri = facts.get("redirect_uri")
    if not isinstance(endpoint, str) or not isinstance(redirect_uri, str):
        return
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": conn.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(conn.scopes),
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
        "prompt": "none",
    }
    try:
        response = http.get(endpoint, params=params)
    except httpx.HTTPError as exc:
        section.lines.append(
            Line(
                None,
                "warning",
                f"could not ask the authorization endpoint about client_id {conn.client_id!r} "
                f"({type(exc).__name__})",
            )
        )
        return
    location = response.headers.get("location", "") if response.is_redirect else ""
    back = location.startswith(redirect_uri)
    error = _oauth_error(location, response) if not back else _query_error(location)
    if back and error not in CLIENT_ERRORS:
        section.lines.append(
            Line(
                True,
                "client",
                f"the IdP takes client_id {conn.client_id!r} and answers at the redirect URI",
            )
        )
        return
    if back or error in CLIENT_ERRORS or response.status_code >= 400:
        why = f"error={error}" if error else f"HTTP {response.status_code}"
        section.lines.append(
            Line(
                None,
                "warning",
                f"the IdP may not know client_id {conn.client_id!r}, or the redirect URI "
                f"{redirect_uri} is not registered for it: a test authorization request got "
                f"{why}",
                url=endpoint,
                answer=f"HTTP {response.status_code}",
                hint="register the client and that redirect URI at the IdP, or correct client_id",
            )
        )
    # Anything else (a sign-in page despite prompt=none): the IdP does not let us tell.


def _query_error(location: str) -> str | None:
    found = parse_qs(urlsplit(location).query).get("error")
    return found[0] if found else None


def _oauth_error(location: str, response: httpx.Response) -> str | None:
    """An OAuth error code the answer names: in the redirect's query, or on the error page."""
    error = _query_error(location) if location else None
    if error:
        return error
    text = response.text[:20000] if response.status_code >= 400 else ""
    return next((code for code in CLIENT_ERRORS if code in text), None)


def _to_register(
    store: StoreSettings, conn: Connection, base: str, facts: dict[str, Any]
) -> list[tuple[str, str]]:
    """What the IdP's admin enters for this connection."""
    if isinstance(conn, OIDCConnection):
        prefix = f"{base}/{store.key}/oidc/{conn.key}"
        found = [
            ("redirect URI", str(facts.get("redirect_uri", f"{prefix}/callback"))),
            (
                "back-channel logout URI",
                str(facts.get("backchannel_logout_uri", f"{prefix}/backchannel-logout")),
            ),
            (
                "front-channel logout URI",
                str(facts.get("frontchannel_logout_uri", f"{prefix}/frontchannel-logout")),
            ),
        ]
        if conn.idp_logout:
            found.append(("post-logout redirect URI", f"{base}/{store.key}/logout/done"))
        return found
    prefix = f"{base}/{store.key}/saml/{conn.key}"
    return [
        ("SP metadata URL (entity ID)", f"{prefix}/metadata"),
        ("ACS URL (HTTP-POST)", f"{prefix}/acs"),
        ("SLO URL", f"{prefix}/slo"),
    ]
