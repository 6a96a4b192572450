"""IdP metadata over time in :class:`~broker.upstream.saml.SAMLProvider`: ``validUntil``,
``cacheDuration``, the last good copy, signed metadata against a pinned certificate, and an IdP
rolling its signing key over (two certificates published at once).

The metadata is the samlify IdP's (tests/support/saml_idp.py), served as published or changed
by a small metadata server started here, which counts how often it is fetched; sign-ins go to
the samlify IdP over real HTTP. The provider's clock is the test's.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import xmlsec
from flask import Flask, Response
from lxml import etree

from broker.config import SAMLConnection
from broker.errors import IdPUnavailable, UpstreamMisconfigured
from broker.keys import make_key_pair
from broker.upstream.saml import SAMLProvider
from tests.support.broker_log import LogLines
from tests.support.certificates import key_pair
from tests.support.clock import Clock
from tests.support.saml_idp import SamlIdp, complete_sso, start_saml_idp
from tests.support.servers import serve_in_thread

SP = "https://shop.example/acme/saml/corp"
ENTITY_ID, ACS = f"{SP}/metadata", f"{SP}/acs"
USERS = {"alice": {"email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}}
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass
class MetadataServer:
    """Serves ``body`` (or answers ``status``) at ``url``, counting the fetches."""

    url: str = ""
    body: str = ""
    status: int = 200
    fetches: int = 0
    log: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def idp() -> Iterator[SamlIdp]:
    with start_saml_idp(sp={"entity_id": ENTITY_ID, "acs_url": ACS}, users=USERS) as started:
        yield started


@pytest.fixture(scope="module")
def published(idp: SamlIdp) -> str:
    return httpx.get(idp.metadata_url, timeout=10).text


@pytest.fixture
def server(published: str) -> Iterator[MetadataServer]:
    state = MetadataServer(body=published)
    app = Flask("metadata")

    @app.get("/metadata.xml")
    def metadata() -> Response:
        state.fetches += 1
        return Response(state.body, status=state.status, mimetype="application/samlmetadata+xml")

    with serve_in_thread(app) as running:
        state.url = f"{running.url}/metadata.xml"
        yield state


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_key_pair(tmp_path_factory.mktemp("sp"))


def provider(sp_keys: tuple[Path, Path], clock: Clock, **fields: object) -> SAMLProvider:
    key_file, cert_file = sp_keys
    connection = SAMLConnection(
        key="corp",
        display_name="Corp",
        sp_key_file=str(key_file),
        sp_cert_file=str(cert_file),
        **fields,
    )
    return SAMLProvider(connection, sp_entity_id=ENTITY_ID, acs_url=ACS, clock=clock)


def signs_in(saml: SAMLProvider) -> bool:
    request_id, url = saml.authn_request(relay_state="rs")
    with httpx.Client(timeout=10) as http:
        _, form = complete_sso(http, url, "alice")
    assertion = saml.handle_response(form["SAMLResponse"], expected_request_id=request_id)
    return assertion.identity.email == "alice@example.com"


def _instant(seconds_from_now: float, clock: Clock) -> str:
    moment = dt.datetime.fromtimestamp(clock.now + seconds_from_now, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def with_root_attributes(metadata: str, **attributes: str) -> str:
    text = " ".join(f'{name}="{value}"' for name, value in attributes.items())
    return re.sub(r"<((?:md:)?EntityDescriptor)\b", rf"<\1 {text}", metadata, count=1)


# -- validUntil and cacheDuration ------------------------------------------------------------


def test_metadata_past_its_valid_until_is_not_used(
    published: str, sp_keys: tuple[Path, Path]
) -> None:
    clock = Clock()
    expired = with_root_attributes(published, validUntil=_instant(-60, clock))
    saml = provider(sp_keys, clock, idp_metadata_xml=expired)
    with pytest.raises(UpstreamMisconfigured) as refusal:
        saml.authn_request(relay_state="rs")
    assert "expired at" in str(refusal.value.detail)
    assert "validUntil" in str(refusal.value.detail)


def test_metadata_in_the_file_stops_being_used_when_it_lapses(
    published: str, sp_keys: tuple[Path, Path]
) -> None:
    clock = Clock()
    lapsing = with_root_attributes(published, validUntil=_instant(3600, clock))
    saml = provider(sp_keys, clock, idp_metadata_xml=lapsing)
    assert signs_in(saml)
    clock.advance(3601)
    with pytest.raises(UpstreamMisconfigured):
        saml.authn_request(relay_state="rs")


def test_cache_duration_shortens_the_refresh(
    server: MetadataServer, published: str, sp_keys: tuple[Path, Path]
) -> None:
    clock = Clock()
    server.body = with_root_attributes(published, cacheDuration="PT10M")
    saml = provider(sp_keys, clock, idp_metadata_url=server.url, metadata_refresh_hours=24)
    assert signs_in(saml)
    assert server.fetches == 1
    clock.advance(9 * 60)
    assert signs_in(saml)
    assert server.fetches == 1, "still fresh"
    clock.advance(2 * 60)
    assert signs_in(saml)
    assert server.fetches == 2, "refetched after its cacheDuration, not after 24 hours"


def test_the_last_good_copy_is_kept_while_the_idp_fails_but_never_past_valid_until(
    server: MetadataServer, published: str, sp_keys: tuple[Path, Path]
) -> None:
    clock = Clock()
    server.body = with_root_attributes(published, validUntil=_instant(3 * 3600, clock))
    saml = provider(sp_keys, clock, idp_metadata_url=server.url, metadata_refresh_hours=1)
    assert signs_in(saml)
    server.status = 500
    clock.advance(3600 + 1)  # due for a refresh, which fails: the copy is still valid
    assert signs_in(saml)
    assert server.fetches == 2
    clock.advance(2 * 3600)  # past validUntil, and the IdP still fails
    with pytest.raises(IdPUnavailable):
        saml.authn_request(relay_state="rs")


def test_a_refresh_that_brings_expired_metadata_keeps_the_good_copy(
    server: MetadataServer, published: str, sp_keys: tuple[Path, Path]
) -> None:
    clock = Clock()
    saml = provider(sp_keys, clock, idp_metadata_url=server.url, metadata_refresh_hours=1)
    assert signs_in(saml)
    server.body = with_root_attributes(published, validUntil=_instant(-60, clock))
    clock.advance(3601)
    assert signs_in(saml)
    assert server.fetches == 2


# -- signed metadata, a pinned certificate ---------------------------------------------------


def signed_metadata(metadata: str, key_pem: bytes, *, root_id: str = "_md1") -> str:
    root = etree.fromstring(metadata.encode())
    root.set("ID", root_id)
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
    )
    root.insert(0, signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{root_id}"
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    context.register_id(root, "ID")
    context.sign(signature)
    return str(etree.tostring(root, encoding="unicode"))


def _pem(certificate_b64: str) -> str:
    lines = [certificate_b64[i : i + 64] for i in range(0, len(certificate_b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def test_metadata_signed_by_the_pinned_certificate_is_used(
    server: MetadataServer, published: str, sp_keys: tuple[Path, Path]
) -> None:
    federation_key, federation_cert = key_pair()
    server.body = signed_metadata(published, federation_key)
    saml = provider(
        sp_keys,
        Clock(),
        idp_metadata_url=server.url,
        idp_metadata_signing_cert=_pem(federation_cert),
    )
    assert signs_in(saml)


@pytest.mark.parametrize("forgery", ["unsigned", "another signer", "changed after signing"])
def test_metadata_not_signed_by_the_pinned_certificate_is_refused(
    server: MetadataServer, published: str, sp_keys: tuple[Path, Path], forgery: str
) -> None:
    federation_key, federation_cert = key_pair()
    if forgery == "unsigned":
        server.body = published
    elif forgery == "another signer":
        server.body = signed_metadata(published, key_pair()[0])
    else:
        evil = published.replace("/sso", "/evil-sso")
        assert evil != published
        signed = signed_metadata(published, federation_key)
        server.body = signed.replace("/sso", "/evil-sso")
    saml = provider(
        sp_keys,
        Clock(),
        idp_metadata_url=server.url,
        idp_metadata_signing_cert=_pem(federation_cert),
    )
    with pytest.raises(UpstreamMisconfigured) as refusal:
        saml.authn_request(relay_state="rs")
    assert "idp_metadata_signing_cert" in str(refusal.value.detail)


# -- the IdP rolls its signing key over ------------------------------------------------------


def test_both_certificates_are_accepted_while_the_idp_rolls_its_key_over(
    published: str, sp_keys: tuple[Path, Path]
) -> None:
    """The IdP publishes its next certificate beside the current one (before it, here) and
    signs with either: an assertion signed by the current key verifies."""
    _, next_cert = key_pair()
    descriptor = re.search(
        r"<(?:md:)?KeyDescriptor\b[^>]*use=\"signing\"[^>]*>.*?</(?:md:)?KeyDescriptor>",
        published,
        re.S,
    )
    assert descriptor is not None, published
    current = descriptor.group(0)
    replaced_cert = re.sub(
        r"(<(?:ds:)?X509Certificate>)[^<]+(</(?:ds:)?X509Certificate>)",
        rf"\g<1>{next_cert}\g<2>",
        current,
    )
    both = published.replace(current, replaced_cert + current, 1)
    saml = provider(sp_keys, Clock(), idp_metadata_xml=both)
    assert len(saml.signing_certificates()) == 2
    assert signs_in(saml)


def test_only_the_next_certificate_does_not_verify_the_current_key(
    published: str, sp_keys: tuple[Path, Path]
) -> None:
    """Control for the rollover test: with the current certificate gone, it fails."""
    _, next_cert = key_pair()
    only_next = re.sub(
        r"(<(?:ds:)?X509Certificate>)[^<]+(</(?:ds:)?X509Certificate>)",
        rf"\g<1>{next_cert}\g<2>",
        published,
    )
    saml = provider(sp_keys, Clock(), idp_metadata_xml=only_next)
    with pytest.raises(Exception, match="not accepted"):
        signs_in(saml)


# -- certificates about to lapse are logged ---------------------------------------------------


def _with_signing_certificate(metadata: str, certificate: str) -> str:
    signing = r"<(?:md:)?KeyDescriptor\b[^>]*use=\"signing\"[^>]*>.*?</(?:md:)?KeyDescriptor>"
    current = re.search(signing, metadata, re.S)
    assert current is not None, metadata
    extra = re.sub(
        r"(<(?:ds:)?X509Certificate>)[^<]+(</(?:ds:)?X509Certificate>)",
        rf"\g<1>{certificate}\g<2>",
        current.group(0),
    )
    return metadata.replace(current.group(0), current.group(0) + extra, 1)


@pytest.mark.parametrize(
    ("days", "event"),
    [(10, "saml.idp_certificate_expiring"), (-3, "saml.idp_certificate_expired")],
)
def test_an_idp_certificate_expiring_within_30_days_is_logged_once(
    published: str, sp_keys: tuple[Path, Path], broker_log: LogLines, days: int, event: str
) -> None:
    _, lapsing = key_pair(days=days)
    saml = provider(
        sp_keys, Clock(), idp_metadata_xml=_with_signing_certificate(published, lapsing)
    )
    assert signs_in(saml), "the IdP's current certificate still verifies"
    assert signs_in(saml)
    fingerprint = hashlib.sha256(base64.b64decode(lapsing)).hexdigest()
    mine = [
        line for line in broker_log.events(event) if line["sha256"].replace(":", "") == fingerprint
    ]
    assert len(mine) == 1, "logged once per metadata copy, not at each sign-in"
    assert mine[0]["connection"] == "corp"
    assert mine[0]["days"] in (days - 1, days)


def test_a_pinned_certificate_that_is_not_pem_is_named(
    server: MetadataServer, published: str, sp_keys: tuple[Path, Path]
) -> None:
    federation_key, _ = key_pair()
    server.body = signed_metadata(published, federation_key)
    saml = provider(
        sp_keys, Clock(), idp_metadata_url=server.url, idp_metadata_signing_cert="not a PEM"
    )
    with pytest.raises(UpstreamMisconfigured) as refusal:
        saml.authn_request(relay_state="rs")
    assert "idp_metadata_signing_cert is not a PEM certificate" in str(refusal.value.detail)
