"""SAML 2.0 schema validation with libxml2 (lxml), once per document.

The schema files are pysaml2's own (``saml2.data.schemas``: SAML 2.0 protocol and assertion,
XML Signature, XML Encryption), the ones its pure-Python validator (xmlschema) reads; the
references between them are resolved to those files, never fetched. pysaml2 validated each
signed element's re-serialization apart (a Response, then the Assertion in it) at 2 to 5 ms each;
libxml2 validates the whole document in a fraction of that, so the broker validates what it
receives once: the Response as posted (:meth:`broker.upstream.saml.SAMLProvider.handle_response`),
an assertion once decrypted (:class:`broker.upstream.saml_crypto.InProcessCrypto`), each logout
message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import cache
from importlib.resources import as_file, files
from typing import Any

from lxml import etree

_PROTOCOL = "saml-schema-protocol-2.0.xsd"
_lock = threading.Lock()  # an XMLSchema object validates one document at a time


class SchemaInvalid(ValueError):
    """The document is not valid SAML 2.0; the message is libxml2's first reason (it names
    an element or a type, never the document's text)."""


def validate(document: etree._Element | bytes) -> None:
    """Raise SchemaInvalid unless ``document`` (bytes, or a parsed element validated as the
    root of its own document) is valid against the SAML 2.0 protocol schema and the
    schemas it imports."""
    if isinstance(document, bytes):
        document = etree.fromstring(document, parser=_parser())
    schema = _schema()
    with _lock:
        valid = schema.validate(document)
        log: Iterable[Any] = schema.error_log  # type: ignore[assignment]  # lxml-stubs lag
        errors = [error.message for error in log]  # read under the lock
    if not valid:
        raise SchemaInvalid(_reason(errors[0] if errors else "invalid"))


@cache
def _schema() -> etree.XMLSchema:
    with as_file(files("saml2.data.schemas")) as folder:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        parser.resolvers.add(_LocalSchemas(str(folder)))
        return etree.XMLSchema(etree.parse(str(folder / _PROTOCOL), parser))


@cache
def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class _LocalSchemas(etree.Resolver):
    """Each schema a schema imports (by a W3C URL or a relative name) from pysaml2's folder."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self._folder = folder

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]  # lxml-stubs lag
        name = system_url.rsplit("/", 1)[-1]
        local = files("saml2.data.schemas").joinpath(name)
        if not name.endswith((".xsd", ".dtd")) or not local.is_file():
            return None
        return self.resolve_filename(f"{self._folder}/{name}", context)  # type: ignore[attr-defined]


def _reason(message: str) -> str:
    """libxml2's message with element and attribute names unqualified and every other quoted
    text (the document's values) masked."""

    def keep_names(match: re.Match[str]) -> str:
        quoted = match.group(1)
        if match.string[: match.start()].endswith(("Element ", "attribute ")):
            return "'" + quoted.rpartition("}")[2][:60] + "'"
        return "'…'"

    return " ".join(_QUOTED.sub(keep_names, message).split())[:160]


_QUOTED = re.compile(r"'([^']*)'")
