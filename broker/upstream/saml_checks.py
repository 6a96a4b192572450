"""Strict structural checks on a SAML Response, made before any signature is looked at.

pysaml2 verifies signatures and conditions; these checks make sure that what it verifies is
what gets read, and refuse the shapes that attacks on SAML service providers rely on:

- no DTD, no entities, no external references (XXE, entity expansion): parsed with defusedxml;
- no XML comments anywhere (comment injection truncating a NameID, as in the 2018 findings);
- exactly one assertion (plain or encrypted), a direct child of the Response;
- each ds:Signature a direct child of the Response or of the Assertion, referring to exactly
  its parent's ID, and no ID used twice (XML signature wrapping);
- signature and digest algorithms from an allow-list: RSA or ECDSA with SHA-256, SHA-384 or
  SHA-512; SHA-1 only when the connection allows it (``allow_sha1``); anything else (MD5,
  SHA-224, RIPEMD-160, DSA, HMAC) refused;
- an encrypted assertion's cipher (AES-GCM, AES-CBC, Triple-DES) and key transport (RSA-OAEP;
  never RSA PKCS#1 v1.5, whose padding oracle lets whoever can post to the ACS decrypt keys)
  from an allow-list too.

Follows SAML 2.0 Core (OASIS saml-core-2.0-os) and the XML Signature best practices (W3C
xmldsig-bestpractices, sections on wrapping attacks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from broker.errors import InvalidResponse

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
_XENC11 = "http://www.w3.org/2009/xmlenc11#"
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
#: Signature methods accepted (RFC 6931): RSA PKCS#1 v1.5 and ECDSA, with SHA-2.
SIGNATURE_METHODS = frozenset(
    f"{_MORE}{name}"
    for name in (
        "rsa-sha256",
        "rsa-sha384",
        "rsa-sha512",
        "ecdsa-sha256",
        "ecdsa-sha384",
        "ecdsa-sha512",
    )
)
#: Digest methods accepted.
DIGEST_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        f"{_MORE}sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
#: Accepted only with the connection's ``allow_sha1``.
SHA1_SIGNATURE_METHODS = frozenset({f"{DS}rsa-sha1", f"{_MORE}ecdsa-sha1"})
SHA1_DIGEST_METHODS = frozenset({f"{DS}sha1"})
SHA1_ALGORITHMS = SHA1_SIGNATURE_METHODS | SHA1_DIGEST_METHODS
#: What the refusal of SHA-1 tells the operator (the log line's detail).
SHA1_REFUSED = (
    "signed with SHA-1, which this connection does not accept "
    "(set allow_sha1 = true on the connection to accept it)"
)
#: Canonicalizations SAML's signature profile allows (Core 5.4.3): exclusive, with or without
#: comments (comments are refused anyway, before any signature is looked at).
EXCLUSIVE_C14N = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    }
)
ENVELOPED_SIGNATURE = f"{DS}enveloped-signature"
#: Key transports accepted on an EncryptedKey: RSA-OAEP (XML Encryption 1.0 and 1.1).
KEY_TRANSPORTS = frozenset({f"{XENC}rsa-oaep-mgf1p", f"{_XENC11}rsa-oaep"})
#: Ciphers accepted on an EncryptedData: what pysaml2, ADFS, Shibboleth, Entra ID and samlify
#: offer (AES-GCM, AES-CBC), and Triple-DES, which older ADFS still sends.
DATA_CIPHERS = frozenset(
    {f"{_XENC11}aes{bits}-gcm" for bits in (128, 192, 256)}
    | {f"{XENC}aes{bits}-cbc" for bits in (128, 192, 256)}
    | {f"{XENC}tripledes-cbc"}
)
# An algorithm URI is the message's own text: it is named in a log line only when it has the
# shape of a W3C algorithm identifier (no room for an address or a name).
_ALGORITHM_URI = re.compile(
    r"http://www\.w3\.org/[0-9]{4}/[0-9]{2}/[A-Za-z0-9-]{1,40}#[A-Za-z0-9-]{1,40}"
)


Refuse = Callable[[str, str], Exception]


class ElementLike(Protocol):
    """An ElementTree or lxml element, as far as these checks read one."""

    def iter(self, tag: str) -> Iterator[Any]: ...
    def find(self, path: str) -> Any: ...
    def findall(self, path: str) -> list[Any]: ...


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


def check_response_structure(
    document: bytes, *, allow_sha1: bool, root: Element | None = None
) -> Element:
    """Refuse a hostile or malformed Response; return its parsed root. ``root``: the document
    as :func:`parse_protocol_message` already parsed it (``tag="Response"``)."""
    if root is None:
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
    # Signature algorithms only: RSA-OAEP key transport names SHA-1 too, harmlessly.
    for signed_info in root.iter(f"{{{DS}}}SignedInfo"):
        check_signed_info(signed_info, allow_sha1=allow_sha1, refuse=refused)
    check_encryption(direct[0], refuse=refused)
    return root


def check_signature_profile(signature: ElementLike, element_id: str, *, refuse: Refuse) -> None:
    """SAML Core 5.4's profile of XML Signature on one ``ds:Signature`` of the element whose ID
    is ``element_id`` (as pysaml2 checks it): one Reference, to that ID; exclusive
    canonicalization; one or two transforms, the enveloped-signature transform among them and
    otherwise only exclusive canonicalization; no ``ds:Object``, which could carry unsigned
    content."""
    references = signature.findall(f"./{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(references) != 1 or references[0].get("URI") != f"#{element_id}":
        raise refuse("a signature that does not cover its own element", "wrapping")
    c14n = signature.findall(f"./{{{DS}}}SignedInfo/{{{DS}}}CanonicalizationMethod")
    if len(c14n) != 1 or c14n[0].get("Algorithm") not in EXCLUSIVE_C14N:
        raise refuse("a signature without exclusive canonicalization", "signature_profile")
    transforms = [
        transform.get("Algorithm")
        for transform in references[0].findall(f"./{{{DS}}}Transforms/{{{DS}}}Transform")
    ]
    if (
        not 1 <= len(transforms) <= 2
        or ENVELOPED_SIGNATURE not in transforms
        or not set(transforms) <= EXCLUSIVE_C14N | {ENVELOPED_SIGNATURE}
    ):
        raise refuse("a signature with transforms SAML does not allow", "signature_profile")
    if signature.findall(f"./{{{DS}}}Object"):
        raise refuse("a signature carrying a ds:Object", "signature_profile")


def check_encryption(element: ElementLike, *, refuse: Refuse) -> None:
    """Every EncryptedData and EncryptedKey within ``element`` (an EncryptedAssertion, say)
    uses a cipher of :data:`DATA_CIPHERS` and a key transport of :data:`KEY_TRANSPORTS`."""
    for data in element.iter(f"{{{XENC}}}EncryptedData"):
        algorithm = _method(data)
        if algorithm not in DATA_CIPHERS:
            raise refuse(
                f"encrypted with the cipher {describe_algorithm(algorithm)}, which is not "
                "accepted: configure the IdP to encrypt with AES-GCM or AES-CBC",
                "encryption",
            )
    for key in element.iter(f"{{{XENC}}}EncryptedKey"):
        algorithm = _method(key)
        if algorithm not in KEY_TRANSPORTS:
            raise refuse(
                f"the key is wrapped with {describe_algorithm(algorithm)}, which is not "
                "accepted: configure the IdP to use RSA-OAEP key transport",
                "encryption",
            )


def _method(element: ElementLike) -> str | None:
    method = element.find(f"{{{XENC}}}EncryptionMethod")
    return method.get("Algorithm") if method is not None else None


def check_signed_info(signed_info: Element, *, allow_sha1: bool, refuse: Refuse) -> None:
    """The algorithms of one ``ds:SignedInfo``, by :func:`check_algorithms`."""
    methods = signed_info.findall(f"./{{{DS}}}SignatureMethod")
    digests = signed_info.findall(f"./{{{DS}}}Reference/{{{DS}}}DigestMethod")
    check_algorithms(
        methods[0].get("Algorithm") if len(methods) == 1 else None,
        [digest.get("Algorithm") for digest in digests] or [None],
        allow_sha1=allow_sha1,
        refuse=refuse,
    )


def check_algorithms(
    signature_method: str | None,
    digest_methods: Iterable[str | None],
    *,
    allow_sha1: bool,
    refuse: Refuse,
) -> None:
    """Refuse a signature whose method or a digest is not on the allow-list: RSA or ECDSA with
    SHA-256/384/512 and SHA-256/384/512 digests, SHA-1 only with ``allow_sha1``. The refusal's
    detail names the algorithm (when it looks like one) and, for SHA-1, the setting to change."""
    checks = [("signature", signature_method, SIGNATURE_METHODS, SHA1_SIGNATURE_METHODS)]
    checks += [("digest", d, DIGEST_METHODS, SHA1_DIGEST_METHODS) for d in digest_methods]
    for what, algorithm, allowed, sha1 in checks:
        if algorithm in allowed or (allow_sha1 and algorithm in sha1):
            continue
        if algorithm in sha1:
            raise refuse(SHA1_REFUSED, "sha1")
        raise refuse(
            f"{what} method {describe_algorithm(algorithm)} is not accepted "
            "(RSA or ECDSA with SHA-256, SHA-384 or SHA-512)",
            "algorithm",
        )


def describe_algorithm(algorithm: str | None) -> str:
    """An algorithm URI for a log line: itself when it has the shape of one, else a word."""
    if algorithm is None:
        return "(none)"
    if _ALGORITHM_URI.fullmatch(algorithm):
        return algorithm
    return "(an unrecognised URI)"


def refused(detail: str, kind: str) -> InvalidResponse:
    return InvalidResponse(
        "Your identity provider's answer was not accepted. Please start signing in again.",
        detail=f"saml structure ({kind}): {detail}",
    )
