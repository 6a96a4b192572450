"""In-process SAML signatures and schema (broker.upstream.saml_crypto, saml_schema), on
documents signed here with keys made here. The end-to-end checks, against samlify and the
forgeries of tests/support/saml_forge.py, are in tests/flows/test_saml*.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import xmlsec
from lxml import etree
from saml2.sigver import SignatureError

from broker.errors import InvalidResponse
from broker.upstream import saml_schema
from broker.upstream.saml_checks import check_signature_profile, refused
from broker.upstream.saml_crypto import InProcessCrypto, InProcessSecurity
from tests.support.certificates import key_pair

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RESPONSE = f"{SAMLP}:Response"


@pytest.fixture(scope="module")
def idp() -> tuple[bytes, str]:
    return key_pair()


@pytest.fixture(scope="module")
def other() -> tuple[bytes, str]:
    return key_pair()


def response(issue_instant: str = 'IssueInstant="2026-12-01T10:00:00Z"') -> etree._Element:
    return etree.fromstring(
        f'<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r1" Version="2.0" '
        f"{issue_instant}><saml:Issuer>https://idp.example</saml:Issuer>"
        '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        "</samlp:Status></samlp:Response>".encode()
    )


def signed(
    root: etree._Element,
    key_pem: bytes,
    *,
    transforms: tuple[object, ...] = (
        xmlsec.constants.TransformEnveloped,
        xmlsec.constants.TransformExclC14N,
    ),
    c14n: object = xmlsec.constants.TransformExclC14N,
) -> bytes:
    """``root`` with an enveloped signature after its Issuer, by ``key_pem``."""
    signature = xmlsec.template.create(root, c14n, xmlsec.constants.TransformRsaSha256)
    root.insert(1, signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{root.get('ID')}"
    )
    for transform in transforms:
        xmlsec.template.add_transform(reference, transform)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    context.register_id(root, "ID")
    context.sign(signature)
    return bytes(etree.tostring(root))


# -- verification ---------------------------------------------------------------------------


def test_a_signature_verifies_with_the_idps_certificate(idp: tuple[bytes, str]) -> None:
    InProcessCrypto().verify(signed(response(), idp[0]), RESPONSE, "_r1", [idp[1]])


def test_during_a_rollover_any_listed_certificate_verifies(
    idp: tuple[bytes, str], other: tuple[bytes, str]
) -> None:
    document = signed(response(), idp[0])
    InProcessCrypto().verify(document, RESPONSE, "_r1", [other[1], idp[1]])


def test_another_key_does_not_verify(idp: tuple[bytes, str], other: tuple[bytes, str]) -> None:
    with pytest.raises(SignatureError):
        InProcessCrypto().verify(signed(response(), other[0]), RESPONSE, "_r1", [idp[1]])


def test_a_changed_document_does_not_verify(idp: tuple[bytes, str]) -> None:
    document = signed(response(), idp[0]).replace(b"https://idp.example", b"https://evil.example")
    with pytest.raises(SignatureError):
        InProcessCrypto().verify(document, RESPONSE, "_r1", [idp[1]])


@pytest.mark.parametrize(
    ("node_name", "node_id"),
    [(RESPONSE, "_other"), (f"{SAML}:Assertion", "_r1")],
    ids=["another ID", "another element type"],
)
def test_only_the_named_element_is_verified(
    idp: tuple[bytes, str], node_name: str, node_id: str
) -> None:
    with pytest.raises(SignatureError):
        InProcessCrypto().verify(signed(response(), idp[0]), node_name, node_id, [idp[1]])


def test_an_id_used_twice_is_not_verified(idp: tuple[bytes, str]) -> None:
    document = signed(response(), idp[0]).replace(b"<saml:Issuer>", b'<saml:Issuer ID="_r1">', 1)
    with pytest.raises(SignatureError):
        InProcessCrypto().verify(document, RESPONSE, "_r1", [idp[1]])


def test_a_transform_saml_does_not_allow_is_refused_before_it_runs(
    idp: tuple[bytes, str],
) -> None:
    document = signed(
        response(),
        idp[0],
        transforms=(xmlsec.constants.TransformEnveloped, xmlsec.constants.TransformInclC14N),
    )
    with pytest.raises(SignatureError, match="transforms"):
        InProcessCrypto().verify(document, RESPONSE, "_r1", [idp[1]])


# -- SAML's signature profile ------------------------------------------------------------------


def _signature(document: bytes) -> etree._Element:
    found = etree.fromstring(document).find(f"{{{DS}}}Signature")
    assert found is not None
    return found


def _profile(signature: etree._Element, element_id: str = "_r1") -> None:
    check_signature_profile(signature, element_id, refuse=refused)


def test_the_usual_signature_fits_the_profile(idp: tuple[bytes, str]) -> None:
    _profile(_signature(signed(response(), idp[0])))


EDITS: dict[str, Callable[[etree._Element], object]] = {
    "a second reference": lambda s: s.find(f"{{{DS}}}SignedInfo").append(  # type: ignore[union-attr]
        etree.fromstring(f'<ds:Reference xmlns:ds="{DS}" URI="#_r1"/>')
    ),
    "a reference to another element": lambda s: s.find(  # type: ignore[union-attr]
        f"{{{DS}}}SignedInfo/{{{DS}}}Reference"
    ).set("URI", "#_other"),
    "inclusive canonicalization": lambda s: s.find(  # type: ignore[union-attr]
        f"{{{DS}}}SignedInfo/{{{DS}}}CanonicalizationMethod"
    ).set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"),
    "no enveloped-signature transform": lambda s: s.find(  # type: ignore[union-attr]
        f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms"
    ).remove(s.find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms/{{{DS}}}Transform")),
    "an XPath transform": lambda s: s.find(  # type: ignore[union-attr]
        f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms"
    ).append(
        etree.fromstring(
            f'<ds:Transform xmlns:ds="{DS}" Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/>'
        )
    ),
    "a ds:Object": lambda s: s.append(etree.fromstring(f'<ds:Object xmlns:ds="{DS}"/>')),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_signatures_outside_the_profile_are_refused(idp: tuple[bytes, str], edit: str) -> None:
    signature = _signature(signed(response(), idp[0]))
    EDITS[edit](signature)
    with pytest.raises(InvalidResponse):
        _profile(signature)


# -- the schema ---------------------------------------------------------------------------------


def test_a_valid_response_passes_the_schema() -> None:
    saml_schema.validate(etree.tostring(response()))


def test_a_response_without_issue_instant_is_invalid() -> None:
    with pytest.raises(saml_schema.SchemaInvalid, match="IssueInstant"):
        saml_schema.validate(etree.tostring(response(issue_instant="")))


def test_the_reason_never_quotes_the_documents_values() -> None:
    document = etree.tostring(response(issue_instant='IssueInstant="alice@example.com"'))
    with pytest.raises(saml_schema.SchemaInvalid) as refusal:
        saml_schema.validate(document)
    assert "IssueInstant" in str(refusal.value)
    assert "alice" not in str(refusal.value)


def test_a_schema_is_never_fetched() -> None:
    """The schema files import the W3C's by URL: they are read from pysaml2's folder."""
    saml_schema.validate(etree.tostring(response()))  # compiled with no_network=True
    assert saml_schema._schema() is saml_schema._schema()


# -- pysaml2's two readings of a Response ---------------------------------------------------


def unsigned_response(response_id: str) -> str:
    return etree.tostring(response()).decode().replace('ID="_r1"', f'ID="{response_id}"')


def test_the_element_kept_from_an_unsigned_reading_goes_to_that_document_only() -> None:
    """pysaml2 reads a Response first demanding its own signature, then again without; the
    first reading's element is kept for the second, and must never answer another document."""
    security = InProcessSecurity(InProcessCrypto())
    first, other_document = unsigned_response("_first"), unsigned_response("_other")
    with pytest.raises(SignatureError, match="Signature missing"):
        security.correctly_signed_response(first, require_response_signature=True)

    assert security.correctly_signed_response(other_document).id == "_other"
    assert security.correctly_signed_response(first).id == "_first"


def test_the_second_reading_of_an_unsigned_response_gives_the_same_response() -> None:
    security = InProcessSecurity(InProcessCrypto())
    document = unsigned_response("_r7")
    with pytest.raises(SignatureError):
        security.correctly_signed_response(document, require_response_signature=True)

    again = security.correctly_signed_response(document)
    assert (again.id, again.issuer.text, again.signature) == ("_r7", "https://idp.example", None)
