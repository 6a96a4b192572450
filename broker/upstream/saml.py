"""SAML 2.0 service provider for one connection, on pysaml2 (its XML signatures and decryption in
this process: :mod:`broker.upstream.saml_crypto`).

Follows SAML 2.0 Core, Bindings (HTTP-Redirect for the AuthnRequest, HTTP-POST for the
Response) and the Web Browser SSO profile (saml-profiles-2.0-os, 4.1), with the checks the
profile requires and a few it only recommends, all strict by default:

- one IdP entity per connection (``idp_entity_id``, or the metadata's only IdP): every
  signature, of the Response or of the Assertion, is verified only with the certificates the
  metadata gives that entity's IDPSSODescriptor for signing (``use="signing"`` or no use), never
  with another entity's (a federation aggregate, an SP entity), another role's, or a key
  carried in the message; the assertion's Issuer must be that entity, and the Response's too
  when it has one;
- a signed assertion (a signed response alone only with ``require_signed_assertion = false``);
- the structure first (:mod:`broker.upstream.saml_checks`): one assertion, signatures that
  cover their own element, no comments, no DTD, algorithms from an allow-list (SHA-1 only with
  ``allow_sha1``);
- a Status other than Success is the IdP's refusal: only its status code URIs are logged,
  never its StatusMessage;
- an AudienceRestriction naming our entity id (profiles 4.1.4.2 requires one on a bearer
  assertion), Destination and Recipient (our ACS), NotBefore/NotOnOrAfter with the
  connection's skew, a bearer SubjectConfirmation, and InResponseTo equal to the request this
  browser started (none for IdP-initiated);
- a transient NameID is never the link subject: the e-mail is (``email:<address>``), and only
  an e-mail the connection trusts (``trust_email``); otherwise the sign-in is refused.

A configuration that does not match the IdP (``idp_entity_id`` not in the metadata, no IdP in
it, an Issuer other than the configured entity on what that entity's key signed, two
connections of a store declaring one entity: see ``entity_guard``) is
:class:`broker.errors.UpstreamMisconfigured`, whose ``detail`` names what differs.

Single Logout (saml-profiles-2.0-os 4.4, HTTP-Redirect and HTTP-POST bindings) when the SP is
given an ``slo_url``: :meth:`SAMLProvider.logout_request` and :meth:`SAMLProvider.logout_response`
build signed messages for the IdP (:class:`OutboundMessage`), and
:meth:`SAMLProvider.handle_logout_response` and :meth:`SAMLProvider.handle_logout_request` verify
what the IdP sends to the SLO endpoint (a :class:`LogoutRequestInfo` for a request). Every
incoming logout message must be signed, whatever the IdP's metadata says: by query signature
(HTTP-Redirect, checked here over the octets as sent) or an enveloped XML signature (HTTP-POST,
checked by pysaml2), by a key of the IdP's metadata only; its Issuer, Destination,
times and (for a response) InResponseTo and status are checked here, because pysaml2's logout
parsers (``parse_logout_request``, ``parse_logout_request_response``) accept unsigned messages,
check no HTTP-Redirect signature on what an SP receives, never compare InResponseTo, and drop
their own Destination verdict on a LogoutResponse.

The web layer owns RelayState, the pending request and the replay cache; this module checks
what it is handed and returns an :class:`Assertion` carrying the Identity. It imports neither
Flask nor anything about BigCommerce or storage.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import html
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlencode
from xml.etree.ElementTree import Element

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp, time_util
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import do_key_descriptor, entity_descriptor
from saml2.response import AuthnResponse
from saml2.s_utils import UnsupportedBinding, sid, success_status_factory
from saml2.saml import NAMEID_FORMAT_ENTITY, Issuer, NameID
from saml2.validate import ResponseLifetimeExceed, ToEarly, valid_instance

from broker.backchannel import BackChannelClient
from broker.config import SAMLConnection
from broker.errors import (
    BrokerError,
    ConfigError,
    IdPDeniedError,
    IdPUnavailable,
    InvalidResponse,
    UpstreamMisconfigured,
)
from broker.events import log_event
from broker.identity import Identity, UpstreamSession
from broker.upstream import saml_schema
from broker.upstream.certificates import EXPIRY_WARNING_DAYS, days_left, described
from broker.upstream.clock import ClockSkewed
from broker.upstream.saml_checks import (
    DS,
    SAML,
    SAMLP,
    SHA1_ALGORITHMS,
    SHA1_REFUSED,
    check_algorithms,
    check_response_structure,
    check_signed_info,
    describe_algorithm,
    parse_protocol_message,
)
from broker.upstream.saml_checks import refused as _refused
from broker.upstream.saml_crypto import (
    REDIRECT_SIGNATURE_HASHES,
    InProcessCrypto,
    InProcessSecurity,
    RedirectSigner,
)
from broker.upstream.saml_keys import SPKeySet
from broker.upstream.saml_metadata import MetadataCopy, MetadataRefused, accept_metadata
from broker.upstream.saml_response import parse_authn_response
from broker.upstream.shape import Begun, Checks, Verified

#: After a failed refresh, the last good copy of the metadata is used this long before the
#: next attempt.
METADATA_RETRY_SECONDS = 300
#: How pysaml2's refusal of an assertion for another audience begins (a plain Exception).
_PYSAML2_AUDIENCE_REFUSAL = "AudienceRestrictions conditions not satisfied"
#: The largest SAMLResponse accepted, base64 included.
MAX_RESPONSE_BYTES = 200_000
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
TRANSIENT_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

# Attribute names the big IdPs use, tried in order when the connection names none.
EMAIL_ATTRIBUTES = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",  # ADFS, Entra ID
    "urn:oid:0.9.2342.19200300.100.1.3",  # Shibboleth (mail)
    "mail",
    "email",
    "emailAddress",
    "User.Email",
)
FIRST_NAME_ATTRIBUTES = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "urn:oid:2.5.4.42",  # givenName
    "givenName",
    "firstName",
    "first_name",
    "User.FirstName",
)
LAST_NAME_ATTRIBUTES = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "urn:oid:2.5.4.4",  # sn
    "sn",
    "surname",
    "lastName",
    "last_name",
    "User.LastName",
)
GROUP_ATTRIBUTES = (
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",  # Entra ID
    "http://schemas.xmlsoap.org/claims/Group",  # ADFS
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",  # isMemberOf (Shibboleth)
    "groups",
    "memberOf",
)

#: The two bindings of single logout, as ``binding=`` of the ``handle_logout_*`` methods.
REDIRECT = BINDING_HTTP_REDIRECT
POST = BINDING_HTTP_POST
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
#: The query-signature algorithms (SigAlg) accepted on HTTP-Redirect logout messages; SHA-1
#: only with the connection's ``allow_sha1``.
#: The largest logout message accepted once inflated (HTTP-Redirect) or decoded (HTTP-POST).
MAX_LOGOUT_XML_BYTES = 100_000
#: How old (IssueInstant) an incoming logout message may be, beyond the clock skew: the browser
#: carries it at once, and the web layer remembers request IDs that long against replay.
LOGOUT_MESSAGE_MAX_AGE_SECONDS = 600
#: NotOnOrAfter of our LogoutRequests.
LOGOUT_REQUEST_LIFETIME_SECONDS = 600
#: SAML Bindings 3.4.3 and 3.5.3: RelayState sent with a request is at most 80 bytes.
MAX_RELAY_STATE_BYTES = 80
#: SAML Core 3.7.3: the person asked to sign out.
LOGOUT_REASON_USER = "urn:oasis:names:tc:SAML:2.0:logout:user"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
#: SAML Core 3.2.2.2: the status codes SAML defines; any other is logged as "other".
STATUS_PREFIX = "urn:oasis:names:tc:SAML:2.0:status:"
_STATUS_NAME = re.compile(r"[A-Za-z]{1,40}")
#: Entity ids named in one log line, at most.
_ENTITIES_LOGGED = 5
_INSTANT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d{1,9})?Z")

# pysaml2 logs whole messages at INFO and DEBUG, and each failed verification (with excerpts of
# the document) at ERROR; every refusal here becomes an InvalidResponse whose detail the web
# layer logs, so only pysaml2's CRITICAL lines get through.
logging.getLogger("saml2").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Assertion:
    """A verified assertion: who, how long its ID must be remembered against replay, and what
    a LogoutRequest for this sign-in must name (saml-profiles-2.0-os 4.4.4.1)."""

    identity: Identity
    assertion_id: str
    not_on_or_after: int
    #: The NameID exactly as asserted (the Identity's subject differs for transient NameIDs).
    name_id: str = ""
    name_id_format: str | None = None
    #: The AuthnStatement's SessionIndex, if the IdP gave one.
    session_index: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """A signed logout message on its way to the IdP through the browser.

    HTTP-Redirect: send the browser to :attr:`url` (302 or 303); :attr:`html` is None.
    HTTP-POST: answer 200 with :attr:`html` (``text/html``, ``Cache-Control: no-store``), a page
    that POSTs :attr:`form` to :attr:`destination` by itself (one inline ``onload`` handler; a
    page under a strict CSP can render :attr:`form` itself instead); :attr:`url` is None.
    """

    #: The message's own ID. For a LogoutRequest, keep it: the IdP's LogoutResponse must name it
    #: in InResponseTo (``handle_logout_response(expected_request_id=...)``).
    request_id: str
    url: str | None = None
    html: str | None = None
    #: :data:`REDIRECT` or :data:`POST`.
    binding: str = REDIRECT
    #: The IdP endpoint the message is for.
    destination: str = ""
    #: HTTP-POST only: the form fields (``SAMLRequest`` or ``SAMLResponse``, ``RelayState``).
    form: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class LogoutRequestInfo:
    """A verified IdP-initiated LogoutRequest: whose sessions to end.

    End the broker sessions of this IdP whose NameID equals :attr:`name_id` and, when
    :attr:`session_indexes` is not empty, whose SessionIndex is one of them (all of that NameID's
    sessions otherwise), then answer with :meth:`SAMLProvider.logout_response`
    (``in_response_to=request_id``, ``relay_state=relay_state``)."""

    request_id: str
    name_id: str
    name_id_format: str | None
    session_indexes: tuple[str, ...]
    relay_state: str | None
    #: :data:`REDIRECT` or :data:`POST`: how the request came.
    binding: str
    #: Unix time until which to remember :attr:`request_id` against replay.
    not_on_or_after: int


class SAMLProvider:
    """A live SAML connection: IdP metadata, the AuthnRequest, the Response."""

    def __init__(
        self,
        connection: SAMLConnection,
        *,
        sp_entity_id: str,
        acs_url: str,
        slo_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        entity_guard: Callable[[str], None] | None = None,
        sp_keys: Callable[[], SPKeySet | None] | None = None,
    ) -> None:
        """``entity_guard`` is called with the IdP's entity id at each use of the metadata
        (cheap: it must be) and raises :class:`UpstreamMisconfigured` to refuse it, e.g. when
        another connection of the store declares the same IdP. ``sp_keys`` gives the SP key
        pairs of a connection that names no key files (the broker's own,
        :class:`broker.sp_keys.SPKeyRing`); it must return the same object while they stay
        the same."""
        self.connection = connection
        self.sp_entity_id = sp_entity_id
        self._entity_guard = entity_guard
        self.acs_url = acs_url
        #: Our SingleLogoutService (HTTP-Redirect and HTTP-POST); None: no single logout.
        self.slo_url = slo_url
        self._signing_key: tuple[str, rsa.RSAPrivateKey] | None = None
        if connection.sp_key_file and connection.sp_cert_file:
            own = SPKeySet.of_files(connection.sp_key_file, connection.sp_cert_file)
            self._sp_keys: Callable[[], SPKeySet | None] = lambda: own
        else:  # without either, the metadata can be read and checked, nothing signed
            self._sp_keys = sp_keys or (lambda: None)
        #: The key set :attr:`_client` was built with.
        self._keys_used: SPKeySet | None = None
        self._crypto = InProcessCrypto()
        self._clock = clock
        self._http = BackChannelClient(transport=transport, timeout=10.0)
        self._lock = threading.Lock()
        self._copy: MetadataCopy | None = None
        self._client: Saml2Client | None = None
        #: The configured IdP's entity id in the metadata that built :attr:`_client`.
        self._entity: str | None = None

    # -- metadata -----------------------------------------------------------------------------

    def idp_metadata(self) -> str:
        """The IdP metadata: inline, from a file, or fetched (refreshed as the connection and
        the metadata's cacheDuration say; the last good copy kept while a refresh fails, but
        never past its validUntil): :mod:`broker.upstream.saml_metadata`."""
        conn = self.connection
        now = self._clock()
        with self._lock:
            copy = self._copy
        if conn.idp_metadata_xml or conn.idp_metadata_file:
            text = conn.idp_metadata_xml or Path(str(conn.idp_metadata_file)).read_text("utf-8")
            if copy is None or copy.text != text or not copy.usable(now):
                try:
                    copy = self._accepted(text, now)
                except MetadataRefused as refusal:
                    raise UpstreamMisconfigured(detail=f"saml metadata: {refusal}") from None
                self._keep(copy)
            return copy.text
        if copy is not None and now < copy.refresh_at and copy.usable(now):
            return copy.text
        try:
            response = self._http.get(str(conn.idp_metadata_url))
            response.raise_for_status()
            fresh = self._accepted(response.text, now)
        except (httpx.HTTPError, MetadataRefused) as exc:
            if copy is not None and copy.usable(now):  # keep serving the last good copy
                with self._lock:
                    self._copy = replace(copy, refresh_at=now + METADATA_RETRY_SECONDS)
                return copy.text
            if isinstance(exc, MetadataRefused):
                raise UpstreamMisconfigured(detail=f"saml metadata: {exc}") from None
            raise IdPUnavailable(
                "Your identity provider could not be reached. Please try again shortly.",
                detail=f"saml metadata: {type(exc).__name__}",
            ) from None
        self._keep(fresh)
        return fresh.text

    def _accepted(self, text: str, now: float) -> MetadataCopy:
        conn = self.connection
        return accept_metadata(
            text,
            now=now,
            refresh_seconds=conn.metadata_refresh_hours * 3600,
            pinned_certificate=conn.idp_metadata_signing_cert,
            crypto=self._crypto,
        )

    def _keep(self, copy: MetadataCopy) -> None:
        with self._lock:
            if self._copy is None or self._copy.text != copy.text:
                self._client = None
            self._copy = copy

    def client(self) -> Saml2Client:
        return self._loaded()[0]

    def _loaded(self) -> tuple[Saml2Client, str]:
        """pysaml2's client for the current metadata and the configured IdP's entity id in it;
        the client verifies signatures with that entity's IdP signing keys only."""
        metadata = self.idp_metadata()
        keys = self._sp_keys()
        with self._lock:
            if self._client is not None and self._entity is not None and self._keys_used is keys:
                return self._client, self._entity
        try:
            client = Saml2Client(config=self._config(metadata, keys))
        except Exception as exc:  # pysaml2 raises all kinds on metadata it cannot read
            raise UpstreamMisconfigured(
                detail=f"saml metadata: not readable as SAML metadata ({type(exc).__name__})"
            ) from None
        entity = self._configured_idp(client)
        client.sec = self._security(client)
        client.sec.metadata = _IdPSigningKeysOnly(client.metadata, entity)
        self._warn_of_expiry(client, entity)
        with self._lock:
            self._client, self._entity, self._keys_used = client, entity, keys
        return client, entity

    def _warn_of_expiry(self, client: Saml2Client, entity: str) -> None:
        """Log each IdP signing certificate that has expired or expires within
        EXPIRY_WARNING_DAYS, once per metadata copy: the IdP must roll it over, and the
        connection stops working on the day it lapses unless the next one is published."""
        now = self._clock()
        certificates = ["".join(str(c).split()) for _, c in client.metadata.certs(entity, "idpsso")]
        for cert in described(certificates):
            days = days_left(cert, now)
            if days < EXPIRY_WARNING_DAYS:
                log_event(
                    "saml.idp_certificate_expired" if days < 0 else "saml.idp_certificate_expiring",
                    level=logging.WARNING,
                    connection=self.connection.key,
                    idp=entity[:200],
                    expires=cert["expires"],
                    days=days,
                    sha256=cert["sha256"],
                )

    def _configured_idp(self, client: Saml2Client) -> str:
        """The connection's one IdP entity: ``idp_entity_id``, or the metadata's only IdP."""
        idps = sorted(str(idp) for idp in client.metadata.identity_providers())
        wanted = self.connection.idp_entity_id
        if wanted:
            if wanted not in idps:
                raise UpstreamMisconfigured(
                    detail=(
                        f"saml metadata: idp_entity_id {wanted!r} is not an IdP of the metadata"
                        f" (its IdPs: {_entities(idps)})"
                    )
                )
            return wanted
        if not idps:
            raise UpstreamMisconfigured(
                detail="saml metadata: no entity with an IDPSSODescriptor (is it an IdP's?)"
            )
        if len(idps) != 1:
            raise UpstreamMisconfigured(
                detail=(
                    f"saml metadata: {len(idps)} IdPs ({_entities(idps)}): set idp_entity_id "
                    "to the one this connection uses"
                )
            )
        return idps[0]

    def idp_entity_id(self) -> str:
        """The configured IdP's entity id, checked by the ``entity_guard`` at each call."""
        entity = self._loaded()[1]
        if self._entity_guard is not None:
            self._entity_guard(entity)
        return entity

    def signing_certificates(self) -> list[str]:
        """The configured IdP's signing certificates (base64 DER), exactly those signatures
        are verified with (its IDPSSODescriptor's ``use="signing"`` or unmarked keys)."""
        client, entity = self._loaded()
        return ["".join(str(cert).split()) for _, cert in client.metadata.certs(entity, "idpsso")]

    def sp_metadata(self) -> str:
        """This connection's SP metadata: entity id, ACS, SLO (when it has one), signing and
        encryption certificates, and ``AuthnRequestsSigned`` saying whether
        :meth:`authn_request` signs (``sign_authn_requests``, else what the IdP's metadata
        asks; "false" while that metadata cannot be had, when no sign-in can start either)."""
        try:
            signs = self._signs_authn_requests()
        except BrokerError:
            signs = bool(self.connection.sign_authn_requests)
        keys = self._sp_keys()
        descriptor = entity_descriptor(self._config(None, keys, authn_requests_signed=signs))
        # Every published pair, for signing and for encryption: the next one is trusted by
        # IdPs that refresh this metadata before it signs or is encrypted to.
        published = keys.published if keys is not None else ()
        certificates = [_certificate_text(pair.cert_pem) for pair in published]
        descriptor.spsso_descriptor.key_descriptor = do_key_descriptor(
            cert=certificates, enc_cert=certificates
        )
        return str(descriptor)

    def _signs_authn_requests(self) -> bool:
        sign = self.connection.sign_authn_requests
        if sign is None:
            client, idp = self._loaded()
            sign = self._idp_wants_signed_requests(client, idp)
        return sign

    def probe(self) -> None:
        """Load the IdP metadata now: `broker check` reaches every IdP."""
        self.idp_entity_id()

    # -- the flow ---------------------------------------------------------------------------

    def authn_request(self, *, relay_state: str) -> tuple[str, str]:
        """An AuthnRequest over HTTP-Redirect: (its ID, the URL to send the browser to)."""
        client = self.client()
        idp = self.idp_entity_id()
        sign = self._signs_authn_requests()
        request_id, info = client.prepare_for_authenticate(
            entityid=idp,
            relay_state=relay_state,
            binding=BINDING_HTTP_REDIRECT,
            sign=sign,
            nameid_format=self.connection.name_id_format,
            sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" if sign else None,
        )
        location = dict(info["headers"])["Location"]
        return str(request_id), str(location)

    def begin(self, *, key: str, return_url: str) -> Begun:
        """An AuthnRequest over HTTP-Redirect with RelayState = ``key`` (the answer comes to
        the ACS, so ``return_url`` is not sent: the SP metadata names it)."""
        request_id, url = self.authn_request(relay_state=key)
        return Begun(url=url, checks=Checks(request_id=request_id))

    def complete(
        self, answer: Mapping[str, str], *, checks: Checks | None, return_url: str
    ) -> Verified:
        """The POSTed ``SAMLResponse``; ``checks`` None: IdP-initiated (no InResponseTo)."""
        assertion = self.handle_response(
            answer.get("SAMLResponse", ""),
            expected_request_id=checks.request_id if checks is not None else None,
        )
        session = UpstreamSession(
            name_id=assertion.name_id or None,
            name_id_format=assertion.name_id_format,
            session_index=assertion.session_index,
        )
        return Verified(
            identity=assertion.identity,
            session=session,
            replay_id=assertion.assertion_id,
            replay_until=assertion.not_on_or_after + self.connection.clock_skew_seconds,
        )

    def handle_response(self, encoded: str, *, expected_request_id: str | None) -> Assertion:
        """Verify a POSTed SAMLResponse; ``expected_request_id`` None means IdP-initiated."""
        document = _decode(encoded)
        # No comments, DTD or repeated IDs first; the rest of the structure once the status
        # says an assertion should be there at all.
        root = parse_protocol_message(document, tag="Response", refuse=_refused)
        if root.get("Destination") != self.acs_url:
            raise _refused("Destination is not this service's ACS", "destination")
        issued = _instant(root.get("IssueInstant"))
        if issued is not None and issued > self._clock() + self.connection.clock_skew_seconds:
            raise self._times_refused(issued)
        in_response_to = root.get("InResponseTo")
        if expected_request_id is None:
            if not self.connection.allow_idp_initiated:
                raise InvalidResponse(
                    "Sign-in started from your identity provider's portal is not enabled for "
                    "this store. Start from the store's sign-in link instead.",
                    detail="unsolicited response, allow_idp_initiated is off",
                )
            if in_response_to:
                raise _refused("an answer to a request this browser did not make", "in_response_to")
            outstanding: dict[str, str] = {}
        else:
            if in_response_to != expected_request_id:
                raise _refused(
                    "InResponseTo does not match this browser's request", "in_response_to"
                )
            outstanding = {expected_request_id: "sp"}
        codes = _status_codes(root)
        if codes[:1] != [STATUS_SUCCESS]:
            # The IdP's refusal, signed or not: only the codes (a fixed vocabulary) are logged,
            # never its StatusMessage, which may name the person.
            raise IdPDeniedError(
                "Your identity provider did not sign you in. Please try again, or ask your "
                "organisation's administrator.",
                detail=f"saml status: {' / '.join(codes) or 'none'}",
            )
        check_response_structure(document, allow_sha1=self.connection.allow_sha1, root=root)
        try:
            saml_schema.validate(document)
        except saml_schema.SchemaInvalid as exc:
            raise _refused(f"not valid against the SAML schema: {exc}", "schema") from None
        response = self._parse(document, outstanding, issued=issued)
        return self._to_assertion(response)

    def _parse(
        self, document: bytes, outstanding: dict[str, str], *, issued: int | None
    ) -> AuthnResponse:
        client = self.client()
        encoded = base64.b64encode(document).decode()
        try:
            response = parse_authn_response(client, encoded, BINDING_HTTP_POST, outstanding)
        except (ToEarly, ResponseLifetimeExceed):
            raise self._times_refused(issued) from None
        except saml_schema.SchemaInvalid as exc:  # a decrypted assertion
            raise _refused(f"not valid against the SAML schema: {exc}", "schema") from None
        except Exception as exc:
            if str(exc).startswith(_PYSAML2_AUDIENCE_REFUSAL):
                raise _refused(
                    "the assertion's Audience is not this SP's entity id "
                    f"{self.sp_entity_id!r}: register the SP at the IdP with that entity id "
                    "(from its metadata URL)",
                    "audience",
                ) from None
            # Only the exception's name: pysaml2's messages quote the document (the issuer,
            # the status message, whole elements).
            raise _refused(f"{type(exc).__name__} from pysaml2", "verify") from None
        if response is None or response.assertion is None:
            raise _refused("no verified assertion", "verify")
        if len(response.assertions) != 1:
            raise _refused(f"{len(response.assertions)} assertions after decryption", "assertions")
        self._check_issuers(response)
        if self.connection.require_signed_assertion and not _assertion_signed(response):
            raise _refused("the assertion itself is not signed", "unsigned_assertion")
        _check_decrypted_signature(response, allow_sha1=self.connection.allow_sha1)
        self._check_audience(response)
        self._check_bearer_confirmation(response)
        return response

    def _times_refused(self, issued: int | None) -> InvalidResponse:
        """The refusal of an assertion outside its times (NotBefore, NotOnOrAfter, with the
        connection's skew): when the Response was issued (by the IdP's clock, a moment before
        the browser posted it) further from now than the skew allows, the clocks disagree,
        and the page says so with the difference (:class:`ClockSkewed`). This only words a
        refusal: nothing is accepted on the IssueInstant."""
        now, skew = self._clock(), self.connection.clock_skew_seconds
        if issued is not None and abs(issued - now) > skew:
            return ClockSkewed(
                offset=round(issued - now), allowed=skew, what="saml", claim="IssueInstant"
            )
        return _refused("the assertion is outside its NotBefore/NotOnOrAfter", "times")

    def _check_issuers(self, response: AuthnResponse) -> None:
        """The assertion's Issuer, and the Response's when it has one, is the configured IdP.

        The signatures pysaml2 verified (at least one covers the assertion) were checked with
        that IdP's keys only, so an assertion naming another issuer was signed by our IdP: its
        configuration and ours disagree, and the issuer it writes is logged for the operator.
        An unsigned Response's Issuer is anybody's text: refused, and not logged."""
        entity = self.idp_entity_id()
        issuer = response.assertion.issuer
        asserted = (issuer.text or "").strip() if issuer is not None else ""
        if asserted != entity:
            raise UpstreamMisconfigured(
                detail=(
                    f"saml: the IdP's signed assertion names the issuer {asserted[:200]!r}, "
                    f"not the configured IdP {entity!r} (idp_entity_id or the metadata)"
                )
            )
        if response.response.issuer is None:
            return
        outer = response.issuer()
        if outer != entity:
            if response.response.signature is not None:
                raise UpstreamMisconfigured(
                    detail=(
                        f"saml: the IdP's signed Response names the issuer {outer[:200]!r}, "
                        f"not the configured IdP {entity!r}"
                    )
                )
            raise _refused("the unsigned Response's Issuer is not the configured IdP", "issuer")

    def _check_audience(self, response: AuthnResponse) -> None:
        """Profiles 4.1.4.2: a bearer assertion carries an AudienceRestriction naming us;
        Core 2.5.1.4: every AudienceRestriction it has must (pysaml2 lets one without any
        through)."""
        conditions = response.assertion.conditions
        restrictions = (conditions.audience_restriction or []) if conditions is not None else []
        if not restrictions:
            raise _refused("no AudienceRestriction: the assertion names no audience", "audience")
        for restriction in restrictions:
            audiences = {(a.text or "").strip() for a in restriction.audience or ()}
            if self.sp_entity_id not in audiences:
                raise _refused("an AudienceRestriction that does not name this SP", "audience")

    def _check_bearer_confirmation(self, response: AuthnResponse) -> None:
        """Web SSO profile 4.1.4.2: a bearer SubjectConfirmation whose data names our ACS as
        Recipient and has a NotOnOrAfter (pysaml2 checks the times, not the Recipient)."""
        for confirmation in response.assertion.subject.subject_confirmation or ():
            data = confirmation.subject_confirmation_data
            if (
                confirmation.method == BEARER
                and data is not None
                and data.recipient == self.acs_url
                and data.not_on_or_after
            ):
                return
        raise _refused("no bearer SubjectConfirmation for this ACS", "recipient")

    def _to_assertion(self, response: AuthnResponse) -> Assertion:
        """The one place a SAML assertion becomes an Identity."""
        assertion = response.assertion
        name_id = assertion.subject.name_id
        if name_id is None or not (name_id.text or "").strip():
            raise _refused("no NameID", "name_id")
        attributes = _attributes(assertion)
        conn = self.connection
        email = (name_id.text or "").strip() if name_id.format == EMAIL_FORMAT else None
        if conn.email_attribute:
            email = _first(attributes, (conn.email_attribute,))
        email = email or _first(attributes, EMAIL_ATTRIBUTES)
        subject = (name_id.text or "").strip()
        if name_id.format == TRANSIENT_FORMAT:
            # A transient NameID changes at every sign-in: as the link subject it would make a
            # new link (and customer lookup) each time. The e-mail stands in, marked so, but
            # only one the connection trusts: an untrusted one would let whoever asserts an
            # address follow its link into the account, past require_verified_email.
            if not email or not conn.trust_email:
                raise UpstreamMisconfigured(
                    "Your identity provider identifies you with a new anonymous name at each "
                    "sign-in, so this store cannot recognise you. Please tell the store: its "
                    "identity provider should send a persistent or e-mail address NameID.",
                    detail=(
                        "saml: transient NameID "
                        + ("and no e-mail attribute" if not email else "and trust_email = false")
                        + ": configure the IdP to send a persistent or emailAddress NameID"
                    ),
                )
            subject = f"email:{email.casefold()}"
        first_names = (
            (conn.first_name_attribute,) if conn.first_name_attribute else FIRST_NAME_ATTRIBUTES
        )
        last_names = (
            (conn.last_name_attribute,) if conn.last_name_attribute else LAST_NAME_ATTRIBUTES
        )
        group_names = (conn.groups_attribute,) if conn.groups_attribute else GROUP_ATTRIBUTES
        identity = Identity(
            connection=conn.key,
            # The signed assertion's Issuer, checked equal to the configured IdP.
            issuer=self.idp_entity_id(),
            subject=subject,
            email=email,
            email_verified=bool(email) and conn.trust_email,
            first_name=_first(attributes, first_names),
            last_name=_first(attributes, last_names),
            groups=tuple(_all(attributes, group_names)),
            claims=MappingProxyType({k: tuple(v) for k, v in attributes.items()}),
        )
        session_indexes = [
            str(statement.session_index)
            for statement in assertion.authn_statement or ()
            if statement.session_index
        ]
        return Assertion(
            identity=identity,
            assertion_id=str(assertion.id),
            not_on_or_after=_not_on_or_after(assertion, self._clock()),
            name_id=(name_id.text or "").strip(),
            name_id_format=str(name_id.format) if name_id.format else None,
            session_index=session_indexes[0] if session_indexes else None,
        )

    # -- single logout (saml-profiles-2.0-os 4.4) --------------------------------------------

    def has_single_logout(self) -> bool:
        """Whether single logout can run: this SP has an ``slo_url`` and the IdP's metadata
        names a SingleLogoutService in HTTP-Redirect or HTTP-POST."""
        if not self.slo_url:
            return False
        return self._idp_slo_service(self.client(), self.idp_entity_id()) is not None

    def logout_request(
        self,
        *,
        name_id: str,
        name_id_format: str | None,
        session_index: str | None,
        relay_state: str,
    ) -> OutboundMessage:
        """A signed LogoutRequest (RSA-SHA256) for the IdP's SingleLogoutService, over
        HTTP-Redirect when the IdP's metadata offers it, else HTTP-POST.

        ``name_id`` and ``name_id_format`` are the sign-in's :attr:`Assertion.name_id` and
        :attr:`Assertion.name_id_format`, ``session_index`` its :attr:`Assertion.session_index`
        (profiles 4.4.4.1); ``relay_state`` is opaque, at most 80 bytes. Keep the returned
        :attr:`OutboundMessage.request_id` for :meth:`handle_logout_response`. Raises
        IdPUnavailable when the IdP's metadata has no SingleLogoutService."""
        self._require_slo_url()
        if not name_id:
            raise ValueError("a LogoutRequest needs the NameID of the sign-in")
        if len(relay_state.encode()) > MAX_RELAY_STATE_BYTES:
            raise ValueError(f"RelayState longer than {MAX_RELAY_STATE_BYTES} bytes")
        client = self.client()
        idp = self.idp_entity_id()
        binding, service = self._idp_slo_or_fail(client, idp)
        destination = str(service["location"])
        _, request = client.create_logout_request(
            destination,
            idp,
            name_id=NameID(text=name_id, format=name_id_format),
            reason=LOGOUT_REASON_USER,
            expire=time_util.instant(
                time_stamp=int(self._clock()) + LOGOUT_REQUEST_LIFETIME_SECONDS
            ),
            sign=False,  # signed below, as the binding says
            session_indexes=[session_index] if session_index else None,
        )
        return self._outbound(
            client,
            request,
            kind="SAMLRequest",
            binding=binding,
            destination=destination,
            relay_state=relay_state,
        )

    def handle_logout_response(
        self,
        *,
        binding: str,
        params: Mapping[str, str],
        expected_request_id: str,
        query_string: str | None = None,
    ) -> None:
        """Verify the IdP's LogoutResponse to our :meth:`logout_request`, or raise
        InvalidResponse (its ``detail`` names the check that failed).

        ``binding`` is :data:`REDIRECT` (GET: ``params`` is the query, with ``SAMLResponse``,
        ``SigAlg``, ``Signature`` and maybe ``RelayState``) or :data:`POST` (``params`` is the
        form). For HTTP-Redirect, pass the raw ``query_string`` too when available: the
        signature covers the parameters as the IdP encoded them (Bindings 3.4.4.1); without
        it they are encoded again, both as Python and as JavaScript encode them.

        Checked: the structure (no DTD, no comments, one signature of the message itself, no
        SHA-1 unless allowed), a signature by a key of the IdP's metadata (always required),
        Issuer (the IdP), Destination (our ``slo_url``), IssueInstant, InResponseTo (equal to
        ``expected_request_id``) and a top-level status of Success (a second-level
        PartialLogout counts as done: the IdP ended its own session)."""
        _root, message = self._receive(
            binding=binding, params=params, kind="SAMLResponse", query_string=query_string
        )
        if not expected_request_id or message.in_response_to != expected_request_id:
            raise _logout_refused(
                "InResponseTo does not match the LogoutRequest this browser sent",
                "in_response_to",
            )
        code = message.status.status_code if message.status is not None else None
        if code is None or code.value != STATUS_SUCCESS:
            codes: list[str] = []
            while code is not None and len(codes) < 5:
                codes.append(_status_word(str(code.value or "")))
                code = code.status_code
            raise InvalidResponse(
                "Your identity provider could not end its session. Close the browser to "
                "finish signing out.",
                detail=f"saml logout (status): {' / '.join(codes) or 'none'}",
            )

    def handle_logout_request(
        self,
        *,
        binding: str,
        params: Mapping[str, str],
        query_string: str | None = None,
    ) -> LogoutRequestInfo:
        """Verify an IdP-initiated LogoutRequest arriving at our SLO endpoint and say whose
        sessions it ends; raise InvalidResponse (with a ``detail``) for a forged, unsigned,
        stale or malformed one. ``binding``, ``params`` and ``query_string`` as for
        :meth:`handle_logout_response` (``SAMLRequest`` instead of ``SAMLResponse``).

        Checked: the structure, a signature by a key of the IdP's metadata (always required),
        Issuer, Destination (our ``slo_url``), IssueInstant, NotOnOrAfter when present, and a
        plain NameID (an EncryptedID or BaseID is refused). Replay is the caller's: remember
        :attr:`LogoutRequestInfo.request_id` until its ``not_on_or_after``."""
        root, message = self._receive(
            binding=binding, params=params, kind="SAMLRequest", query_string=query_string
        )
        now = self._clock()
        skew = self.connection.clock_skew_seconds
        issued = _instant(root.get("IssueInstant"))
        assert issued is not None  # checked by _receive
        expires = issued + LOGOUT_MESSAGE_MAX_AGE_SECONDS
        if root.get("NotOnOrAfter") is not None:
            not_on_or_after = _instant(root.get("NotOnOrAfter"))
            if not_on_or_after is None:
                raise _logout_refused("NotOnOrAfter is not a SAML instant", "not_on_or_after")
            if now >= not_on_or_after + skew:
                raise _logout_refused("the LogoutRequest has expired", "not_on_or_after")
            expires = min(expires, not_on_or_after)
        name_id = message.name_id
        text = (name_id.text or "").strip() if name_id is not None else ""
        if not text:
            raise _logout_refused("no plain NameID (EncryptedID and BaseID unsupported)", "name_id")
        indexes = tuple(
            (index.text or "").strip()
            for index in message.session_index or ()
            if (index.text or "").strip()
        )
        return LogoutRequestInfo(
            request_id=str(message.id),
            name_id=text,
            name_id_format=str(name_id.format) if name_id.format else None,
            session_indexes=indexes,
            relay_state=params.get("RelayState"),
            binding=binding,
            not_on_or_after=expires + skew,
        )

    def logout_response(
        self, *, in_response_to: str, relay_state: str | None, success: bool = True
    ) -> OutboundMessage:
        """A signed LogoutResponse to a LogoutRequest :meth:`handle_logout_request` verified:
        to the IdP's SingleLogoutService (its ResponseLocation when the metadata gives one),
        over HTTP-Redirect when offered, else HTTP-POST. ``relay_state`` is the request's,
        returned as received (Bindings 3.4.3, 3.5.3). ``success=False`` answers status
        Responder: the sessions could not be ended."""
        self._require_slo_url()
        client = self.client()
        idp = self.idp_entity_id()
        binding, service = self._idp_slo_or_fail(client, idp)
        destination = str(service.get("response_location") or service["location"])
        status = (
            success_status_factory()
            if success
            else samlp.Status(status_code=samlp.StatusCode(value=STATUS_RESPONDER))
        )
        response = samlp.LogoutResponse(
            id=sid(),
            version="2.0",
            issue_instant=time_util.instant(time_stamp=int(self._clock())),
            issuer=Issuer(text=self.sp_entity_id, format=NAMEID_FORMAT_ENTITY),
            destination=destination,
            in_response_to=in_response_to,
            status=status,
        )
        return self._outbound(
            client,
            response,
            kind="SAMLResponse",
            binding=binding,
            destination=destination,
            relay_state=relay_state or "",
        )

    def _require_slo_url(self) -> str:
        if not self.slo_url:
            raise ValueError("single logout needs the SAMLProvider's slo_url")
        return self.slo_url

    @staticmethod
    def _idp_slo_service(client: Saml2Client, idp: str) -> tuple[str, dict[str, Any]] | None:
        """The IdP's SingleLogoutService: HTTP-Redirect if it has one, else HTTP-POST."""
        for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
            try:
                services = client.metadata.single_logout_service(idp, binding, "idpsso") or []
            except UnsupportedBinding:
                continue
            for service in services:
                if service.get("location"):
                    return binding, dict(service)
        return None

    def _idp_slo_or_fail(self, client: Saml2Client, idp: str) -> tuple[str, dict[str, Any]]:
        found = self._idp_slo_service(client, idp)
        if found is None:
            raise IdPUnavailable(
                "Your identity provider does not offer single sign-out.",
                detail="no HTTP-Redirect or HTTP-POST SingleLogoutService in the IdP metadata",
            )
        return found

    def _outbound(
        self,
        client: Saml2Client,
        message: Any,
        *,
        kind: str,
        binding: str,
        destination: str,
        relay_state: str,
    ) -> OutboundMessage:
        """Sign and encode a message: an enveloped XML signature for HTTP-POST, the query
        signature for HTTP-Redirect (which carries no XML signature, Bindings 3.4.4.1)."""
        message_id = str(message.id)
        if binding == BINDING_HTTP_POST:
            signed = client.sign(message, sign_alg=RSA_SHA256, digest_alg=DIGEST_SHA256)
            form = {kind: base64.b64encode(str(signed).encode("utf-8")).decode("ascii")}
            if relay_state:
                form["RelayState"] = relay_state
            return OutboundMessage(
                request_id=message_id,
                html=_auto_post_page(destination, form),
                binding=BINDING_HTTP_POST,
                destination=destination,
                form=MappingProxyType(form),
            )
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        deflated = deflater.compress(str(message).encode("utf-8")) + deflater.flush()
        query = {kind: base64.b64encode(deflated).decode("ascii")}
        if relay_state:
            query["RelayState"] = relay_state
        query["SigAlg"] = RSA_SHA256
        octets = urlencode(query).encode("ascii")  # kind, RelayState, SigAlg: in that order
        signature = self._sp_key().sign(octets, padding.PKCS1v15(), hashes.SHA256())
        query["Signature"] = base64.b64encode(signature).decode("ascii")
        separator = "&" if "?" in destination else "?"
        return OutboundMessage(
            request_id=message_id,
            url=f"{destination}{separator}{urlencode(query)}",
            binding=BINDING_HTTP_REDIRECT,
            destination=destination,
        )

    def _sp_key(self) -> rsa.RSAPrivateKey:
        """Our signing key, for query signatures (pysaml2's Redirect signer is one object per
        algorithm for the whole process, its key swapped at each use: not safe across
        connections and threads)."""
        keys = self._sp_keys()
        if keys is None:
            raise ConfigError(["this SAML connection has no SP key pair to sign with"])
        path = keys.active.key_file
        with self._lock:
            if self._signing_key is not None and self._signing_key[0] == path:
                return self._signing_key[1]
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError([f"{path}: the SAML SP key must be an RSA key"])
        with self._lock:
            self._signing_key = (path, key)
        return key

    def _receive(
        self,
        *,
        binding: str,
        params: Mapping[str, str],
        kind: str,
        query_string: str | None,
    ) -> tuple[Element, Any]:
        """The checks every incoming logout message gets; its root and pysaml2's object."""
        slo_url = self._require_slo_url()
        if binding not in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
            raise ValueError(f"unsupported binding {binding!r}")
        tag = "LogoutRequest" if kind == "SAMLRequest" else "LogoutResponse"
        redirect = binding == BINDING_HTTP_REDIRECT
        document = _decode_logout(params.get(kind, ""), kind=kind, inflate=redirect)
        root = _check_logout_structure(
            document, tag=tag, xml_signature=not redirect, allow_sha1=self.connection.allow_sha1
        )
        try:
            saml_schema.validate(document)
        except saml_schema.SchemaInvalid as exc:
            raise _logout_refused(f"not valid against the SAML schema: {exc}", "schema") from None
        client = self.client()
        idp = self.idp_entity_id()
        issuers = root.findall(f"{{{SAML}}}Issuer")
        issuer = (issuers[0].text or "").strip() if len(issuers) == 1 else None
        if issuer != idp or issuers[0].get("Format", NAMEID_FORMAT_ENTITY) != NAMEID_FORMAT_ENTITY:
            # The message's Issuer is not logged: unverified text from whoever sent it.
            raise _logout_refused("the Issuer is not the configured IdP", "issuer")
        if redirect:
            self._verify_query_signature(client, idp, kind, params, query_string)
        message = self._verified_message(client, document, tag, xml_signature=not redirect)
        if root.get("Version") != "2.0":
            raise _logout_refused(f"Version {root.get('Version')!r}", "version")
        if root.get("Destination") != slo_url:
            raise _logout_refused("Destination is not this service's SLO endpoint", "destination")
        issued = _instant(root.get("IssueInstant"))
        now = self._clock()
        skew = self.connection.clock_skew_seconds
        if issued is None:
            raise _logout_refused("IssueInstant is missing or not a SAML instant", "issue_instant")
        if issued > now + skew or issued < now - LOGOUT_MESSAGE_MAX_AGE_SECONDS - skew:
            raise _logout_refused(f"issued {int(issued - now)} s from now", "issue_instant")
        return root, message

    def _verified_message(
        self, client: Saml2Client, document: bytes, tag: str, *, xml_signature: bool
    ) -> Any:
        """pysaml2's object of the message. With ``xml_signature`` (HTTP-POST) its enveloped
        signature must verify (with the certificates the metadata gives the Issuer,
        never a KeyInfo one, plus pysaml2's own profile of XML signatures); a Redirect
        message's stray XML signature is verified the same way when there is one."""
        xml = document.decode("utf-8")
        msgtype = "logout_request" if tag == "LogoutRequest" else "logout_response"
        check = getattr(client.sec, f"correctly_signed_{msgtype}")
        try:
            message = check(xml, must=xml_signature, origdoc=xml)
        except Exception as exc:
            raise _logout_refused(_summary(exc), "signature") from None
        if message is None or (xml_signature and message.signature is None):
            raise _logout_refused("no verified XML signature", "signature")
        try:
            valid_instance(message)
        except Exception as exc:
            raise _logout_refused(_summary(exc), "schema") from None
        return message

    def _verify_query_signature(
        self,
        client: Saml2Client,
        idp: str,
        kind: str,
        params: Mapping[str, str],
        query_string: str | None,
    ) -> None:
        """HTTP-Redirect (Bindings 3.4.4.1): SigAlg and Signature over ``kind``, RelayState and
        SigAlg, by a key of the IdP's metadata. pysaml2 checks no such signature on a
        LogoutResponse, and on a LogoutRequest to an SP only when misconfigured as an IdP."""
        sig_alg, signature = params.get("SigAlg"), params.get("Signature")
        if not sig_alg or not signature:
            raise _logout_refused("no SigAlg and Signature: unsigned", "unsigned")
        algorithm = REDIRECT_SIGNATURE_HASHES.get(sig_alg)
        if sig_alg in SHA1_ALGORITHMS and not self.connection.allow_sha1:
            raise _logout_refused(SHA1_REFUSED, "sha1")
        if algorithm is None:
            raise _logout_refused(
                f"SigAlg {describe_algorithm(sig_alg)} is not accepted (RSA with SHA-2)", "sig_alg"
            )
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise _logout_refused("Signature is not base64", "signature") from None
        keys = _idp_signing_keys(client, idp)
        if not keys:
            raise _logout_refused("no RSA signing certificate in the IdP metadata", "signature")
        for octets in _signed_octets(kind, params, query_string):
            for key in keys:
                try:
                    key.verify(raw_signature, octets, padding.PKCS1v15(), algorithm())
                except InvalidSignature:
                    continue
                return
        raise _logout_refused("the query signature does not verify", "signature")

    # -- pysaml2 configuration --------------------------------------------------------------

    def _config(
        self, metadata: str | None, keys: SPKeySet | None, *, authn_requests_signed: bool = False
    ) -> SPConfig:
        """pysaml2's configuration; ``authn_requests_signed`` only says so in the SP metadata
        (:meth:`authn_request` decides for each request)."""
        conn = self.connection
        endpoints: dict[str, list[tuple[str, str]]] = {
            "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]
        }
        if self.slo_url:
            endpoints["single_logout_service"] = [
                (self.slo_url, BINDING_HTTP_REDIRECT),
                (self.slo_url, BINDING_HTTP_POST),
            ]
        settings: dict[str, Any] = {
            "entityid": self.sp_entity_id,
            # Any backend that needs no program: _loaded() puts InProcessCrypto in its place.
            "crypto_backend": "XMLSecurity",
            "key_file": keys.active.key_file if keys else None,
            "cert_file": keys.active.cert_file if keys else None,
            "encryption_keypairs": [
                {"key_file": pair.key_file, "cert_file": pair.cert_file}
                for pair in (keys.decrypting if keys else ())
            ],
            "accepted_time_diff": conn.clock_skew_seconds,
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "name": "Storefront SSO broker",
                    "endpoints": endpoints,
                    "allow_unsolicited": conn.allow_idp_initiated,
                    "authn_requests_signed": authn_requests_signed,
                    "want_assertions_signed": conn.require_signed_assertion,
                    "want_response_signed": False,
                    "want_assertions_or_response_signed": True,
                    "name_id_format": [conn.name_id_format],
                    "name_id_format_allow_create": True,
                }
            },
        }
        if metadata is not None:
            settings["metadata"] = {"inline": [metadata]}
        config = SPConfig()
        config.load(settings)
        return config

    def _security(self, client: Saml2Client) -> InProcessSecurity:
        """The security context pysaml2 made for ``client``, made again on
        :class:`InProcessCrypto` (signatures, decryption) and :class:`RedirectSigner`."""
        sec = client.sec
        return InProcessSecurity(
            self._crypto,
            sec.key_file,
            cert_file=sec.cert_file,
            metadata=sec.metadata,
            only_use_keys_in_metadata=True,
            enc_key_files=sec.enc_key_files,
            encryption_keypairs=sec.encryption_keypairs,
            sec_backend=RedirectSigner(self._sp_key) if sec.key_file else None,
        )

    @staticmethod
    def _idp_wants_signed_requests(client: Saml2Client, idp: str) -> bool:
        descriptors = client.metadata[idp].get("idpsso_descriptor", [])
        return any(
            str(d.get("want_authn_requests_signed", "")).lower() == "true" for d in descriptors
        )


def _certificate_text(pem: str) -> str:
    """A PEM certificate as metadata carries it: the base64 body on one line."""
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


def _decode(encoded: str) -> bytes:
    if not encoded or len(encoded) > MAX_RESPONSE_BYTES:
        raise _refused(f"SAMLResponse of {len(encoded)} characters", "size")
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        raise _refused("SAMLResponse is not base64", "encoding") from None


def _assertion_signed(response: AuthnResponse) -> bool:
    # pysaml2 sets the assertion's signature only when it was present (and verified).
    return response.assertion.signature is not None


def _check_decrypted_signature(response: AuthnResponse, *, allow_sha1: bool) -> None:
    """The structural checks again on the assertion's own signature, which an encrypted
    assertion hid from them: it covers this assertion, with allowed algorithms."""
    signature = response.assertion.signature
    if signature is None:
        return
    references = signature.signed_info.reference or []
    if len(references) != 1 or references[0].uri != f"#{response.assertion.id}":
        raise _refused("the assertion's signature covers another element", "wrapping")
    method = signature.signed_info.signature_method
    check_algorithms(
        method.algorithm if method is not None else None,
        [r.digest_method.algorithm if r.digest_method is not None else None for r in references],
        allow_sha1=allow_sha1,
        refuse=_refused,
    )


def _attributes(assertion: Any) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement or ():
        for attribute in statement.attribute or ():
            texts = [(v.text or "").strip() for v in attribute.attribute_value or ()]
            texts = [t for t in texts if t]
            for name in (attribute.name, attribute.friendly_name):
                if name:
                    values.setdefault(name.casefold(), []).extend(texts)
    return values


def _first(attributes: dict[str, list[str]], names: Iterable[str]) -> str | None:
    return next(iter(_all(attributes, names)), None)


def _all(attributes: dict[str, list[str]], names: Iterable[str]) -> list[str]:
    for name in names:
        found = attributes.get(name.casefold())
        if found:
            return found
    return []


def _not_on_or_after(assertion: Any, now: float) -> int:
    """The latest time the assertion could still be accepted: how long to remember its ID."""
    candidates = []
    if assertion.conditions is not None and assertion.conditions.not_on_or_after:
        candidates.append(assertion.conditions.not_on_or_after)
    for confirmation in assertion.subject.subject_confirmation or ():
        data = confirmation.subject_confirmation_data
        if data is not None and data.not_on_or_after:
            candidates.append(data.not_on_or_after)
    stamps = [calendar.timegm(time_util.str_to_time(c)) for c in candidates]
    return max(stamps) if stamps else int(now) + 3600


# -- single logout helpers ----------------------------------------------------------------------


def _logout_refused(detail: str, kind: str) -> InvalidResponse:
    return InvalidResponse(
        "Your identity provider's sign-out message was not accepted.",
        detail=f"saml logout ({kind}): {detail}",
    )


def _decode_logout(encoded: str, *, kind: str, inflate: bool) -> bytes:
    """The XML of a ``SAMLRequest`` or ``SAMLResponse``: base64, then raw DEFLATE for
    HTTP-Redirect (Bindings 3.4.4.1), at most :data:`MAX_LOGOUT_XML_BYTES` either way."""
    if not encoded or len(encoded) > MAX_RESPONSE_BYTES:
        raise _logout_refused(f"{kind} of {len(encoded)} characters", "size")
    if not inflate:  # some IdPs wrap the base64 of the POST binding in lines
        encoded = "".join(encoded.split())
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _logout_refused(f"{kind} is not base64", "encoding") from None
    if inflate:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(data, MAX_LOGOUT_XML_BYTES + 1)
        except zlib.error:
            raise _logout_refused(f"{kind} is not DEFLATE-encoded", "encoding") from None
        if inflater.unconsumed_tail:
            data += b"x"  # more than the limit is left: refused just below
    if len(data) > MAX_LOGOUT_XML_BYTES:
        raise _logout_refused(f"{kind} larger than {MAX_LOGOUT_XML_BYTES} bytes", "size")
    return data


def _check_logout_structure(
    document: bytes, *, tag: str, xml_signature: bool, allow_sha1: bool
) -> Element:
    """The shapes :func:`broker.upstream.saml_checks.check_response_structure` refuses, for a
    logout message: UTF-8, no comments, no DTD or entities, the expected root with an ID, IDs
    unique, at most one ``ds:Signature``, a child of the root covering exactly the root
    (required when ``xml_signature``), and no SHA-1 unless allowed."""
    try:
        document.decode("utf-8")
    except UnicodeDecodeError:
        raise _logout_refused("not UTF-8", "xml") from None
    root = parse_protocol_message(document, tag=tag, refuse=_logout_refused)
    root_id = root.get("ID")
    if not root_id:
        raise _logout_refused(f"a {tag} without ID", "root")
    signatures = list(root.iter(f"{{{DS}}}Signature"))
    if len(signatures) > 1 or (signatures and signatures[0] not in list(root)):
        raise _logout_refused("a signature that is not the message's own", "wrapping")
    if xml_signature and not signatures:
        raise _logout_refused(f"the {tag} is not signed", "unsigned")
    for signature in signatures:
        references = signature.findall(f"./{{{DS}}}SignedInfo/{{{DS}}}Reference")
        if len(references) != 1 or references[0].get("URI") != f"#{root_id}":
            raise _logout_refused("a signature that does not cover the message", "wrapping")
        for signed_info in signature.findall(f"./{{{DS}}}SignedInfo"):
            check_signed_info(signed_info, allow_sha1=allow_sha1, refuse=_logout_refused)
    return root


def _instant(value: str | None) -> int | None:
    """A SAML instant (xs:dateTime in UTC, ``Z``, fractions ignored) as Unix seconds."""
    match = _INSTANT.fullmatch(value or "")
    if match is None:
        return None
    try:
        return calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _summary(exc: Exception) -> str:
    """An exception for a log line: pysaml2's can carry the whole document."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if "<" in text or text.startswith("{"):
        text = ""
    return f"{type(exc).__name__}: {text[:160]}".rstrip(": ")


class _IdPSigningKeysOnly:
    """The metadata as pysaml2's signature checks see it (``client.sec.metadata``): whatever
    entity a Response, Assertion or logout message names as its Issuer, the certificates it is
    verified with are those the metadata gives the configured IdP's IDPSSODescriptor for
    signing (``use="signing"`` or no use). Without this, pysaml2 takes the keys of the entity
    the element names, from any entity and role of the metadata (a federation aggregate's
    other IdPs, an SP's signing certificate). Everything else is the metadata's own."""

    def __init__(self, metadata: Any, entity_id: str) -> None:
        self._metadata = metadata
        self._entity_id = entity_id

    def certs(self, entity_id: Any, descriptor: Any, use: str = "signing") -> list[Any]:
        if use != "signing":
            return []
        return list(self._metadata.certs(self._entity_id, "idpsso", "signing"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metadata, name)


def _entities(entity_ids: Iterable[str]) -> str:
    """Entity ids for a log line (configuration, not personal data): the first few, cut short."""
    ids = list(entity_ids)
    shown = ", ".join(repr(entity[:200]) for entity in ids[:_ENTITIES_LOGGED])
    more = f" and {len(ids) - _ENTITIES_LOGGED} more" if len(ids) > _ENTITIES_LOGGED else ""
    return (shown or "none") + more


def _status_codes(root: Element) -> list[str]:
    """The Response's status codes, outermost first (Core 3.2.2.2), as log-safe words: a code
    SAML defines is kept, any other is "other". Never the StatusMessage or StatusDetail."""
    codes: list[str] = []
    parent: Element | None = root.find(f"{{{SAMLP}}}Status")
    while parent is not None and len(codes) < 5:
        code = parent.find(f"{{{SAMLP}}}StatusCode")
        if code is None:
            break
        codes.append(_status_word(code.get("Value") or ""))
        parent = code
    return codes


def _status_word(value: str) -> str:
    """A status code URI SAML defines (``urn:oasis:names:tc:SAML:2.0:status:Name``) as it is,
    any other as "other": the IdP's own text stays out of the log."""
    name = value.removeprefix(STATUS_PREFIX)
    known = value.startswith(STATUS_PREFIX) and _STATUS_NAME.fullmatch(name)
    return value if known else "other"


def _idp_signing_keys(client: Saml2Client, idp: str) -> list[rsa.RSAPublicKey]:
    """The RSA keys of the signing certificates the IdP's metadata gives its IdP role."""
    keys = []
    for _name, cert in client.metadata.certs(idp, "idpsso", "signing"):
        try:
            der = base64.b64decode("".join(str(cert).split()))
            key = x509.load_der_x509_certificate(der).public_key()
        except ValueError:
            continue
        if isinstance(key, rsa.RSAPublicKey):
            keys.append(key)
    return keys


def _signed_octets(kind: str, params: Mapping[str, str], query_string: str | None) -> list[bytes]:
    """What an HTTP-Redirect signature covers: ``kind``, RelayState (when present) and SigAlg,
    URL-encoded, in that order. From the raw query when given (the octets as sent; its values
    must be those of ``params`` and appear once); otherwise encoded again, as Python's
    ``urlencode`` and as JavaScript's ``encodeURIComponent`` do (pysaml2, samlify and
    others)."""
    names = (kind, "RelayState", "SigAlg")
    if query_string is not None:
        raw: dict[str, str] = {}
        for pair in query_string.split("&"):
            name, _, value = pair.partition("=")
            name = unquote_plus(name)
            if name in (*names, "Signature"):
                if name in raw:
                    raise _logout_refused(f"{name} given twice", "query")
                raw[name] = value
        for name in (*names, "Signature"):
            if (name in raw) != (name in params) or (
                name in raw and unquote_plus(raw[name]) != params[name]
            ):
                raise _logout_refused(f"{name} differs from the raw query", "query")
        return ["&".join(f"{name}={raw[name]}" for name in names if name in raw).encode()]
    encoders: tuple[Callable[[str], str], ...] = (
        lambda value: quote_plus(value, safe=""),
        lambda value: quote(value, safe="-_.!~*'()"),
    )
    candidates: list[bytes] = []
    for encode in encoders:
        octets = "&".join(f"{n}={encode(params[n])}" for n in names if n in params).encode()
        if octets not in candidates:
            candidates.append(octets)
    return candidates


def _auto_post_page(action: str, form: Mapping[str, str]) -> str:
    """The HTTP-POST binding's page: the form posts itself on load (a button without script)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in form.items()
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Signing out</title></head>'
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        "</body></html>\n"
    )
