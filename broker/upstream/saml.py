"""SAML 2.0 service provider for one connection, on pysaml2 (with the xmlsec1 program).

Follows SAML 2.0 Core, Bindings (HTTP-Redirect for the AuthnRequest, HTTP-POST for the
Response) and the Web Browser SSO profile (saml-profiles-2.0-os, 4.1), with the checks the
profile requires and a few it only recommends, all strict by default:

- signatures only by the certificates in the configured IdP metadata, never a key carried in
  the message (pysaml2 verifies with the metadata's keys);
- a signed assertion (a signed response alone only with ``require_signed_assertion = false``);
- the structure first (:mod:`broker.upstream.saml_checks`): one assertion, signatures that
  cover their own element, no comments, no DTD, no SHA-1 unless allowed;
- Issuer (the metadata's IdP), Audience (our entity id), Destination and Recipient (our ACS),
  NotBefore/NotOnOrAfter with the connection's skew, a bearer SubjectConfirmation, and
  InResponseTo equal to the request this browser started (none for IdP-initiated).

The web layer owns RelayState, the pending request and the replay cache; this module checks
what it is handed and returns an :class:`Assertion` carrying the Identity. It imports neither
Flask nor anything about BigCommerce or storage.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, time_util
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.response import AuthnResponse

from broker.config import SAMLConnection
from broker.errors import IdPUnavailable, InvalidResponse
from broker.identity import Identity
from broker.upstream.saml_checks import SHA1_ALGORITHMS, check_response_structure
from broker.upstream.saml_checks import refused as _refused

XMLSEC_BINARY = "/usr/bin/xmlsec1"
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

logging.getLogger("saml2").setLevel(logging.WARNING)  # pysaml2 logs whole messages at INFO


@dataclass(frozen=True)
class Assertion:
    """A verified assertion: who, and how long its ID must be remembered against replay."""

    identity: Identity
    assertion_id: str
    not_on_or_after: int


class SAMLProvider:
    """A live SAML connection: IdP metadata, the AuthnRequest, the Response."""

    def __init__(
        self,
        connection: SAMLConnection,
        *,
        sp_entity_id: str,
        acs_url: str,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self._clock = clock
        self._http = httpx.Client(transport=transport, timeout=10.0)
        self._lock = threading.Lock()
        self._metadata: str | None = None
        self._fetched_at = float("-inf")
        self._client: Saml2Client | None = None

    # -- metadata -----------------------------------------------------------------------------

    def idp_metadata(self) -> str:
        """The IdP metadata: inline, from a file, or fetched (refreshed; last good copy kept)."""
        conn = self.connection
        if conn.idp_metadata_xml:
            return conn.idp_metadata_xml
        if conn.idp_metadata_file:
            return Path(conn.idp_metadata_file).read_text(encoding="utf-8")
        with self._lock:
            fresh = self._clock() - self._fetched_at < conn.metadata_refresh_hours * 3600
            if self._metadata is not None and fresh:
                return self._metadata
        try:
            response = self._http.get(str(conn.idp_metadata_url))
            response.raise_for_status()
            text = response.text
            if "EntityDescriptor" not in text:
                raise ValueError("not SAML metadata")
        except (httpx.HTTPError, ValueError) as exc:
            with self._lock:
                if self._metadata is not None:  # keep serving the last good copy
                    self._fetched_at = self._clock() - conn.metadata_refresh_hours * 3600 + 300
                    return self._metadata
            raise IdPUnavailable(
                "Your identity provider could not be reached. Please try again shortly.",
                detail=f"saml metadata: {type(exc).__name__}",
            ) from None
        with self._lock:
            if text != self._metadata:
                self._client = None
            self._metadata, self._fetched_at = text, self._clock()
        return text

    def client(self) -> Saml2Client:
        metadata = self.idp_metadata()
        with self._lock:
            if self._client is not None:
                return self._client
        client = Saml2Client(config=self._config(metadata))
        with self._lock:
            self._client = client
        return client

    def idp_entity_id(self) -> str:
        client = self.client()
        idps = list(client.metadata.identity_providers())
        wanted = self.connection.idp_entity_id
        if wanted:
            if wanted not in idps:
                raise IdPUnavailable(
                    "The identity provider's metadata does not match.",
                    detail=f"{wanted} not in metadata",
                )
            return wanted
        if len(idps) != 1:
            raise IdPUnavailable(
                "The identity provider's metadata is ambiguous.",
                detail=f"{len(idps)} IdPs in metadata: set idp_entity_id",
            )
        return str(idps[0])

    def sp_metadata(self) -> str:
        """This connection's SP metadata: entity id, ACS, signing and encryption certificates."""
        return str(entity_descriptor(self._config(None)))

    def probe(self) -> None:
        """Load the IdP metadata now: `broker check` reaches every IdP."""
        self.idp_entity_id()

    # -- the flow ---------------------------------------------------------------------------

    def authn_request(self, *, relay_state: str) -> tuple[str, str]:
        """An AuthnRequest over HTTP-Redirect: (its ID, the URL to send the browser to)."""
        client = self.client()
        idp = self.idp_entity_id()
        sign = self.connection.sign_authn_requests
        if sign is None:
            sign = self._idp_wants_signed_requests(client, idp)
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

    def handle_response(self, encoded: str, *, expected_request_id: str | None) -> Assertion:
        """Verify a POSTed SAMLResponse; ``expected_request_id`` None means IdP-initiated."""
        document = _decode(encoded)
        root = check_response_structure(document, allow_sha1=self.connection.allow_sha1)
        if root.get("Destination") != self.acs_url:
            raise _refused("Destination is not this service's ACS", "destination")
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
        response = self._parse(document, outstanding)
        return self._to_assertion(response)

    def _parse(self, document: bytes, outstanding: dict[str, str]) -> AuthnResponse:
        client = self.client()
        encoded = base64.b64encode(document).decode()
        try:
            response = client.parse_authn_request_response(
                encoded, BINDING_HTTP_POST, outstanding=outstanding
            )
        except Exception as exc:
            raise _refused(f"{type(exc).__name__}: {str(exc)[:200]}", "verify") from None
        if response is None or response.assertion is None:
            raise _refused("no verified assertion", "verify")
        if len(response.assertions) != 1:
            raise _refused(f"{len(response.assertions)} assertions after decryption", "assertions")
        issuer = response.issuer()
        if issuer != self.idp_entity_id():
            raise _refused(f"issuer {issuer!r} is not the configured IdP", "issuer")
        if self.connection.require_signed_assertion and not _assertion_signed(response):
            raise _refused("the assertion itself is not signed", "unsigned_assertion")
        _check_decrypted_signature(response, allow_sha1=self.connection.allow_sha1)
        self._check_bearer_confirmation(response)
        return response

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
            # A transient NameID changes at every sign-in: link on the e-mail instead.
            if not email:
                raise _refused("transient NameID and no e-mail", "name_id")
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
            issuer=str(response.issuer()),
            subject=subject,
            email=email,
            email_verified=bool(email) and conn.trust_email,
            first_name=_first(attributes, first_names),
            last_name=_first(attributes, last_names),
            groups=tuple(_all(attributes, group_names)),
            claims=MappingProxyType({k: tuple(v) for k, v in attributes.items()}),
        )
        return Assertion(
            identity=identity,
            assertion_id=str(assertion.id),
            not_on_or_after=_not_on_or_after(assertion, self._clock()),
        )

    # -- pysaml2 configuration --------------------------------------------------------------

    def _config(self, metadata: str | None) -> SPConfig:
        conn = self.connection
        settings: dict[str, Any] = {
            "entityid": self.sp_entity_id,
            "xmlsec_binary": XMLSEC_BINARY,
            "key_file": conn.sp_key_file,
            "cert_file": conn.sp_cert_file,
            "encryption_keypairs": [{"key_file": conn.sp_key_file, "cert_file": conn.sp_cert_file}],
            "accepted_time_diff": conn.clock_skew_seconds,
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "name": "Storefront SSO broker",
                    "endpoints": {
                        "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]
                    },
                    "allow_unsolicited": conn.allow_idp_initiated,
                    "authn_requests_signed": bool(conn.sign_authn_requests),
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

    @staticmethod
    def _idp_wants_signed_requests(client: Saml2Client, idp: str) -> bool:
        descriptors = client.metadata[idp].get("idpsso_descriptor", [])
        return any(
            str(d.get("want_authn_requests_signed", "")).lower() == "true" for d in descriptors
        )


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
    assertion hid from them: it covers this assertion, and it is not SHA-1."""
    signature = response.assertion.signature
    if signature is None:
        return
    references = signature.signed_info.reference or []
    if len(references) != 1 or references[0].uri != f"#{response.assertion.id}":
        raise _refused("the assertion's signature covers another element", "wrapping")
    algorithms = {signature.signed_info.signature_method.algorithm}
    algorithms |= {r.digest_method.algorithm for r in references if r.digest_method is not None}
    if not allow_sha1 and algorithms & SHA1_ALGORITHMS:
        raise _refused("signed with SHA-1, which this connection does not accept", "sha1")


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
