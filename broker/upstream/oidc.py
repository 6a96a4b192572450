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

The quirks of the IdPs stores use (docs/idps/) are met here, each only when the connection says
so, none loosening a check: where a claim is read (:mod:`broker.upstream.oidc_claims`), Entra
ID's ``xms_edov`` for ``email_verified``, its groups overage read from Microsoft Graph
(:mod:`broker.upstream.graph`), its multi-tenant issuer (``{tenantid}`` filled in from ``tid``,
the tenant listed, ``iss`` equal to the result), Google's ``hd``; a token refused for its
times because a clock is off says so (:mod:`broker.upstream.clock`).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from broker.backchannel import BackChannelClient
from broker.config import OIDCConnection
from broker.errors import (
    EmailNotAllowed,
    IdPDeniedError,
    IdPUnavailable,
    InvalidResponse,
    PolicyDenied,
    StateMismatch,
    UpstreamMisconfigured,
)
from broker.identity import Identity, UpstreamSession
from broker.upstream.clock import check_times
from broker.upstream.egress import GuardedTransport, endpoint_problem, is_loopback_host
from broker.upstream.graph import member_groups
from broker.upstream.oidc_claims import (
    TENANT_PLACEHOLDER,
    asserted_true,
    claim_value,
    group_names,
    groups_overaged,
    person_names,
    tenant_issuer,
    tenant_subject,
    tenant_template_of,
    text,
)
from broker.upstream.shape import Begun, Checks, Verified

_FORM = "application/x-www-form-urlencoded;charset=UTF-8"

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
        self._http = BackChannelClient(transport=self._transport, timeout=timeout)
        self._client_auth = ClientAuth(
            connection.client_id, connection.client_secret, connection.token_endpoint_auth_method
        )
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
        declared = doc.get("issuer")
        template = tenant_template_of(declared, issuer)
        if declared != issuer and not (template and self.connection.tenants):
            # Not the IdP failing: the configured issuer is not the one it names (compared
            # verbatim, a trailing "/" included). Issuers are configuration, so both are logged.
            hint = (
                f": a multi-tenant issuer ({TENANT_PLACEHOLDER}); list the tenant ids accepted "
                "in tenants, or use the tenant's own issuer"
                if template
                else ""
            )
            raise UpstreamMisconfigured(
                detail=(
                    f"oidc discovery: the document's issuer {str(declared)[:200]!r} "
                    f"is not the configured issuer {issuer!r}{hint}"
                ),
            )
        if declared == issuer and self.connection.tenants:
            raise UpstreamMisconfigured(
                detail=(
                    f"oidc discovery: tenants is set, but the issuer {issuer!r} is not "
                    f"multi-tenant (its document names no {TENANT_PLACEHOLDER}): for one "
                    "tenant drop tenants; for several use .../organizations/v2.0"
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

    # -- issuers: one, or one per tenant ------------------------------------------------------

    def _issuer_template(self) -> str | None:
        """A multi-tenant connection's issuer template (``.../{tenantid}/v2.0``), else None.
        :meth:`metadata` admits a document issuer other than the configured one only then."""
        if not self.connection.tenants:
            return None
        declared = str(self.metadata()["issuer"])
        return declared if declared != self.connection.issuer else None

    def _expected_issuer(self, claims: Mapping[str, Any], *, what: str) -> str:
        """The ``iss`` this token must carry: the configured issuer, verbatim; for a
        multi-tenant connection the template filled in with the token's ``tid``, which must be
        one of ``tenants`` (exactly as listed)."""
        template = self._issuer_template()
        if template is None:
            return self.connection.issuer
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not tenant:
            raise InvalidResponse(
                f"The {what} from your identity provider is not valid for this store.",
                detail=f"{what}: a multi-tenant issuer, and no tid",
            )
        if tenant not in self.connection.tenants:
            # The tid is the IdP's text: it is not logged (docs/design.md, "Security floor").
            raise PolicyDenied(
                "Your organisation's Microsoft Entra ID directory is not one this store accepts "
                "for this sign-in. Sign in with an account of an organisation the store works "
                "with, or ask the store to add yours.",
                detail=f"{what}: the token's tid is not one of the connection's tenants",
            )
        return tenant_issuer(template, tenant)

    def subject_of(self, claims: Mapping[str, Any]) -> str:
        """The identity's subject: ``sub``; on a multi-tenant connection ``<tid>:<sub>``, so
        that two tenants' people never share one (``sub`` is unique within one issuer only)."""
        subject = str(claims["sub"])
        if self._issuer_template() is None:
            return subject
        return tenant_subject(str(claims["tid"]), subject)

    def accepts_issuer(self, iss: str) -> bool:
        """Whether ``iss`` names this connection's IdP (front-channel logout's ``iss``): the
        configured issuer verbatim, or for a multi-tenant one a listed tenant's issuer."""
        if iss == self.connection.issuer:
            return not self.connection.tenants
        template = self._issuer_template()
        return template is not None and any(
            iss == tenant_issuer(template, tenant) for tenant in self.connection.tenants
        )

    def frame_origins(self) -> tuple[str, ...]:
        """The origins whose pages may frame front-channel logout: the issuer's, and the end
        session endpoint's when discovery names one (the IdP's logout page)."""
        origins = [_origin_of(self.connection.issuer)]
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except (IdPUnavailable, UpstreamMisconfigured):
            endpoint = None
        if isinstance(endpoint, str) and _origin_of(endpoint):
            origins.append(_origin_of(endpoint))
        return tuple(dict.fromkeys(o for o in origins if o))

    # -- the flow ---------------------------------------------------------------------------

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: code flow with PKCE S256, state and nonce."""
        conn = self.connection
        params = {
            "response_type": "code",
            "client_id": conn.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(conn.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        domains = conn.hosted_domains
        if domains:
            # Google's account chooser hint (its "hd" parameter): one domain, or any Workspace
            # domain. Only a hint: the ID token's hd claim is what is checked.
            params["hd"] = domains[0] if len(domains) == 1 else "*"
        endpoint = str(self.metadata()["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

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
        if not self._has_profile(claims) and isinstance(access_token, str):
            claims = {**self._userinfo(access_token, subject=str(claims["sub"])), **claims}
        groups = None
        if groups_overaged(claims, self.connection.groups_claim):
            groups = self._overage_groups(access_token if isinstance(access_token, str) else None)
        sid = claims.get("sid")
        session = UpstreamSession(sid=sid if isinstance(sid, str) else None, id_token=id_token)
        return self._to_identity(claims, groups=groups), session

    def _overage_groups(self, access_token: str | None) -> tuple[str, ...]:
        """Entra ID's groups overage: the groups from Microsoft Graph when the connection says
        ``groups_overage = "graph"``; else a refusal naming the fixes."""
        conn = self.connection
        if conn.groups_overage != "graph":
            raise UpstreamMisconfigured(
                "Your organisation is in more groups than fit in its sign-in token, so this "
                "store cannot tell which of them you are in. Please tell the store: in the "
                "Entra ID app registration it can send only the groups assigned to the "
                "application, or use app roles.",
                detail=(
                    "groups overage (_claim_names instead of the groups claim): in the Entra ID "
                    "app registration (Token configuration), emit only the groups assigned "
                    'to the application; or use app roles (groups_claim = "roles"); or set '
                    'groups_overage = "graph" to read them from Microsoft Graph'
                ),
            )
        if not access_token:
            raise InvalidResponse(
                "Your identity provider sent no access token to read your groups with.",
                detail="groups overage: no access token for Microsoft Graph",
            )
        self._check_endpoint("graph_url", conn.graph_url, fetched=True)
        return member_groups(self._http, conn.graph_url, access_token)

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
            "iss": {"essential": True, "value": self._expected_issuer(claims, what="logout token")},
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
        expected_issuer = self._expected_issuer(token.claims, what="sign-in token")
        check_times(
            token.claims,
            now=int(self._clock()),
            leeway=self.connection.clock_skew_seconds,
            what="id_token",
        )
        options = {
            "iss": {"essential": True, "value": expected_issuer},
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
        """The code at the token endpoint (RFC 6749 4.1.3, with the PKCE verifier): its JSON.
        The request is authenticated by Authlib's client authentication for the connection's
        ``token_endpoint_auth_method``, and sent on the provider's one keep-alive client."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json", "Content-Type": _FORM}
        url, headers, body = self._client_auth.prepare(
            "POST", str(self.metadata()["token_endpoint"]), headers, urlencode(form)
        )
        try:
            response = self._http.post(url, content=body, headers=headers)
            token = response.json() if response.status_code < 500 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise IdPUnavailable(
                "Your identity provider could not be reached. Please try again shortly.",
                detail=f"token endpoint: {type(exc).__name__}",
            ) from None
        if isinstance(token, dict) and "error" in token:
            raise InvalidResponse(
                "Your identity provider refused to complete the sign-in. Please start again.",
                detail=f"token endpoint error={token['error']!r}",
            )
        if not isinstance(token, dict) or response.status_code != 200:
            raise IdPUnavailable(
                "Your identity provider could not be reached. Please try again shortly.",
                detail=f"token endpoint: HTTP {response.status_code}",
            )
        return token

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

    def _has_profile(self, claims: Mapping[str, Any]) -> bool:
        """Whether the ID token alone says who the person is: an e-mail and some name."""
        conn = self.connection
        named = any(
            claim_value(claims, k) for k in (conn.first_name_claim, conn.last_name_claim, "name")
        )
        return bool(claim_value(claims, conn.email_claim)) and named

    def _to_identity(
        self, claims: Mapping[str, Any], *, groups: tuple[str, ...] | None = None
    ) -> Identity:
        """The one place OIDC claims become an Identity (``groups``: read elsewhere, Graph)."""
        conn = self.connection
        self._check_hosted_domain(claims)
        first, last = person_names(
            claims, first_claim=conn.first_name_claim, last_claim=conn.last_name_claim
        )
        auth_time = claims.get("auth_time")
        return Identity(
            connection=conn.key,
            issuer=str(claims["iss"]),
            subject=self.subject_of(claims),
            email=text(claim_value(claims, conn.email_claim)),
            email_verified=asserted_true(claim_value(claims, conn.email_verified_claim)),
            first_name=first,
            last_name=last,
            groups=group_names(claim_value(claims, conn.groups_claim))
            if groups is None
            else groups,
            auth_time=auth_time if isinstance(auth_time, int) else None,
            claims=MappingProxyType(dict(claims)),
        )

    def _check_hosted_domain(self, claims: Mapping[str, Any]) -> None:
        """Google Workspace: with ``hosted_domains``, the ``hd`` claim must be one of them
        (compared without regard to case). A personal Google account (gmail.com) has none."""
        domains = self.connection.hosted_domains
        if not domains:
            return
        hd = claims.get("hd")
        if isinstance(hd, str) and hd.lower() in {d.lower() for d in domains}:
            return
        raise EmailNotAllowed(
            "This store accepts only accounts of its organisation's Google Workspace here"
            + ("" if isinstance(hd, str) else ", and a personal Google account is not one")
            + ". Sign in with your work account.",
            detail="hd claim absent (not a Workspace account)"
            if not isinstance(hd, str)
            else "hd claim is not one of hosted_domains",
        )


def discovery_url(issuer: str) -> str:
    """Where an issuer's discovery document is (OpenID Connect Discovery 1.0, section 4): the
    issuer with any trailing ``/`` removed, then ``/.well-known/openid-configuration``. Only the
    URL drops the slash; the issuer itself is compared verbatim (``https://x.auth0.com/``)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


#: What a CSP source's host[:port] may hold: nothing that ends or extends the directive.
_CSP_HOST = re.compile(r"^[A-Za-z0-9.\-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as a CSP source, or "" when it has none (the
    discovery document is the IdP's text: a ``;`` or a space must not reach the header)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not _CSP_HOST.match(parts.netloc):
        return ""
    return f"{parts.scheme}://{parts.netloc}"


_IDP_ERRORS = {
    "access_denied": "You cancelled the sign-in, or your identity provider refused it.",
    "login_required": "Your identity provider needs you to sign in again.",
    "consent_required": "Your identity provider needs your consent to continue.",
    "interaction_required": "Your identity provider needs you to act before continuing.",
    "temporarily_unavailable": "Your identity provider is busy. Please try again shortly.",
}


def _idp_error_message(error: str) -> str:
    return _IDP_ERRORS.get(error, "Your identity provider could not sign you in.")
