"""XML signatures and decryption for pysaml2 in this process (python-xmlsec, libxmlsec1).

pysaml2's default crypto backend runs the ``xmlsec1`` program for every operation, through
temporary files: ``--verify`` per signature (and ``--version`` twice per verification), and
``--decrypt`` per encrypted assertion, each run loading OpenSSL's configuration and the CA
bundle again. :class:`InProcessCrypto` does the same operations on the same library, in the
process, on the document pysaml2 hands over, with the keys loaded once:

- a verification key once per IdP certificate (base64 DER, as the metadata gives it), in a
  bounded cache, never written to a file (:class:`InProcessSecurity`);
- an SP private key once per file (loaded again when the file changes), for decryption and
  for the enveloped signatures of HTTP-POST logout messages.

What ``xmlsec1 --verify`` was told, :meth:`InProcessCrypto.verify` does too: the
signature is the signed element's own (a direct child), its references are same-document
only, only the transforms SAML's signature profile allows (enveloped, exclusive c14n) run, and
the key is ours, never one from the message's KeyInfo. Decryption allows the key transports
and ciphers :func:`broker.upstream.saml_checks.check_encryption` allows, checked again here for
what an assertion encrypts inside itself.

The strict structural checks stay :mod:`broker.upstream.saml_checks`' and
:mod:`broker.upstream.saml`'s; this module replaces a program, not a check.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import xmlsec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from saml2 import class_name, samlp
from saml2.sigver import (
    CryptoBackend,
    DecryptError,
    MissingKey,
    RSACrypto,
    SecurityContext,
    SignatureError,
)

from broker.upstream import saml_schema
from broker.upstream.saml_checks import XENC, check_encryption, check_signature_profile

DS = "http://www.w3.org/2000/09/xmldsig#"

#: HTTP-Redirect signature algorithms (Bindings 3.4.4.1): RSA with SHA-2, and SHA-1, which
#: only a connection with ``allow_sha1`` accepts (its callers check).
REDIRECT_SIGNATURE_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = MappingProxyType(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
        f"{DS}rsa-sha1": hashes.SHA1,
    }
)
# What a Reference may run: the transforms SAML's XML signature profile allows (Core 5.4.3-4,
# as pysaml2 checks them) and the digests (which algorithms the connection accepts is
# saml_checks' to say, before this runs).
_REFERENCE_TRANSFORMS = (
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformExclC14NWithComments,
    xmlsec.constants.TransformSha1,
    xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformSha384,
    xmlsec.constants.TransformSha512,
)
_CACHED_CERTIFICATES = 64
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
)


class InProcessCrypto(CryptoBackend):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2's crypto backend on python-xmlsec. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._certificates: OrderedDict[str, xmlsec.Key] = OrderedDict()
        self._private_keys: dict[str, tuple[tuple[int, int], xmlsec.Key]] = {}
        self._managers: dict[str, tuple[xmlsec.Key, xmlsec.KeysManager, threading.Lock]] = {}

    @property
    def version(self) -> str:
        version = xmlsec.get_libxmlsec_version()  # type: ignore[attr-defined]  # not in stubs
        return ".".join(str(part) for part in version)

    # -- signatures ------------------------------------------------------------------------

    def verify(
        self, document: str | bytes, node_name: str, node_id: str, certificates: Iterable[str]
    ) -> None:
        """Verify the signature of the element ``node_id`` of ``document``: its own
        ``ds:Signature`` (a direct child), within SAML's signature profile, by one of
        ``certificates`` (base64 DER). ``node_name`` is pysaml2's ``namespace:LocalName`` of
        the element, which must match. Raises SignatureError naming what failed."""
        node = _element_with_id(_parse(document), node_id, node_name)
        if node is None:
            raise SignatureError("the signed element is not found once, with its ID")
        signature = node.find(f"{{{DS}}}Signature")
        if signature is None:
            raise SignatureError("the signed element has no signature of its own")
        check_signature_profile(signature, node_id, refuse=_signature_refused)
        for certificate in certificates:
            context = xmlsec.SignatureContext()
            context.key = self._verifying_key(certificate)
            context.register_id(node, "ID")
            for transform in _REFERENCE_TRANSFORMS:
                context.enable_reference_transform(transform)
            try:
                context.verify(signature)
            except xmlsec.Error:
                continue
            return
        raise SignatureError("Failed to verify signature")

    def sign_statement(self, statement: Any, node_name: str, key_file: str, node_id: str) -> str:
        """Fill in the signature template of the element ``node_id`` (pysaml2's
        ``pre_signature_part``) with our key from ``key_file``."""
        root = _parse(statement if isinstance(statement, str | bytes) else str(statement))
        node = _element_with_id(root, node_id, node_name)
        template = node.find(f"{{{DS}}}Signature") if node is not None else None
        if node is None or template is None:
            raise SignatureError("no signature template on the element to sign")
        context = xmlsec.SignatureContext()
        context.key = self._private_key(key_file)
        context.register_id(node, "ID")
        try:
            context.sign(template)
        except xmlsec.Error as exc:
            raise SignatureError(f"signing failed: {type(exc).__name__}") from None
        return str(etree.tostring(root, encoding="unicode"))

    def _verifying_key(self, certificate: str) -> xmlsec.Key:
        with self._lock:
            key = self._certificates.get(certificate)
            if key is not None:
                self._certificates.move_to_end(certificate)
                return key
        try:
            der = base64.b64decode(certificate, validate=True)
            key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
        except (ValueError, xmlsec.Error):
            raise SignatureError("an IdP certificate that is not an X.509 certificate") from None
        with self._lock:
            self._certificates[certificate] = key
            while len(self._certificates) > _CACHED_CERTIFICATES:
                self._certificates.popitem(last=False)
        return key

    # -- decryption ------------------------------------------------------------------------

    def decrypt(self, enctext: str | bytes, key_file: str) -> str:
        """The document with its first ``xenc:EncryptedData`` replaced by what it encrypts,
        as ``xmlsec1 --decrypt`` gives it; the key from ``key_file`` (a PEM private key)."""
        root = _parse(enctext)
        encrypted = root.find(f".//{{{XENC}}}EncryptedData")
        if encrypted is None:
            raise DecryptError("nothing encrypted")
        parent = encrypted.getparent()
        check_encryption(parent if parent is not None else encrypted, refuse=_decrypt_refused)
        manager, lock = self._decryption_keys(key_file)
        with lock:  # one keys manager per key, built once (a new one costs ~20 ms)
            context = xmlsec.EncryptionContext(manager)
            try:
                decrypted = context.decrypt(encrypted)
            except xmlsec.Error:
                raise DecryptError("the SP key does not decrypt it") from None
        if isinstance(decrypted, etree._Element):
            saml_schema.validate(decrypted)  # the one validation of what was encrypted
        return str(etree.tostring(root, encoding="unicode"))

    def _decryption_keys(self, path: str) -> tuple[xmlsec.KeysManager, threading.Lock]:
        """A keys manager holding the private key of ``path``, and the lock its use takes."""
        key = self._private_key(path)
        with self._lock:
            cached = self._managers.get(path)
            if cached is not None and cached[0] is key:
                return cached[1], cached[2]
        manager = xmlsec.KeysManager()
        manager.add_key(key)
        entry = (key, manager, threading.Lock())
        with self._lock:
            self._managers[path] = entry
        return entry[1], entry[2]

    def _private_key(self, path: str) -> xmlsec.Key:
        """The PEM private key in ``path``, loaded once until the file changes."""
        stat = Path(path).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._private_keys.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        key = xmlsec.Key.from_memory(Path(path).read_bytes(), xmlsec.constants.KeyDataFormatPem)
        with self._lock:
            self._private_keys[path] = (stamp, key)
        return key


def _signature_refused(detail: str, kind: str) -> Exception:
    error: Exception = SignatureError(detail)  # pysaml2's classes are untyped
    return error


def _decrypt_refused(detail: str, kind: str) -> Exception:
    error: Exception = DecryptError(detail)  # pysaml2's classes are untyped
    return error


def _parse(text: str | bytes) -> etree._Element:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return etree.fromstring(data, parser=_PARSER)


def _element_with_id(root: etree._Element, node_id: str, node_name: str) -> etree._Element | None:
    """The one element whose ``ID`` is ``node_id``, if it is a ``node_name``
    (``namespace:LocalName``); None when there is none, several, or another kind."""
    found = [element for element in root.iter() if element.get("ID") == node_id]
    if len(found) != 1:
        return None
    namespace, _, local = node_name.rpartition(":")
    if found[0].tag != f"{{{namespace}}}{local}":
        return None
    return found[0]


class InProcessSecurity(SecurityContext):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2's security context, verifying signatures with :class:`InProcessCrypto`.

    Its ``_check_signature`` (which every signature check of pysaml2 ends in: Responses,
    Assertions, decrypted Assertions, logout messages) is replaced. pysaml2's writes each
    certificate to a temporary file, validates the signed element's re-serialization against
    the SAML schema with pure-Python xmlschema, checks SAML's signature profile and runs
    xmlsec1 per certificate. Here: the profile the same way
    (:func:`broker.upstream.saml_checks.check_signature_profile`), the signature in the
    process with the keys ``metadata.certs`` gives (the connection's IdP's signing keys), and
    the schema is the caller's, once per document (:mod:`broker.upstream.saml_schema`)."""

    crypto: InProcessCrypto

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsigned = threading.local()

    def correctly_signed_response(
        self,
        decoded_xml: str | bytes,
        must: bool = False,
        origdoc: str | None = None,
        only_valid_cert: bool = False,
        require_response_signature: bool = False,
        **kwargs: Any,
    ) -> Any:
        """pysaml2's check of a Response's own signature, parsing the document once.

        pysaml2 reads a Response twice when only its assertion is signed: first demanding
        a signature on the Response (to learn whether it has one), which fails, then again
        without. The first reading's element, untouched, is kept for the second, which gets
        it instead of parsing the same document again; the checks are pysaml2's own."""
        kept = getattr(self._unsigned, "response", None)
        self._unsigned.response = None
        if kept is not None and kept[0] == decoded_xml:
            response = kept[1]
        else:
            # A Response (the ACS checked its root) is read once; pysaml2's any_response_...
            # would read it as a StatusResponseType first, only to find the tag is not that.
            response = samlp.response_from_string(decoded_xml)
            response = response or samlp.any_response_from_string(decoded_xml)
            if not response:
                raise TypeError("Not a Response")
        if response.signature:
            if "do_not_verify" not in kwargs:
                self._check_signature(decoded_xml, response, class_name(response), origdoc)
        elif require_response_signature:
            self._unsigned.response = (decoded_xml, response)
            raise SignatureError("Signature missing for response")
        return response

    def _check_signature(
        self,
        decoded_xml: str | bytes,
        item: Any,
        node_name: str = "",
        origdoc: str | None = None,
        must: bool = False,
        only_valid_cert: bool = False,
        issuer: Any = None,
    ) -> Any:
        certificates = [
            "".join(str(cert).split()) for _, cert in self.metadata.certs(None, "any", "signing")
        ]
        if not certificates:
            raise MissingKey("no signing certificate for the IdP in its metadata")
        self.crypto.verify(decoded_xml, node_name, str(item.id), certificates)
        return item


class RedirectSigner(RSACrypto):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2's ``sec_backend``: signs HTTP-Redirect messages (the AuthnRequest) with this
    connection's key. pysaml2's own (``RSACrypto``) sets the key on one signer object per
    algorithm shared by the whole process, so two connections signing at once could swap
    keys."""

    def __init__(self, key: Callable[[], rsa.RSAPrivateKey]) -> None:
        super().__init__(None)
        self._key = key

    def get_signer(self, sigalg: str, sigkey: Any = None) -> _KeySigner | None:
        algorithm = REDIRECT_SIGNATURE_HASHES.get(sigalg)
        return _KeySigner(self._key(), algorithm()) if algorithm is not None else None


@dataclass(frozen=True)
class _KeySigner:
    key: rsa.RSAPrivateKey
    algorithm: hashes.HashAlgorithm

    def sign(self, msg: bytes, key: Any = None) -> bytes:
        return self.key.sign(msg, padding.PKCS1v15(), self.algorithm)
