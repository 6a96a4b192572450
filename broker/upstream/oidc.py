"""OpenID Connect relying party for one connection, on Authlib's spec layer.

Follows OpenID Connect Core 1.0 (authorization code flow, sections 3.1.2-3.1.3.7 for the ID
token checks, 5.3.2 for userinfo), OpenID Connect Discovery 1.0 (section 4.3: the document's
issuer must equal the configured one) and RFC 7636 (PKCE, S256 only).

The web layer owns state, nonce and the code verifier and hands them in (Dex's split): this
module checks what it is given and returns an :class:`~broker.identity.Identity`. It imports
neither Flask nor anything about BigCommerce or storage.

Every endpoint the discovery document names passes the SSRF policy of
:mod:`broker.upstream.egress` (https; the broker connects to public addresses only) before any
request goes there.

Signing algorithms are pinned by the connection's configuration. Authlib's Flask client takes
the allowed list from the IdP's discovery document, which would let a hostile or broken
document admit ``none`` or HS256; here the discovery list is never consulted.
"""

from __future__ import annotations

import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from broker.config import OIDCConnection
from broker.errors import (
    IdPDeniedError,
    IdPUnavailable,
    InvalidResponse,
    StateMismatch,
    UpstreamMisconfigured,
)
from broker.identity import Identity, UpstreamSession
from broker.upstream.egress import GuardedTransport, endpoint_problem, is_loopback_host
from broker.upstream.shape import Begun, Checks, Verified

with warnings.catch_warnings():
    # Authlib 1.9 prefers the httpx2 fork and warns when it uses httpx, which this project
    # uses throughout; the warning gives an operator nothing to act on.
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: A back-channel logout token older than this is refused (it should arrive at once).
LOGOUT_TOKEN_MAX_AGE = 300
#: A logout token's ``typ`` header, when it has one (compared without regard to case; RFC 7515
#: 4.1.9 lets the "application/" prefix be left out).
LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "application/logout+jwt"})
#: How long discovery and JWKS answers are trusted before they are fetched again.
METADATA_TTL_SECONDS = 3600
#: An unknown `kid` makes us fetch the JWKS again (keys rotate), but such forced fetches happen
#: at most this often: a stream of forged tokens must not become a stream of requests to the IdP.
JWKS_REFRESH_MIN_INTERVAL = 10.0
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
#: Discovery's endpoints the browser is sent to, and those the broker itself requests.
_BROWSER_ENDPOINTS = ("authorization_endpoint", "end_session_endpoint")
_FETCHED_ENDPOINTS = ("token_endpoint", "jwks_uri", "userinfo_endpoint")


class OIDCProvider:
    """A live OIDC connection: discovery, keys, the authorization URL and the callback."""

    def __init__(
        self,
        connection: OIDCConnection,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self._clock = clock
        self._timeout = timeout
        # Loopback IdPs are for tests and the demo: only then may the broker connect to one.
        self._allow_loopback = is_loopback_host(urlsplit(connection.issuer).hostname)
        # One pool for every request to this IdP, shared by the short-lived token clients; its
        # connections go to public addresses only (see broker.upstream.egress).
        self._transport = transport or GuardedTransport(allow_loopback=self._allow_loopback)
        self._http = httpx.Client(transport=self._transport, timeout=timeout)
        self._lock = threading.Lock()
        self._metadata: Mapping[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._refreshed_at = float("-inf")

    # -- discovery and keys ---------------------------------------------------------------

    def metadata(self) -> Mapping[str, Any]:
        """The IdP's discovery document, checked and cached."""
        with self._lock:
            if (
                self._metadata is not None
                and self._clock() - self._metadata_at < METADATA_TTL_SECONDS
            ):
                return self._metadata
        issuer = self.connection.issuer
        self._check_endpoint("issuer", discovery_url(issuer), fetched=True)
        doc = self._get_json(discovery_url(issuer), "discovery document")
        if doc.get("issuer") != issuer:
            # Not the IdP failing: the configured issuer is not the one it names (compared
            # verbatim, a trailing "/" included). Issuers are configuration, so both are logged.
            raise UpstreamMisconfigured(
                detail=(
                    f"oidc discovery: the document's issuer {str(doc.get('issuer'))[:200]!r} "
                    f"is not the configured issuer {issuer!r}"
                ),
            )
        missing = [name for name in _ENDPOINTS if not isinstance(doc.get(name), str)]
        if missing:
            raise IdPUnavailable(
                "The identity provider's configuration is incomplete.",
                detail=f"discovery lacks {', '.join(missing)}",
            )
        for name in (*_BROWSER_ENDPOINTS, *_FETCHED_ENDPOINTS):
            if name in doc:
                self._check_endpoint(name, doc[name], fetched=name in _FETCHED_ENDPOINTS)
        with self._lock:
            self._metadata = MappingProxyType(doc)
            self._metadata_at = self._clock()
        return self._metadata

    def _check_endpoint(self, name: str, url: object, *, fetched: bool) -> None:
        """The SSRF policy (:mod:`broker.upstream.egress`), before any request goes there."""
        problem = endpoint_problem(url, fetched=fetched, allow_loopback=self._allow_loopback)
        if problem is not None:
            raise UpstreamMisconfigured(
                "Signing in with your organisation is not set up correctly for this store: "
                f"its identity provider's {name} is not an address the sign-in service "
                "contacts. Please tell the store.",
                detail=f"oidc discovery: {name} refused: {problem}",
            )

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            now = self._clock()
            if refresh:
                if self._keys is not None and now - self._refreshed_at < JWKS_REFRESH_MIN_INTERVAL:
                    return self._keys
                self._refreshed_at = now
            elif self._keys is not None and now - self._keys_at < METADATA_TTL_SECONDS:
                return self._keys
        doc = self._get_json(str(self.metadata()["jwks_uri"]), "signing keys")
        try:
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise IdPUnavailable(
                "The identity provider published unusable signing keys.", detail=str(exc)
            ) from None
        with self._lock:
            self._keys, self._keys_at = keys, self._clock()
        return keys

    def _get_json(self, url: str, what: str, *, bearer: str | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            response = self._http.get(url, headers=headers)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise IdPUnavailable(
                "Your identity provider could not be reached. Please try again shortly.",
                detail=f"{what}: {type(exc).__name__}",
            ) from None
        if not isinstance(body, dict):
            raise IdPUnavailable("Your identity provider answered unexpectedly.", detail=what)
        return body

    def probe(self) -> None:
        """Fetch discovery and the signing keys now: `broker check` reaches every IdP."""
        self.metadata()
        self._key_set()

    # -- the flow ---------------------------------------------------------------------------

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: code flow with PKCE S256, state and nonce."""
        client = self._oauth_client(redirect_uri)
        url, _ = client.create_authorization_url(
            self.metadata()["authorization_endpoint"],
            state=state,
            code_verifier=code_verifier,
            nonce=nonce,
        )
        return str(url)

    def begin(self, *, key: str, return_url: str) -> Begun:
        """The authorization request (code flow, PKCE S256) with ``state`` = ``key``."""
        checks = Checks(nonce=secrets.token_urlsafe(32), code_verifier=secrets.token_urlsafe(64))
        url = self.authorization_url(
            redirect_uri=return_url,
            state=key,
            nonce=str(checks.nonce),
            code_verifier=str(checks.code_verifier),
        )
        return Begun(url=url, checks=checks)

    def complete(
        self, answer: Mapping[str, str], *, checks: Checks | None, return_url: str
    ) -> Verified:
        """The callback's query, checked against the nonce and verifier of :meth:`begin`."""
        if checks is None or checks.nonce is None or checks.code_verifier is None:
            raise StateMismatch(
                "This sign-in was started for another kind of sign-in. Please start again.",
                detail="not an OpenID Connect flow",
            )
        identity, session = self.handle_callback(
            answer, redirect_uri=return_url, nonce=checks.nonce, code_verifier=checks.code_verifier
        )
        return Verified(identity=identity, session=session)

    def handle_callback(
        self,
        params: Mapping[str, str],
        *,
        redirect_uri: str,
        nonce: str,
        code_verifier: str,
    ) -> tuple[Identity, UpstreamSession]:
        """Check the authorization response, redeem the code, verify; who, and their session."""
        if "error" in params:
            raise IdPDeniedError(
                _idp_error_message(params.get("error", "")),
                detail=f"idp error={params.get('error')!r}",
            )
        code = params.get("code")
        if not code:
            raise InvalidResponse("The identity provider sent no authorization code.")
        tokens = self._redeem(code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidResponse("The identity provider sent no ID token.")
        access_token = tokens.get("access_token")
        claims = self.verify_id_token(
            id_token,
            nonce=nonce,
            access_token=access_token if isinstance(access_token, str) else None,
        )
        if not _has_profile(claims) and isinstance(access_token, str):
            claims = {**self._userinfo(access_token, subject=str(claims["sub"])), **claims}
        sid = claims.get("sid")
        session = UpstreamSession(sid=sid if isinstance(sid, str) else None, id_token=id_token)
        return self._to_identity(claims), session

    def end_session_url(
        self, *, id_token_hint: str | None, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), if the IdP offers it."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        params = {
            "client_id": self.connection.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "state": state,
        }
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    def verify_logout_token(self, token: str) -> dict[str, Any]:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0, 2.4 and 2.6):
        signature with the pinned algorithms, a ``typ`` header (when present) of
        ``logout+jwt``, iss (verbatim), aud, iat, exp, the logout event, no nonce, a sid or a
        sub, and a jti (the caller remembers it against replay)."""
        decoded = self._decode_token(token, what="logout token")
        typ = decoded.header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in LOGOUT_TOKEN_TYPES):
            # Explicit typing (2.4, RFC 8725 3.11): a JWT of another kind is not a logout token.
            raise InvalidResponse(
                "The logout token is not valid.", detail="logout token typ is not logout+jwt"
            )
        claims = dict(decoded.claims)
        options: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "value": self.connection.issuer},
            "aud": {"essential": True, "value": self.connection.client_id},
            "iat": {"essential": True},
            "exp": {"essential": True},
            "jti": {"essential": True},
        }
        try:
            JWTClaimsRegistry(
                now=int(self._clock()), leeway=self.connection.clock_skew_seconds, **options
            ).validate(claims)
        except JoseError as exc:
            raise InvalidResponse(
                "The logout token is not valid.", detail=f"logout token: {exc}"
            ) from None
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise InvalidResponse("The logout token is not valid.", detail="no logout event")
        if "nonce" in claims:
            raise InvalidResponse("The logout token is not valid.", detail="nonce present")
        if not isinstance(claims.get("sid"), str) and not isinstance(claims.get("sub"), str):
            raise InvalidResponse("The logout token is not valid.", detail="neither sid nor sub")
        issued = claims["iat"]
        if isinstance(issued, int | float) and self._clock() - issued > LOGOUT_TOKEN_MAX_AGE:
            raise InvalidResponse("The logout token is not valid.", detail="logout token too old")
        return claims

    def verify_id_token(
        self, id_token: str, *, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """Signature by a key of the IdP, pinned algorithm, then the OIDC Core 3.1.3.7 claims."""
        token = self._decode_token(id_token, what="sign-in token")
        options = {
            "iss": {"essential": True, "value": self.connection.issuer},
            "aud": {"essential": True, "value": self.connection.client_id},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "sub": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.connection.client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(now=int(self._clock()), leeway=self.connection.clock_skew_seconds)
        except JoseError as exc:
            name = getattr(exc, "claim", None) or type(exc).__name__
            raise InvalidResponse(
                "The sign-in token from your identity provider is not valid for this store.",
                detail=f"id_token claim check failed: {name}: {exc}",
            ) from None
        return dict(claims)

    def _decode_token(self, value: str, *, what: str) -> jwt.Token:
        """Verify a JWT's signature by a key of the IdP with a pinned algorithm."""
        registry = JWSRegistry(algorithms=list(self.connection.algorithms))
        try:
            try:
                return jwt.decode(value, self._key_set(), registry=registry)
            except InvalidKeyIdError:
                # Keys rotate: fetch the JWKS once more, then give up.
                return jwt.decode(value, self._key_set(refresh=True), registry=registry)
        except InvalidKeyIdError:
            raise InvalidResponse(
                f"The {what} was signed with a key your identity provider does not publish.",
                detail=f"{what}: unknown kid after JWKS refresh",
            ) from None
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidResponse(
                f"The {what}'s signature is not valid.",
                detail=f"{what} rejected: {type(exc).__name__}: {exc}",
            ) from None

    def _redeem(self, code: str, *, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        client = self._oauth_client(redirect_uri)
        try:
            token = client.fetch_token(
                self.metadata()["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
        except OAuthError as exc:
            raise InvalidResponse(
                "Your identity provider refused to complete the sign-in. Please start again.",
                detail=f"token endpoint error={exc.error!r}",
            ) from None
        except (httpx.HTTPError, ValueError) as exc:
            raise IdPUnavailable(
                "Your identity provider could not be reached. Please try again shortly.",
                detail=f"token endpoint: {type(exc).__name__}",
            ) from None
        return dict(token)

    def _userinfo(self, access_token: str, *, subject: str) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        info = self._get_json(endpoint, "userinfo", bearer=access_token)
        # OIDC Core 5.3.2: a userinfo answer about someone else must not be used.
        if info.get("sub") != subject:
            raise InvalidResponse(
                "Your identity provider's answers disagree about who you are.",
                detail="userinfo sub differs from the ID token's",
            )
        return info

    def _oauth_client(self, redirect_uri: str) -> OAuth2Client:
        # Built per flow step: Authlib's client keeps the last token on itself, so one shared
        # instance would mix concurrent sign-ins. The transport (connection pool) is shared.
        conn = self.connection
        return OAuth2Client(
            client_id=conn.client_id,
            client_secret=conn.client_secret,
            token_endpoint_auth_method=conn.token_endpoint_auth_method,
            scope=" ".join(conn.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            transport=self._transport,
            timeout=self._timeout,
        )

    def _to_identity(self, claims: Mapping[str, Any]) -> Identity:
        """The one place OIDC claims become an Identity."""
        email = claims.get("email")
        first, last = claims.get("given_name"), claims.get("family_name")
        name = claims.get("name")
        if not (first or last) and isinstance(name, str) and name.strip():
            first, _, last = name.strip().partition(" ")
        auth_time = claims.get("auth_time")
        return Identity(
            connection=self.connection.key,
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=email.strip() if isinstance(email, str) and email.strip() else None,
            email_verified=claims.get("email_verified") in (True, "true"),
            first_name=_text(first),
            last_name=_text(last),
            groups=_groups(claims.get(self.connection.groups_claim)),
            auth_time=auth_time if isinstance(auth_time, int) else None,
            claims=MappingProxyType(dict(claims)),
        )


def discovery_url(issuer: str) -> str:
    """Where an issuer's discovery document is (OpenID Connect Discovery 1.0, section 4): the
    issuer with any trailing ``/`` removed, then ``/.well-known/openid-configuration``. Only the
    URL drops the slash; the issuer itself is compared verbatim (``https://x.auth0.com/``)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _has_profile(claims: Mapping[str, Any]) -> bool:
    """Whether the ID token alone says who the person is: an e-mail and some name."""
    named = any(claims.get(k) for k in ("given_name", "family_name", "name"))
    return bool(claims.get("email")) and named


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


_IDP_ERRORS = {
    "access_denied": "You cancelled the sign-in, or your identity provider refused it.",
    "login_required": "Your identity provider needs you to sign in again.",
    "consent_required": "Your identity provider needs your consent to continue.",
    "interaction_required": "Your identity provider needs you to act before continuing.",
    "temporarily_unavailable": "Your identity provider is busy. Please try again shortly.",
}


def _idp_error_message(error: str) -> str:
    return _IDP_ERRORS.get(error, "Your identity provider could not sign you in.")
