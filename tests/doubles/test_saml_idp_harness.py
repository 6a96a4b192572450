"""The SAML IdP harness itself: a real samlify IdP answers a minimal service provider written here
(AuthnRequests built by hand, signatures checked and assertions decrypted with the ``xmlsec1``
command), with each signing and encryption option visible in the XML, IdP-initiated login, refused
logins, signed AuthnRequests and single logout both ways."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.etree import ElementTree as ET

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.saml_idp import (
    ATTRIBUTES,
    SamlIdp,
    auto_post_form,
    complete_slo,
    complete_sso,
    decode_post_message,
    decode_redirect_message,
    idp_initiated,
    initiate_logout,
    start_saml_idp,
)

# The SP's endpoints are never served: the helpers return what would be sent there.
SP_ENTITY_ID = "http://127.0.0.1:9/saml/metadata"
ACS_URL = "http://127.0.0.1:9/saml/acs"
SLO_URL = "http://127.0.0.1:9/saml/slo"

ALICE = {
    "email": "alice@example.com",
    "first_name": "Alice",
    "last_name": "Liddell",
    "groups": ["buyers", "admins"],
}
USERS = {"alice": ALICE}

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


# -- the throw-away SP ----------------------------------------------------------------------------


@dataclass
class SpKeys:
    key_pem: str
    cert_pem: str
    key: rsa.RSAPrivateKey
    directory: Path


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    """The SP's RSA key and self-signed certificate (signing and encryption)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throw-away SP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    directory = tmp_path_factory.mktemp("sp")
    (directory / "sp-key.pem").write_text(key_pem)
    (directory / "sp-cert.pem").write_text(cert_pem)
    return SpKeys(key_pem, cert_pem, key, directory)


SP = {"entity_id": SP_ENTITY_ID, "acs_url": ACS_URL, "slo_url": SLO_URL}


@pytest.fixture(scope="module")
def default_idp() -> Iterator[SamlIdp]:
    """The IdP with its default options: signed assertion, unsigned response, rsa-sha256."""
    with start_saml_idp(sp=SP, users=USERS) as idp:
        yield idp


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deflate(xml: str) -> str:
    compressor = zlib.compressobj(wbits=-15)
    return base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()


def authn_request_url(
    idp: SamlIdp,
    request_id: str,
    relay_state: str | None = "rs-123",
    *,
    sign_with: rsa.RSAPrivateKey | None = None,
    issuer: str = SP_ENTITY_ID,
) -> str:
    """The SP's redirect to the IdP: an AuthnRequest in the HTTP-Redirect binding, signed as
    that binding says (over SAMLRequest, RelayState and SigAlg as URL-encoded) if asked."""
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{request_id}" Version="2.0" IssueInstant="{_now()}" '
        f'Destination="{idp.sso_url}" AssertionConsumerServiceURL="{ACS_URL}" '
        'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{issuer}</saml:Issuer>"
        f'<samlp:NameIDPolicy Format="{EMAIL_FORMAT}" AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    )
    pairs = [("SAMLRequest", _deflate(xml))]
    if relay_state is not None:
        pairs.append(("RelayState", relay_state))
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)
    if sign_with is not None:
        query += f"&SigAlg={quote(RSA_SHA256, safe='')}"
        signature = sign_with.sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())
        query += f"&Signature={quote(base64.b64encode(signature).decode(), safe='')}"
    return f"{idp.sso_url}?{query}"


def parse(xml: str) -> ET.Element:
    # The IdP under test is ours and runs on 127.0.0.1; nothing untrusted is parsed here.
    return ET.fromstring(xml)  # noqa: S314


def xmlsec_verify(xml: str, cert_pem: str, node_xpath: str, workdir: Path) -> bool:
    """Verify the one ``<ds:Signature>`` at ``node_xpath`` with only ``cert_pem`` (the
    certificate in the signature's KeyInfo is ignored), as pysaml2 calls xmlsec1."""
    (workdir / "message.xml").write_text(xml)
    (workdir / "trusted.pem").write_text(cert_pem)
    result = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--enabled-reference-uris",
            "empty,same-doc",
            "--enabled-key-data",
            "raw-x509-cert",
            "--pubkey-cert-pem",
            str(workdir / "trusted.pem"),
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
            "--node-xpath",
            node_xpath,
            str(workdir / "message.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 0


def xmlsec_decrypt(xml: str, keys: SpKeys, workdir: Path) -> str:
    (workdir / "encrypted.xml").write_text(xml)
    result = subprocess.run(
        [
            "xmlsec1",
            "--decrypt",
            "--privkey-pem",
            str(keys.directory / "sp-key.pem"),
            str(workdir / "encrypted.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


RESPONSE_SIGNATURE = "/*[local-name()='Response']/*[local-name()='Signature']"
ASSERTION_SIGNATURE = (
    "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']"
)
DECRYPTED_ASSERTION_SIGNATURE = (
    "/*[local-name()='Response']/*[local-name()='EncryptedAssertion']"
    "/*[local-name()='Assertion']/*[local-name()='Signature']"
)


def attributes_of(assertion: ET.Element) -> dict[str, list[str]]:
    return {
        str(attribute.get("Name")): [
            v.text or "" for v in attribute.findall("saml:AttributeValue", NS)
        ]
        for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS)
    }


def check_assertion(assertion: ET.Element, idp: SamlIdp, in_response_to: str | None) -> None:
    """Issuer, subject, conditions and attributes of a successful login as alice."""
    assert assertion.findtext("saml:Issuer", namespaces=NS) == idp.entity_id
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    assert name_id.text == "alice@example.com"
    assert name_id.get("Format") == EMAIL_FORMAT
    confirmation = assertion.find("saml:Subject/saml:SubjectConfirmation", NS)
    assert confirmation is not None
    assert confirmation.get("Method") == "urn:oasis:names:tc:SAML:2.0:cm:bearer"
    data = confirmation.find("saml:SubjectConfirmationData", NS)
    assert data is not None
    assert data.get("Recipient") == ACS_URL
    assert data.get("InResponseTo") == in_response_to
    assert (
        assertion.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS)
        == SP_ENTITY_ID
    )
    statement = assertion.find("saml:AuthnStatement", NS)
    assert statement is not None
    assert statement.get("SessionIndex")
    assert attributes_of(assertion) == {
        ATTRIBUTES["email"]: ["alice@example.com"],
        ATTRIBUTES["first_name"]: ["Alice"],
        ATTRIBUTES["last_name"]: ["Liddell"],
        ATTRIBUTES["groups"]: ["buyers", "admins"],
    }


def check_response(response: ET.Element, idp: SamlIdp, in_response_to: str | None) -> None:
    assert response.tag == f"{{{NS['samlp']}}}Response"
    assert response.get("Destination") == ACS_URL
    assert response.get("InResponseTo") == in_response_to
    assert response.findtext("saml:Issuer", namespaces=NS) == idp.entity_id
    status = response.find("samlp:Status/samlp:StatusCode", NS)
    assert status is not None
    assert status.get("Value") == SUCCESS


def signature_methods(signature: ET.Element) -> tuple[str | None, str | None]:
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
    digest = signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS)
    assert method is not None
    assert digest is not None
    return method.get("Algorithm"), digest.get("Algorithm")


# -- the tests ------------------------------------------------------------------------------------


def test_metadata_names_the_entity_certificate_and_endpoints(default_idp: SamlIdp) -> None:
    response = httpx.get(default_idp.metadata_url, timeout=10)
    assert response.status_code == 200
    metadata = parse(response.text)
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    assert metadata.get("entityID") == default_idp.entity_id
    assert default_idp.entity_id == default_idp.metadata_url
    descriptor = metadata.find(f"{{{md}}}IDPSSODescriptor")
    assert descriptor is not None
    assert descriptor.get("WantAuthnRequestsSigned") == "false"
    cert = descriptor.findtext(
        f"{{{md}}}KeyDescriptor[@use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate",
        namespaces=NS,
    )
    assert cert is not None
    assert x509.load_der_x509_certificate(base64.b64decode(cert)) == x509.load_pem_x509_certificate(
        default_idp.cert_pem.encode()
    )
    services = {
        (element.tag.split("}")[1], str(element.get("Binding")).rsplit(":", 1)[1]): element.get(
            "Location"
        )
        for element in descriptor
        if element.get("Binding")
    }
    assert services == {
        ("SingleSignOnService", "HTTP-Redirect"): default_idp.sso_url,
        ("SingleSignOnService", "HTTP-POST"): default_idp.sso_url,
        ("SingleLogoutService", "HTTP-Redirect"): default_idp.slo_url,
        ("SingleLogoutService", "HTTP-POST"): default_idp.slo_url,
    }


def test_sp_initiated_login_signs_the_assertion_only(
    default_idp: SamlIdp, http: httpx.Client, sp_keys: SpKeys, tmp_path: Path
) -> None:
    request_id = "_" + secrets.token_hex(16)
    acs, form = complete_sso(http, authn_request_url(default_idp, request_id), "alice")

    assert acs == ACS_URL
    assert form["RelayState"] == "rs-123"
    xml = decode_post_message(form["SAMLResponse"])
    response = parse(xml)
    check_response(response, default_idp, request_id)
    assert response.find("ds:Signature", NS) is None
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    check_assertion(assertion, default_idp, request_id)
    signature = assertion.find("ds:Signature", NS)
    assert signature is not None
    assert signature_methods(signature) == (RSA_SHA256, "http://www.w3.org/2001/04/xmlenc#sha256")
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    assert reference is not None
    assert reference.get("URI") == f"#{assertion.get('ID')}"

    assert xmlsec_verify(xml, default_idp.cert_pem, ASSERTION_SIGNATURE, tmp_path)
    # Not just any certificate: the SP's own does not verify it.
    assert not xmlsec_verify(xml, sp_keys.cert_pem, ASSERTION_SIGNATURE, tmp_path)
    # Nor does a tampered assertion.
    tampered = xml.replace("alice@example.com</saml:NameID>", "mallory@example.com</saml:NameID>")
    assert tampered != xml
    assert not xmlsec_verify(tampered, default_idp.cert_pem, ASSERTION_SIGNATURE, tmp_path)

    requests = [e for e in default_idp.events() if e["type"] == "authn_request"]
    assert any(e["id"] == request_id and e["binding"] == "redirect" for e in requests)


def test_relay_state_is_optional_and_a_new_form_each_time(
    default_idp: SamlIdp, http: httpx.Client
) -> None:
    acs, form = complete_sso(http, authn_request_url(default_idp, "_r1", None), "alice")
    assert acs == ACS_URL
    assert "RelayState" not in form
    _, again = complete_sso(http, authn_request_url(default_idp, "_r2", None), "alice")
    assert parse(decode_post_message(again["SAMLResponse"])).get("InResponseTo") == "_r2"


def test_unknown_login_gets_a_failed_status_and_no_assertion(
    default_idp: SamlIdp, http: httpx.Client, tmp_path: Path
) -> None:
    acs, form = complete_sso(http, authn_request_url(default_idp, "_nobody"), "mallory")
    assert acs == ACS_URL
    xml = decode_post_message(form["SAMLResponse"])
    response = parse(xml)
    assert response.get("InResponseTo") == "_nobody"
    top = response.find("samlp:Status/samlp:StatusCode", NS)
    assert top is not None
    assert top.get("Value") == "urn:oasis:names:tc:SAML:2.0:status:Responder"
    second = top.find("samlp:StatusCode", NS)
    assert second is not None
    assert second.get("Value") == "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
    assert response.find("saml:Assertion", NS) is None
    assert xmlsec_verify(xml, default_idp.cert_pem, RESPONSE_SIGNATURE, tmp_path)


def test_idp_refuses_an_authn_request_from_another_sp(
    default_idp: SamlIdp, http: httpx.Client
) -> None:
    url = authn_request_url(default_idp, "_other", issuer="http://127.0.0.1:9/other-sp")
    response = http.get(url)
    assert response.status_code == 400
    assert "is not the SP" in response.text


def test_idp_initiated_login_has_no_in_response_to(
    default_idp: SamlIdp, http: httpx.Client, tmp_path: Path
) -> None:
    acs, form = idp_initiated(http, default_idp, "alice", relay_state="/account")
    assert acs == ACS_URL
    assert form["RelayState"] == "/account"
    xml = decode_post_message(form["SAMLResponse"])
    assert "InResponseTo" not in xml
    response = parse(xml)
    check_response(response, default_idp, None)
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    check_assertion(assertion, default_idp, None)
    assert xmlsec_verify(xml, default_idp.cert_pem, ASSERTION_SIGNATURE, tmp_path)

    acs, form = idp_initiated(http, default_idp, "alice")
    assert "RelayState" not in form


def test_signed_response_only(http: httpx.Client, tmp_path: Path) -> None:
    with start_saml_idp(
        sp=SP, users=USERS, idp={"sign_assertion": False, "sign_response": True}
    ) as idp:
        _, form = complete_sso(http, authn_request_url(idp, "_resp"), "alice")
    xml = decode_post_message(form["SAMLResponse"])
    response = parse(xml)
    check_response(response, idp, "_resp")
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    check_assertion(assertion, idp, "_resp")
    assert assertion.find("ds:Signature", NS) is None
    signature = response.find("ds:Signature", NS)
    assert signature is not None
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    assert reference is not None
    assert reference.get("URI") == f"#{response.get('ID')}"
    # The signature comes right after the Response's Issuer, as the schema wants.
    assert [child.tag.split("}")[1] for child in response][:3] == ["Issuer", "Signature", "Status"]
    assert xmlsec_verify(xml, idp.cert_pem, RESPONSE_SIGNATURE, tmp_path)


def test_sha1_signatures_and_both_signed(http: httpx.Client, tmp_path: Path) -> None:
    with start_saml_idp(
        sp=SP,
        users=USERS,
        idp={"sign_assertion": True, "sign_response": True, "signature_algorithm": "rsa-sha1"},
    ) as idp:
        _, form = idp_initiated(http, idp, "alice")
    xml = decode_post_message(form["SAMLResponse"])
    response = parse(xml)
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    sha1 = (
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    )
    for element in (response, assertion):
        signature = element.find("ds:Signature", NS)
        assert signature is not None
        assert signature_methods(signature) == sha1
    assert xmlsec_verify(xml, idp.cert_pem, ASSERTION_SIGNATURE, tmp_path)
    assert xmlsec_verify(xml, idp.cert_pem, RESPONSE_SIGNATURE, tmp_path)


def test_encrypted_assertion(http: httpx.Client, sp_keys: SpKeys, tmp_path: Path) -> None:
    sp = {**SP, "encryption_cert_pem": sp_keys.cert_pem}
    with start_saml_idp(
        sp=sp,
        users=USERS,
        idp={"encrypt_assertion": True, "sign_assertion": True, "sign_response": True},
    ) as idp:
        _, form = complete_sso(http, authn_request_url(idp, "_enc"), "alice")
    xml = decode_post_message(form["SAMLResponse"])
    response = parse(xml)
    check_response(response, idp, "_enc")
    assert response.find("saml:Assertion", NS) is None
    assert "alice@example.com" not in xml
    encrypted = response.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    assert encrypted is not None
    method = encrypted.find("xenc:EncryptionMethod", NS)
    assert method is not None
    assert method.get("Algorithm") == "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
    # The response signature is made after the encryption: it covers the EncryptedAssertion.
    assert xmlsec_verify(xml, idp.cert_pem, RESPONSE_SIGNATURE, tmp_path)

    decrypted_xml = xmlsec_decrypt(xml, sp_keys, tmp_path)
    decrypted = parse(decrypted_xml)
    assertion = decrypted.find("saml:EncryptedAssertion/saml:Assertion", NS)
    assert assertion is not None
    check_assertion(assertion, idp, "_enc")
    # The assertion was signed before it was encrypted: its signature holds once decrypted.
    assert xmlsec_verify(decrypted_xml, idp.cert_pem, DECRYPTED_ASSERTION_SIGNATURE, tmp_path)


def test_unsigned_expired_and_renamed_attributes(http: httpx.Client) -> None:
    """Both signing options off, the clock an hour back, attributes renamed and left out."""
    options = {
        "sign_assertion": False,
        "sign_response": False,
        "time_offset_seconds": -3600,
        "attributes": {"email": "mail", "groups": None},
    }
    users = {"alice": {**ALICE, "attributes": {"urn:oid:2.5.4.10": ["Wonderland"]}}}
    with start_saml_idp(sp=SP, users=users, idp=options) as idp:
        _, form = idp_initiated(http, idp, "alice")
    xml = decode_post_message(form["SAMLResponse"])
    assert "Signature" not in xml
    assertion = parse(xml).find("saml:Assertion", NS)
    assert assertion is not None
    assert attributes_of(assertion) == {
        "mail": ["alice@example.com"],
        ATTRIBUTES["first_name"]: ["Alice"],
        ATTRIBUTES["last_name"]: ["Liddell"],
        "urn:oid:2.5.4.10": ["Wonderland"],
    }
    conditions = assertion.find("saml:Conditions", NS)
    assert conditions is not None
    not_on_or_after = dt.datetime.fromisoformat(str(conditions.get("NotOnOrAfter")))
    assert not_on_or_after < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50)


def test_authn_request_in_the_http_post_binding(default_idp: SamlIdp, http: httpx.Client) -> None:
    url = authn_request_url(default_idp, "_posted")
    query = parse_qs(urlsplit(url).query)
    xml = decode_redirect_message(query["SAMLRequest"][0])
    page = http.post(
        default_idp.sso_url,
        data={"SAMLRequest": base64.b64encode(xml.encode()).decode(), "RelayState": "p"},
    )
    assert page.status_code == 200
    assert 'name="login"' in page.text
    assert "Sign in</button>" in page.text
    request_key = page.text.split('name="request_key" value="')[1].split('"')[0]
    answer = http.post(default_idp.sso_url, data={"request_key": request_key, "login": "alice"})
    acs, form = auto_post_form(answer)
    assert acs == ACS_URL
    assert form["RelayState"] == "p"
    assert parse(decode_post_message(form["SAMLResponse"])).get("InResponseTo") == "_posted"
    used_again = http.post(default_idp.sso_url, data={"request_key": request_key, "login": "alice"})
    assert used_again.status_code == 400


def test_signed_authn_requests_are_required_and_verified(
    http: httpx.Client, sp_keys: SpKeys
) -> None:
    sp = {**SP, "signing_cert_pem": sp_keys.cert_pem}
    with start_saml_idp(sp=sp, users=USERS, idp={"want_authn_requests_signed": True}) as idp:
        metadata = httpx.get(idp.metadata_url, timeout=10).text
        assert 'WantAuthnRequestsSigned="true"' in metadata

        url = authn_request_url(idp, "_signed", sign_with=sp_keys.key)
        _, form = complete_sso(http, url, "alice")
        assert parse(decode_post_message(form["SAMLResponse"])).get("InResponseTo") == "_signed"

        unsigned = http.get(authn_request_url(idp, "_unsigned"))
        assert unsigned.status_code == 400
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = http.get(authn_request_url(idp, "_forged", sign_with=other_key))
        assert forged.status_code == 400
        assert "AuthnRequest refused" in forged.text


def _verify_redirect_signature(url: str, cert_pem: str, param: str) -> None:
    """Check a Redirect-binding signature over ``param``, RelayState and SigAlg as sent."""
    raw = dict(pair.split("=", 1) for pair in urlsplit(url).query.split("&"))
    signed = "&".join(f"{k}={raw[k]}" for k in (param, "RelayState", "SigAlg") if k in raw)
    query = parse_qs(urlsplit(url).query)
    assert query["SigAlg"] == [RSA_SHA256]
    public_key: Any = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    public_key.verify(
        base64.b64decode(query["Signature"][0]),
        signed.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_single_logout_both_ways(default_idp: SamlIdp, http: httpx.Client, tmp_path: Path) -> None:
    idp = default_idp
    _, form = complete_sso(http, authn_request_url(idp, "_for-slo"), "alice")
    assertion = parse(decode_post_message(form["SAMLResponse"])).find("saml:Assertion", NS)
    assert assertion is not None
    statement = assertion.find("saml:AuthnStatement", NS)
    assert statement is not None
    session_index = str(statement.get("SessionIndex"))

    # SP-initiated, HTTP-Redirect: the LogoutResponse comes back signed in the same binding.
    logout_request = (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="_lr1" Version="2.0" IssueInstant="{_now()}" Destination="{idp.slo_url}">'
        f"<saml:Issuer>{SP_ENTITY_ID}</saml:Issuer>"
        f'<saml:NameID Format="{EMAIL_FORMAT}">alice@example.com</saml:NameID>'
        f"<samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"
    )
    query = urlencode({"SAMLRequest": _deflate(logout_request), "RelayState": "bye"})
    url, fields = complete_slo(http, f"{idp.slo_url}?{query}")
    assert fields == {}
    assert url.startswith(f"{SLO_URL}?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert params["RelayState"] == "bye"
    _verify_redirect_signature(url, idp.cert_pem, "SAMLResponse")
    logout_response = parse(decode_redirect_message(params["SAMLResponse"]))
    assert logout_response.tag == f"{{{NS['samlp']}}}LogoutResponse"
    assert logout_response.get("InResponseTo") == "_lr1"
    assert logout_response.get("Destination") == SLO_URL
    assert logout_response.findtext("saml:Issuer", namespaces=NS) == idp.entity_id
    status = logout_response.find("samlp:Status/samlp:StatusCode", NS)
    assert status is not None
    assert status.get("Value") == SUCCESS
    ended = [e for e in idp.events() if e["type"] == "logout_request" and e["id"] == "_lr1"]
    assert ended
    assert ended[0]["ended_sessions"] == [session_index]

    # SP-initiated, HTTP-POST: the answer is an auto-post page with an XML signature.
    posted = http.post(
        idp.slo_url,
        data={
            "SAMLRequest": base64.b64encode(
                logout_request.replace("_lr1", "_lr2").encode()
            ).decode(),
            "RelayState": "bye2",
        },
    )
    action, fields = auto_post_form(posted)
    assert action == SLO_URL
    assert fields["RelayState"] == "bye2"
    posted_xml = decode_post_message(fields["SAMLResponse"])
    assert parse(posted_xml).get("InResponseTo") == "_lr2"
    assert xmlsec_verify(
        posted_xml,
        idp.cert_pem,
        "/*[local-name()='LogoutResponse']/*[local-name()='Signature']",
        tmp_path,
    )

    # IdP-initiated, HTTP-POST: a signed LogoutRequest naming the last session.
    complete_sso(http, authn_request_url(idp, "_again"), "alice")
    action, fields = initiate_logout(http, idp, "alice", binding="post", relay_state="r")
    assert action == SLO_URL
    assert fields["RelayState"] == "r"
    request_xml = decode_post_message(fields["SAMLRequest"])
    request = parse(request_xml)
    assert request.tag == f"{{{NS['samlp']}}}LogoutRequest"
    assert request.findtext("saml:NameID", namespaces=NS) == "alice@example.com"
    assert request.findtext("samlp:SessionIndex", namespaces=NS)
    assert xmlsec_verify(
        request_xml,
        idp.cert_pem,
        "/*[local-name()='LogoutRequest']/*[local-name()='Signature']",
        tmp_path,
    )

    # The SP's answer is recorded.
    answer = (
        '<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="_ans" Version="2.0" IssueInstant="{_now()}" Destination="{idp.slo_url}" '
        f'InResponseTo="{request.get("ID")}"><saml:Issuer>{SP_ENTITY_ID}</saml:Issuer>'
        f'<samlp:Status><samlp:StatusCode Value="{SUCCESS}"/></samlp:Status>'
        "</samlp:LogoutResponse>"
    )
    done = http.post(idp.slo_url, data={"SAMLResponse": base64.b64encode(answer.encode()).decode()})
    assert done.status_code == 200
    assert "Signed out" in done.text
    recorded = [e for e in idp.events() if e["type"] == "logout_response"]
    assert recorded[-1]["in_response_to"] == request.get("ID")
    assert recorded[-1]["status"] == SUCCESS

    # IdP-initiated, HTTP-Redirect.
    url, fields = initiate_logout(http, idp, "alice")
    assert fields == {}
    assert url.startswith(f"{SLO_URL}?")
    _verify_redirect_signature(url, idp.cert_pem, "SAMLRequest")
    redirect_request = parse(
        decode_redirect_message(parse_qs(urlsplit(url).query)["SAMLRequest"][0])
    )
    assert redirect_request.findtext("saml:NameID", namespaces=NS) == "alice@example.com"


def _sp_metadata(keys: SpKeys) -> str:
    """SP metadata as pysaml2 writes it: md: prefix, signing and encryption keys, and
    WantAssertionsSigned="true" (which the IdP's own options override)."""
    cert = "".join(
        line for line in keys.cert_pem.splitlines() if line and not line.startswith("-----")
    )
    key_info = (
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
        f"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
    )
    return (
        '<?xml version="1.0"?>\n'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{SP_ENTITY_ID}">'
        '<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<md:KeyDescriptor use="signing">{key_info}</md:KeyDescriptor>'
        f'<md:KeyDescriptor use="encryption">{key_info}</md:KeyDescriptor>'
        '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        f'Location="{SLO_URL}"/>'
        f"<md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>"
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{ACS_URL}" index="1"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def test_sp_metadata_xml_with_an_encryption_key_and_no_signature(
    http: httpx.Client, sp_keys: SpKeys, tmp_path: Path
) -> None:
    with start_saml_idp(
        sp={"metadata_xml": _sp_metadata(sp_keys)},
        users=USERS,
        idp={"sign_assertion": False, "sign_response": False, "encrypt_assertion": True},
    ) as idp:
        acs, form = complete_sso(http, authn_request_url(idp, "_md"), "alice")
        # The SP's metadata has only a Redirect SLO endpoint: a POST request falls back to it.
        url, fields = initiate_logout(http, idp, "alice", binding="post")
    assert acs == ACS_URL
    assert fields == {}
    assert url.startswith(f"{SLO_URL}?SAMLRequest=")
    xml = decode_post_message(form["SAMLResponse"])
    assert "Signature" not in xml
    assert parse(xml).find("saml:EncryptedAssertion", NS) is not None
    decrypted = parse(xmlsec_decrypt(xml, sp_keys, tmp_path))
    assertion = decrypted.find("saml:EncryptedAssertion/saml:Assertion", NS)
    assert assertion is not None
    check_assertion(assertion, idp, "_md")


def test_a_misspelt_option_fails_the_start() -> None:
    with (
        pytest.raises(RuntimeError, match=r"unknown option.*sign_assertions"),
        start_saml_idp(sp=SP, users=USERS, idp={"sign_assertions": False}),
    ):
        pass


@pytest.mark.parametrize(("name_id_format", "stable"), [("persistent", True), ("transient", False)])
def test_opaque_name_id_formats(http: httpx.Client, name_id_format: str, stable: bool) -> None:
    with start_saml_idp(sp=SP, users=USERS, idp={"name_id_format": name_id_format}) as idp:
        name_ids = []
        for _ in range(2):
            _, form = idp_initiated(http, idp, "alice")
            name_id = parse(decode_post_message(form["SAMLResponse"])).find(
                "saml:Assertion/saml:Subject/saml:NameID", NS
            )
            assert name_id is not None
            assert (
                name_id.get("Format")
                == f"urn:oasis:names:tc:SAML:2.0:nameid-format:{name_id_format}"
            )
            assert name_id.text
            assert "alice" not in name_id.text
            name_ids.append(name_id.text)
        # A LogoutRequest from the IdP names the last NameID issued.
        url, _ = initiate_logout(http, idp, "alice")
    assert (name_ids[0] == name_ids[1]) is stable
    request = parse(decode_redirect_message(parse_qs(urlsplit(url).query)["SAMLRequest"][0]))
    assert request.findtext("saml:NameID", namespaces=NS) == name_ids[1]
