"""When a copy of an IdP's SAML metadata may be used, and until when (SAML 2.0 Metadata, 2.3.1
``validUntil`` and ``cacheDuration``; Metadata Interoperability Profile, signed metadata).

- A copy past its ``validUntil`` is never used: the IdP, or whoever serves its metadata, let
  it lapse, and its keys may be retired.
- A fetched copy is fetched again after the connection's ``metadata_refresh_hours``, or
  sooner when its ``cacheDuration`` or ``validUntil`` says so (never more often than every
  :data:`MIN_REFRESH_SECONDS`).
- With ``idp_metadata_signing_cert`` (a pinned certificate, PEM), the document's root must
  carry an enveloped signature by that certificate (federations such as InCommon and eduGAIN
  sign their aggregates so; ADFS signs its FederationMetadata.xml).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from saml2.sigver import SignatureError

from broker.upstream.saml_crypto import InProcessCrypto

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_ROOTS = {f"{{{MD}}}EntityDescriptor", f"{{{MD}}}EntitiesDescriptor"}
#: A metadata copy is fetched again at most this often, whatever its cacheDuration says.
MIN_REFRESH_SECONDS = 60
_DURATION = re.compile(
    r"P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_DURATION_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


class MetadataRefused(ValueError):
    """This copy of the metadata may not be used; the message says why (for the log: dates
    and setting names, nothing of the document's text)."""


@dataclass(frozen=True)
class MetadataCopy:
    text: str
    #: Unix time after which the copy is never used (its validUntil), or None.
    valid_until: float | None
    #: Unix time at which a fetched copy is fetched again.
    refresh_at: float

    def usable(self, now: float) -> bool:
        return self.valid_until is None or now < self.valid_until


def accept_metadata(
    text: str,
    *,
    now: float,
    refresh_seconds: float,
    pinned_certificate: str | None,
    crypto: InProcessCrypto,
) -> MetadataCopy:
    """The copy of ``text`` to use, or MetadataRefused: not SAML metadata, past its
    validUntil, or not signed by ``pinned_certificate`` (PEM) when there is one."""
    try:
        root = fromstring(text.encode("utf-8"), forbid_dtd=True, forbid_entities=True)
    except (DefusedXmlException, ParseError, ValueError):
        raise MetadataRefused("not XML") from None
    if root.tag not in _ROOTS:
        raise MetadataRefused("not SAML metadata (no EntityDescriptor or EntitiesDescriptor)")
    valid_until = _instant(root.get("validUntil"))
    if root.get("validUntil") is not None and valid_until is None:
        raise MetadataRefused("validUntil is not a date and time")
    if valid_until is not None and valid_until <= now:
        expired = dt.datetime.fromtimestamp(valid_until, dt.UTC).isoformat(timespec="seconds")
        raise MetadataRefused(f"expired at {expired} (its validUntil): the IdP must publish anew")
    if pinned_certificate is not None:
        _check_signed(text, root.tag, root.get("ID"), pinned_certificate, crypto)
    wait = float(refresh_seconds)
    cache = _duration(root.get("cacheDuration"))
    if cache is not None:
        wait = min(wait, cache)
    if valid_until is not None:
        wait = min(wait, valid_until - now)
    return MetadataCopy(
        text=text, valid_until=valid_until, refresh_at=now + max(wait, MIN_REFRESH_SECONDS)
    )


def _check_signed(
    text: str, tag: str, root_id: str | None, pinned_certificate: str, crypto: InProcessCrypto
) -> None:
    if not root_id:
        raise MetadataRefused(
            "not signed (its root has no ID), but idp_metadata_signing_cert is set"
        )
    try:
        cert = x509.load_pem_x509_certificate(pinned_certificate.encode())
    except ValueError:
        raise MetadataRefused("idp_metadata_signing_cert is not a PEM certificate") from None
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    namespace, _, local = tag[1:].partition("}")
    try:
        crypto.verify(text, f"{namespace}:{local}", root_id, [der])
    except SignatureError as exc:
        raise MetadataRefused(
            f"its signature does not verify with idp_metadata_signing_cert ({exc})"
        ) from None


def _instant(value: str | None) -> float | None:
    """An xs:dateTime (a zone, or UTC when it has none) as Unix time."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _duration(value: str | None) -> float | None:
    """An xs:duration (``PT6H``, ``P1D``; years as 365 days, months as 30) in seconds."""
    match = _DURATION.fullmatch((value or "").strip())
    if match is None or not any(match.groupdict().values()):
        return None
    return sum(float(n) * _DURATION_SECONDS[unit] for unit, n in match.groupdict().items() if n)
