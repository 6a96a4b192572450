"""Strict structural checks on a SAML Response, made before any signature is looked at.

pysaml2 verifies signatures and conditions; these checks make sure that what it verifies is
what gets read, and refuse the shapes that attacks on SAML service providers rely on:

- no DTD, no entities, no external references (XXE, entity expansion): parsed with defusedxml;
- no XML comments anywhere (comment injection truncating a NameID, as in the 2018 findings);
- exactly one assertion (plain or encrypted), a direct child of the Response;
- each ds:Signature a direct child of the Response or of the Assertion, referring to exactly
  its parent's ID, and no ID used twice (XML signature wrapping);
- no SHA-1 signature or digest unless the connection allows it.

Follows SAML 2.0 Core (OASIS saml-core-2.0-os) and the XML Signature best practices (W3C
xmldsig-bestpractices, sections on wrapping attacks).
"""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from broker.errors import InvalidResponse

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
SHA1_ALGORITHMS = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
}


Refuse = Callable[[str, str], InvalidResponse]


def parse_protocol_message(document: bytes, *, tag: str, refuse: Refuse) -> Element:
    """Parse a SAML protocol message strictly: no comments, no DTD or entities, the expected
    ``samlp`` root element, no ID used twice. ``refuse(detail, kind)`` makes the error."""
    if b"<!--" in document:
        raise refuse("XML comments are not accepted", "comment")
    try:
        root: Element = fromstring(
            document, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise refuse(f"not acceptable XML: {type(exc).__name__}", "xml") from None
    if root.tag != f"{{{SAMLP}}}{tag}":
        raise refuse(f"root element is {root.tag}, not a {tag}", "root")
    seen: set[str] = set()
    for element in root.iter():
        value = element.get("ID")
        if value is None:
            continue
        if value in seen:
            raise refuse(f"ID {value!r} used twice", "wrapping")
        seen.add(value)
    return root


def check_response_structure(document: bytes, *, allow_sha1: bool) -> Element:
    """Refuse a hostile or malformed Response; return its parsed root."""
    root = parse_protocol_message(document, tag="Response", refuse=refused)

    assertions = root.findall(f".//{{{SAML}}}Assertion") + root.findall(
        f".//{{{SAML}}}EncryptedAssertion"
    )
    direct = [child for child in root if child.tag in {a.tag for a in assertions}]
    if len(assertions) != 1 or len(direct) != 1:
        raise refused(f"{len(assertions)} assertions ({len(direct)} direct)", "assertions")

    parents = {child: parent for parent in root.iter() for child in parent}
    for signature in root.iter(f"{{{DS}}}Signature"):
        parent = parents.get(signature)
        if parent is not root and parent is not direct[0]:
            raise refused("a signature outside the Response and its Assertion", "wrapping")
        references = signature.findall(f"./{{{DS}}}SignedInfo/{{{DS}}}Reference")
        if len(references) != 1 or references[0].get("URI") != f"#{parent.get('ID')}":
            raise refused("a signature that does not cover its own element", "wrapping")
    if not allow_sha1:
        # Signature algorithms only: RSA-OAEP key transport names SHA-1 too, harmlessly.
        for signed_info in root.iter(f"{{{DS}}}SignedInfo"):
            methods = signed_info.findall(f"./{{{DS}}}SignatureMethod") + signed_info.findall(
                f"./{{{DS}}}Reference/{{{DS}}}DigestMethod"
            )
            if any(method.get("Algorithm") in SHA1_ALGORITHMS for method in methods):
                raise refused("signed with SHA-1, which this connection does not accept", "sha1")
    return root


def refused(detail: str, kind: str) -> InvalidResponse:
    return InvalidResponse(
        "Your identity provider's answer was not accepted. Please start signing in again.",
        detail=f"saml structure ({kind}): {detail}",
    )
