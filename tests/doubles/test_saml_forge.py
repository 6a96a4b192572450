"""The hostile SAML Responses of ``tests/support/saml_forge.py`` are real: made from a response of
the samlify IdP, each one carries, where it should, a signature that ``xmlsec1 --verify`` accepts
(with the IdP's certificate, or only with the attacker's), and says what it claims to say; so an
SP that refuses them refuses them for the right reason. One IdP start for the module."""

from __future__ import annotations

import base64
import datetime as dt
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.dom import minidom
from xml.etree import ElementTree as ET
from xml.sax import handler, make_parser

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support import saml_forge as forge
from tests.support.saml_idp import SamlIdp, complete_sso, start_saml_idp

SP_ENTITY_ID = "http://127.0.0.1:9/saml/metadata"
ACS_URL = "http://127.0.0.1:9/saml/acs"
REQUEST_ID = "_forge-request"
USERS = {"alice": {"email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}}
NS = {
    "samlp": forge.SAMLP,
    "saml": forge.SAML,
    "ds": forge.DS,
}
EMAIL_ATTRIBUTE = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


@pytest.fixture(scope="module")
def idp() -> Iterator[SamlIdp]:
    with start_saml_idp(
        sp={"entity_id": SP_ENTITY_ID, "acs_url": ACS_URL},
        users=USERS,
        idp={"sign_assertion": True, "sign_response": True, "expose_key_for_tests": True},
    ) as started:
        yield started


@pytest.fixture(scope="module")
def idp_key(idp: SamlIdp) -> str:
    assert idp.key_pem is not None
    return idp.key_pem


@pytest.fixture(scope="module")
def both_signed(idp: SamlIdp) -> str:
    """A solicited response, the assertion and the response both signed (rsa-sha256)."""
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{REQUEST_ID}" Version="2.0" IssueInstant="{_instant(dt.datetime.now(dt.UTC))}" '
        f'Destination="{idp.sso_url}" AssertionConsumerServiceURL="{ACS_URL}">'
        f"<saml:Issuer>{SP_ENTITY_ID}</saml:Issuer></samlp:AuthnRequest>"
    )
    compressor = zlib.compressobj(wbits=-15)
    deflated = base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        _, form = complete_sso(http, f"{idp.sso_url}?SAMLRequest={quote(deflated)}", "alice")
    return form["SAMLResponse"]


@pytest.fixture(scope="module")
def assertion_signed(both_signed: str) -> str:
    """The same response with only its assertion signed (samlify's default): the response's
    signature taken off, the assertion's left as the IdP made it."""
    return forge.unsigned(both_signed, only="response")


@pytest.fixture(scope="module")
def attacker() -> forge.KeyPair:
    return forge.attacker_keypair()


@pytest.fixture(scope="module")
def variants(both_signed: str) -> dict[str, str]:
    return forge.xsw_variants(both_signed)


# -- reading responses as an SP would ------------------------------------------------------------


def _instant(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(xml: str) -> ET.Element:
    # Our own IdP's responses and the forgeries of them; with_doctype's are not read this way.
    return ET.fromstring(xml)  # noqa: S314


def _assertions(root: ET.Element) -> list[ET.Element]:
    return root.findall("saml:Assertion", NS)


def _facts(xml: str) -> dict[str, Any]:
    """What an SP checks, read from the (first) assertion; signatures aside."""
    root = _parse(xml)
    assertion = _assertions(root)[0]
    confirmation = assertion.find(
        "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS
    )
    conditions = assertion.find("saml:Conditions", NS)
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    assert confirmation is not None
    assert conditions is not None
    assert status is not None
    return {
        "response_id": root.get("ID"),
        "destination": root.get("Destination"),
        "in_response_to": root.get("InResponseTo"),
        "issue_instant": root.get("IssueInstant"),
        "response_issuer": root.findtext("saml:Issuer", namespaces=NS),
        "status": status.get("Value"),
        "assertion_id": assertion.get("ID"),
        "assertion_issue_instant": assertion.get("IssueInstant"),
        "assertion_issuer": assertion.findtext("saml:Issuer", namespaces=NS),
        "name_id": assertion.findtext("saml:Subject/saml:NameID", namespaces=NS),
        "recipient": confirmation.get("Recipient"),
        "confirmation_in_response_to": confirmation.get("InResponseTo"),
        "confirmation_not_on_or_after": confirmation.get("NotOnOrAfter"),
        "not_before": conditions.get("NotBefore"),
        "not_on_or_after": conditions.get("NotOnOrAfter"),
        "audience": [
            a.text
            for a in assertion.iterfind(
                "saml:Conditions/saml:AudienceRestriction/saml:Audience", NS
            )
        ],
        "emails": _emails(assertion),
        "attributes": len(assertion.findall("saml:AttributeStatement/saml:Attribute", NS)),
    }


def _emails(assertion: ET.Element) -> list[str | None]:
    return [
        value.text
        for value in assertion.iterfind(
            f"saml:AttributeStatement/saml:Attribute[@Name='{EMAIL_ATTRIBUTE}']/saml:AttributeValue",
            NS,
        )
    ]


def _signature_methods(xml: str) -> set[tuple[str | None, str | None]]:
    """(SignatureMethod, DigestMethod) of every signature."""
    methods = set()
    for signature in _parse(xml).iter(f"{{{forge.DS}}}Signature"):
        method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
        digest = signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS)
        assert method is not None
        assert digest is not None
        methods.add((method.get("Algorithm"), digest.get("Algorithm")))
    return methods


def _keyinfo_certs(xml: str) -> set[str]:
    return {
        "".join((cert.text or "").split())
        for cert in _parse(xml).iter(f"{{{forge.DS}}}X509Certificate")
    }


def _cert_body(cert_pem: str) -> str:
    return "".join(line for line in cert_pem.splitlines() if not line.startswith("-----"))


def _ids(xml: str) -> tuple[str, str]:
    facts = _facts(xml)
    return facts["response_id"], facts["assertion_id"]


def _standalone(xml: str, element_id: str) -> str:
    """The element whose ID is ``element_id`` and that carries a signature, alone in a document
    (with the namespace declarations in scope where it was), as a library that verifies the
    signed element by itself would see it."""
    doc = minidom.parseString(xml)  # noqa: S318 - see _parse
    for element in doc.getElementsByTagNameNS(forge.SAML, "Assertion"):
        has_signature = any(
            isinstance(child, minidom.Element) and child.localName == "Signature"
            for child in element.childNodes
        )
        if element.getAttribute("ID") == element_id and has_signature:
            copy = element.cloneNode(True)
            assert isinstance(copy, minidom.Element)
            ancestor = element.parentNode
            while isinstance(ancestor, minidom.Element):
                for name, value in ancestor.attributes.items():
                    if name.startswith("xmlns") and not copy.hasAttribute(name):
                        copy.setAttribute(name, value)
                ancestor = ancestor.parentNode
            return str(copy.toxml())
    raise AssertionError(f"no signed assertion {element_id}")


# -- the IdP and its good response ---------------------------------------------------------------


def test_the_idp_hands_out_its_key_and_the_good_response_verifies(
    idp: SamlIdp, idp_key: str, both_signed: str, assertion_signed: str
) -> None:
    key = serialization.load_pem_private_key(idp_key.encode(), password=None)
    cert = x509.load_pem_x509_certificate(idp.cert_pem.encode())
    assert key.public_key() == cert.public_key()

    xml = forge.decode(both_signed)
    response_id, assertion_id = _ids(xml)
    assert _facts(xml)["in_response_to"] == REQUEST_ID
    assert forge.verified_references(xml, idp.cert_pem) == [response_id, assertion_id]
    # The naive check (trust the KeyInfo certificate) accepts it too, of course.
    assert forge.verified_references(xml, None) == [response_id, assertion_id]
    only = forge.decode(assertion_signed)
    assert forge.xmlsec_verify(only, idp.cert_pem, forge.ASSERTION_SIGNATURE)
    assert not forge.xmlsec_verify(only, idp.cert_pem, forge.RESPONSE_SIGNATURE)
    assert _facts(only) == _facts(xml)


# -- 1-3 -----------------------------------------------------------------------------------------


def test_unsigned(idp: SamlIdp, both_signed: str) -> None:
    xml = forge.decode(forge.unsigned(both_signed))
    assert "Signature" not in xml
    assert _facts(xml) == _facts(forge.decode(both_signed))
    # Only the assertion's taken off: the response's signature covered it and fails now.
    partly = forge.decode(forge.unsigned(both_signed, only="assertion"))
    assert _parse(partly).find("saml:Assertion/ds:Signature", NS) is None
    assert forge.verified_references(partly, idp.cert_pem) == []


def test_signed_by_other_key(idp: SamlIdp, both_signed: str, attacker: forge.KeyPair) -> None:
    xml = forge.decode(forge.signed_by_other_key(both_signed, attacker.key_pem, attacker.cert_pem))
    ids = list(_ids(xml))
    assert _facts(xml) == _facts(forge.decode(both_signed))
    assert _keyinfo_certs(xml) == {_cert_body(attacker.cert_pem)}
    assert forge.verified_references(xml, attacker.cert_pem) == ids
    assert forge.verified_references(xml, idp.cert_pem) == []


def test_key_in_keyinfo(idp: SamlIdp, both_signed: str) -> None:
    impostor = forge.attacker_keypair(impersonating=idp.cert_pem)
    fake = x509.load_pem_x509_certificate(impostor.cert_pem.encode())
    real = x509.load_pem_x509_certificate(idp.cert_pem.encode())
    assert (fake.subject, fake.issuer, fake.serial_number) == (
        real.subject,
        real.issuer,
        real.serial_number,
    )
    assert fake.public_key() != real.public_key()

    xml = forge.decode(forge.key_in_keyinfo(both_signed, impostor.key_pem, impostor.cert_pem))
    facts = _facts(xml)
    assert facts["name_id"] == forge.EVIL_EMAIL
    assert facts["emails"] == [forge.EVIL_EMAIL]
    assert _keyinfo_certs(xml) == {_cert_body(impostor.cert_pem)}
    ids = list(_ids(xml))
    # Accepted by an SP that takes the key from KeyInfo; not with the IdP's certificate.
    assert forge.verified_references(xml, None) == ids
    assert forge.verified_references(xml, idp.cert_pem) == []


# -- 4: signature wrapping -----------------------------------------------------------------------

# name -> (which assertion a naive SP reads: first or last Response/Assertion, whether the
# signature over the original holds in the whole document (False: only standalone, as xmlsec1
# refuses repeated IDs), whether the response's own signature is the wrapped one)
XSW = {
    "signed_assertion_in_extensions": ("first", True, False),
    "signed_assertion_in_status_detail": ("first", True, False),
    "signed_assertion_in_wrapper": ("first", True, False),
    "signed_assertion_in_evil_assertion": ("first", True, False),
    "evil_assertion_before": ("first", True, False),
    "evil_assertion_before_same_id": ("first", False, False),
    "evil_assertion_after": ("last", True, False),
    "evil_assertion_after_same_id": ("last", False, False),
    "assertion_signature_on_evil_original_after": ("first", True, False),
    "assertion_signature_on_evil_original_extensions": ("first", True, False),
    "response_signature_on_evil_original_after": ("first", True, True),
    "response_signature_on_evil_original_extensions": ("first", True, True),
}


def test_the_xsw_variants_by_signature(
    both_signed: str, assertion_signed: str, variants: dict[str, str]
) -> None:
    assert set(variants) == set(XSW)
    only = set(forge.xsw_variants(assertion_signed))
    assert only == {name for name, (_, _, response) in XSW.items() if not response}
    with pytest.raises(ValueError, match="signed response"):
        forge.xsw_signed_element_elsewhere(assertion_signed, signature="response")
    with pytest.raises(ValueError, match="assertion is signed"):
        forge.xsw_moved_assertion(forge.unsigned(both_signed))


@pytest.mark.parametrize("name", XSW)
def test_xsw(idp: SamlIdp, both_signed: str, variants: dict[str, str], name: str) -> None:
    reads, holds_in_place, on_response = XSW[name]
    good = forge.decode(both_signed)
    response_id, assertion_id = _ids(good)
    xml = forge.decode(variants[name])
    root = _parse(xml)

    # What a naive SP reads is the attacker's assertion, unsigned ...
    read = _assertions(root)[0 if reads == "first" else -1]
    assert read.findtext("saml:Subject/saml:NameID", namespaces=NS) == forge.EVIL_EMAIL
    assert _emails(read) == [forge.EVIL_EMAIL]
    assert read.find("ds:Signature", NS) is None or read.get("ID") != assertion_id
    # ... in a document that still has the original, as the IdP signed it ...
    originals = [a for a in root.iter(f"{{{forge.SAML}}}Assertion") if a.get("ID") == assertion_id]
    assert any(
        a.findtext("saml:Subject/saml:NameID", namespaces=NS) == "alice@example.com"
        for a in originals
    )
    # ... with a signature that verifies with the IdP's certificate, over the original.
    if not holds_in_place:
        assert read.get("ID") == assertion_id
        assert forge.verified_references(xml, idp.cert_pem) == []  # xmlsec1: repeated ID
        alone = _standalone(xml, assertion_id)
        assert forge.xmlsec_verify(alone, idp.cert_pem, "/*/*[local-name()='Signature']")
        return
    verified = forge.verified_references(xml, idp.cert_pem)
    if on_response:
        assert root.get("ID") != response_id
        assert root.find("ds:Signature", NS) is not None
        # The evil response's signature is the IdP's, over the original response inside it.
        assert verified == [response_id, assertion_id]
        assert [r.get("ID") for r in root.iter(f"{{{forge.SAMLP}}}Response")] == [
            root.get("ID"),
            response_id,
        ]
    else:
        assert verified == [assertion_id]
        assert read.get("ID") not in verified
        assert root.find("ds:Signature", NS) is None  # a response signature could not hold


# -- 5-7, 9: signed by the IdP -------------------------------------------------------------------


def test_comment_in_nameid(idp: SamlIdp, idp_key: str, both_signed: str) -> None:
    xml = forge.decode(forge.comment_in_nameid(both_signed, idp_key, idp.cert_pem))
    assert forge.verified_references(xml, idp.cert_pem) == list(_ids(xml))
    assert xml.count("alice@example.com<!---->.evil.example") == 2  # NameID and e-mail
    # A parser that drops comments reads the attacker's own account ...
    facts = _facts(xml)
    assert facts["name_id"] == "alice@example.com.evil.example"
    assert facts["emails"] == ["alice@example.com.evil.example"]
    # ... one that takes the first text node reads the victim's.
    doc = minidom.parseString(xml)  # noqa: S318 - see _parse
    name_id = doc.getElementsByTagNameNS(forge.SAML, "NameID")[0]
    assert isinstance(name_id.firstChild, minidom.Text)
    assert name_id.firstChild.data == "alice@example.com"
    assert isinstance(name_id.childNodes[1], minidom.Comment)


def test_two_assertions(idp: SamlIdp, idp_key: str, both_signed: str) -> None:
    xml = forge.decode(forge.two_assertions(both_signed, idp_key, idp.cert_pem))
    root = _parse(xml)
    first, second = _assertions(root)
    assert first.get("ID") != second.get("ID")
    assert [a.findtext("saml:Subject/saml:NameID", namespaces=NS) for a in (first, second)] == [
        "alice@example.com",
        forge.EVIL_EMAIL,
    ]
    assert forge.verified_references(xml, idp.cert_pem) == [
        root.get("ID"),
        first.get("ID"),
        second.get("ID"),
    ]


LATER = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
EARLIER = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

# keyword arguments -> the facts that change, to what
CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "nothing": ({}, {}),
    "audience": (
        {"audience": "https://other.example/sp"},
        {"audience": ["https://other.example/sp"]},
    ),
    "destination": (
        {"destination": "https://other.example/acs"},
        {"destination": "https://other.example/acs"},
    ),
    "no_destination": ({"destination": forge.REMOVE}, {"destination": None}),
    "recipient": (
        {"recipient": "https://other.example/acs"},
        {"recipient": "https://other.example/acs"},
    ),
    "issuer": (
        {"issuer": "https://other.example/idp"},
        {
            "response_issuer": "https://other.example/idp",
            "assertion_issuer": "https://other.example/idp",
        },
    ),
    "not_yet_valid": ({"not_before": LATER}, {"not_before": _instant(LATER)}),
    "expired": ({"not_on_or_after": EARLIER}, {"not_on_or_after": _instant(EARLIER)}),
    "confirmation_expired": (
        {"confirmation_not_on_or_after": EARLIER},
        {"confirmation_not_on_or_after": _instant(EARLIER)},
    ),
    "other_request": (
        {"in_response_to": "_another-request"},
        {"in_response_to": "_another-request", "confirmation_in_response_to": "_another-request"},
    ),
    "unsolicited": (
        {"in_response_to": forge.REMOVE},
        {"in_response_to": None, "confirmation_in_response_to": None},
    ),
    "issued_long_ago": (
        {"issue_instant": "2001-01-01T00:00:00Z"},
        {
            "issue_instant": "2001-01-01T00:00:00Z",
            "assertion_issue_instant": "2001-01-01T00:00:00Z",
        },
    ),
    "name_id": ({"name_id": "bob@example.com"}, {"name_id": "bob@example.com"}),
    "email": ({"email": "bob@example.com"}, {"emails": ["bob@example.com"]}),
    "status": (
        {"status": "urn:oasis:names:tc:SAML:2.0:status:Responder"},
        {"status": "urn:oasis:names:tc:SAML:2.0:status:Responder"},
    ),
}


@pytest.mark.parametrize("case", CHANGES)
def test_with_changed(idp: SamlIdp, idp_key: str, both_signed: str, case: str) -> None:
    changes, expected = CHANGES[case]
    before = _facts(forge.decode(both_signed))
    xml = forge.decode(forge.with_changed(both_signed, idp_key, idp.cert_pem, **changes))
    after = _facts(xml)
    assert {k: v for k, v in after.items() if before[k] != v} == expected
    assert before["in_response_to"] == REQUEST_ID  # so "unsolicited" did take something away
    assert forge.verified_references(xml, idp.cert_pem) == list(_ids(xml))
    assert _signature_methods(xml) == {(forge.RSA_SHA256, forge.SHA256)}


def test_with_changed_keeps_what_was_signed(
    idp: SamlIdp, idp_key: str, assertion_signed: str
) -> None:
    xml = forge.decode(
        forge.with_changed(assertion_signed, idp_key, idp.cert_pem, audience="https://x.example")
    )
    root = _parse(xml)
    assert root.find("ds:Signature", NS) is None
    assert forge.verified_references(xml, idp.cert_pem) == [_ids(xml)[1]]


def test_sha1_signed(idp: SamlIdp, idp_key: str, both_signed: str) -> None:
    xml = forge.decode(forge.sha1_signed(both_signed, idp_key, idp.cert_pem))
    assert _signature_methods(xml) == {(forge.RSA_SHA1, forge.SHA1)}
    assert _facts(xml) == _facts(forge.decode(both_signed))
    assert forge.verified_references(xml, idp.cert_pem) == list(_ids(xml))


def test_signed_with_algorithms(idp: SamlIdp, idp_key: str, both_signed: str) -> None:
    for signature, digest in ((forge.RSA_MD5, forge.MD5), (forge.RSA_SHA224, forge.SHA224)):
        xml = forge.decode(
            forge.signed_with_algorithms(
                both_signed, idp_key, idp.cert_pem, signature=signature, digest=digest
            )
        )
        assert _signature_methods(xml) == {(signature, digest)}
        assert _facts(xml) == _facts(forge.decode(both_signed))
        assert forge.verified_references(xml, idp.cert_pem) == list(_ids(xml))


def test_asserted_by(idp: SamlIdp, both_signed: str, attacker: forge.KeyPair) -> None:
    other = "https://other-idp.example/metadata"
    xml = forge.decode(
        forge.asserted_by(
            both_signed, attacker.key_pem, attacker.cert_pem, issuer=other, identity="x@y.example"
        )
    )
    facts = _facts(xml)
    assert facts["assertion_issuer"] == other
    assert facts["response_issuer"] == _facts(forge.decode(both_signed))["response_issuer"]
    assert facts["name_id"] == "x@y.example"
    assert _parse(xml).find("ds:Signature", NS) is None, "the Response is left unsigned"
    assert forge.verified_references(xml, attacker.cert_pem) == [facts["assertion_id"]]
    assert forge.verified_references(xml, idp.cert_pem) == []


def test_with_changed_removes_the_audience_restriction_and_sets_a_status_message(
    idp: SamlIdp, idp_key: str, both_signed: str
) -> None:
    xml = forge.decode(
        forge.with_changed(
            both_signed, idp_key, idp.cert_pem, audience=forge.REMOVE, status_message="why"
        )
    )
    root = _parse(xml)
    assert root.find(".//saml:AudienceRestriction", NS) is None
    assert root.findtext("samlp:Status/samlp:StatusMessage", namespaces=NS) == "why"
    assert forge.verified_references(xml, idp.cert_pem) == list(_ids(xml))


# -- 8: for the XML parser -----------------------------------------------------------------------


class _Text(handler.ContentHandler):
    """The text of every StatusMessage, as a SAX parser delivers it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self._inside = False

    def startElementNS(self, name: tuple[str | None, str], qname: Any, attrs: Any) -> None:
        if name == (forge.SAMLP, "StatusMessage"):
            self._inside = True
            self.messages.append("")

    def endElementNS(self, name: tuple[str | None, str], qname: Any) -> None:
        if name == (forge.SAMLP, "StatusMessage"):
            self._inside = False

    def characters(self, content: str) -> None:
        if self._inside:
            self.messages[-1] += content


def test_with_doctype(idp: SamlIdp, both_signed: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the contents of a local file")
    xml = forge.decode(
        forge.with_doctype(
            both_signed, external_url=secret.as_uri(), dtd_url="http://127.0.0.1:9/evil.dtd"
        )
    )
    assert xml.startswith('<!DOCTYPE samlp:Response SYSTEM "http://127.0.0.1:9/evil.dtd" [')
    assert '<!ENTITY lol3 "&lol2;&lol2;' in xml
    assert "<samlp:StatusMessage>&lol3;&xxe;</samlp:StatusMessage>" in xml

    # A parser that resolves external entities (here: SAX with external general entities on,
    # the external DTD off) expands the laughs and reads the local file into the message.
    parser = make_parser()  # noqa: S317 - the point is to show what a careless parser does
    parser.setFeature(handler.feature_namespaces, True)
    parser.setFeature(handler.feature_external_ges, True)
    parser.setFeature(handler.feature_external_pes, False)
    text = _Text()
    parser.setContentHandler(text)
    parser.parse(io.BytesIO(xml.replace(' SYSTEM "http://127.0.0.1:9/evil.dtd"', "").encode()))
    assert text.messages == ["lol" * 1000 + "the contents of a local file"]

    # Once expanded, the assertion's signature still holds (the response's covered the Status).
    expanded = forge.decode(forge.with_doctype(both_signed, external_url=None))
    doc = minidom.parseString(expanded)  # noqa: S318 - expat expands the internal entities
    assert doc.documentElement is not None
    flat = doc.documentElement.toxml()
    assert "lol" * 1000 in flat
    assert forge.verified_references(flat, idp.cert_pem) == [_ids(flat)[1]]


def test_oversize(idp: SamlIdp, both_signed: str) -> None:
    forged = forge.oversize(both_signed, 200_000)
    xml = forge.decode(forged)
    assert len(xml.encode()) == 200_000
    assert len(forged) > 260_000
    assert _facts(xml) == _facts(forge.decode(both_signed))
    assert forge.verified_references(xml, idp.cert_pem) == list(_ids(xml))
    with pytest.raises(ValueError, match="already"):
        forge.oversize(both_signed, 1000)
