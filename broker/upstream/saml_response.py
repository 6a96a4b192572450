"""pysaml2's reading of an AuthnResponse, without three things the broker does better or never
uses (a tenth of the ACS's CPU, bench/README.md):

- **No second schema check of the Response as posted.** pysaml2 walks its object tree with
  ``saml2.validate.valid_instance`` (pure Python: each attribute's type, each element's
  cardinality), a check derived from the same SAML 2.0 schema files that
  :mod:`broker.upstream.saml_schema` has just validated the whole document against with
  libxml2, which refuses everything it would and more. A decrypted assertion is validated by
  the broker too, once decrypted (:mod:`broker.upstream.saml_crypto`).
- **No debug line that serializes the attributes.** pysaml2's ``get_identity`` formats each
  ``AttributeStatement`` back into XML for an f-string ``logger.debug``, at any log level; the
  identity is read the same way otherwise.
- **No person cache.** ``Saml2Client.parse_authn_request_response`` stores each signed-in
  person's session information in the client's in-memory ``Population``, which nothing in the
  broker reads and which grows with every new person.

:func:`parse_authn_response` is ``parse_authn_request_response`` of pysaml2 7.5 with these
changes: the same arguments to ``Entity._parse_response``, the same exceptions raised.
"""

from __future__ import annotations

from typing import Any

from saml2 import SAMLError
from saml2.client import Saml2Client
from saml2.response import AuthnResponse, IncorrectlySigned
from saml2.s_utils import UnravelError


class BrokerAuthnResponse(AuthnResponse):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2's AuthnResponse without its second schema check and its debug serialization."""

    def _postamble(self) -> BrokerAuthnResponse:
        # pysaml2's, less valid_instance (see the module docstring).
        if not self.response:
            raise IncorrectlySigned()
        self.in_response_to = self.response.in_response_to
        return self

    def get_identity(self) -> dict[str, Any]:
        """The attributes of every AttributeStatement (pysaml2's, less its debug lines)."""
        ava: dict[str, Any] = {}
        for assertion in self.assertions:
            for advised in (assertion.advice.assertion or []) if assertion.advice else []:
                if advised.attribute_statement:
                    if len(advised.attribute_statement) != 1:
                        raise ValueError(
                            "Invalid number of AuthnStatement found in Response: "
                            f"{len(advised.attribute_statement)}"
                        )
                    ava.update(self.read_attribute_statement(advised.attribute_statement[0]))
            for statement in assertion.attribute_statement or []:
                ava.update(self.read_attribute_statement(statement))
        return ava


def parse_authn_response(
    client: Saml2Client, xmlstr: str, binding: str, outstanding: dict[str, str]
) -> AuthnResponse | None:
    """``client.parse_authn_request_response(xmlstr, binding, outstanding=outstanding)`` read
    as a :class:`BrokerAuthnResponse`, keeping nothing about the person in ``client``."""
    if not getattr(client.config, "entityid", None):
        raise SAMLError("Missing entity_id specification")
    if not xmlstr:
        return None
    kwargs = {
        "outstanding_queries": outstanding,
        "outstanding_certs": None,
        "allow_unsolicited": client.allow_unsolicited,
        "want_assertions_signed": client.want_assertions_signed,
        "want_assertions_or_response_signed": client.want_assertions_or_response_signed,
        "want_response_signed": client.want_response_signed,
        "return_addrs": client.service_urls(binding=binding),
        "entity_id": client.config.entityid,
        "attribute_converters": client.config.attribute_converters,
        "allow_unknown_attributes": client.config.allow_unknown_attributes,
        "conv_info": None,
    }
    try:
        response = client._parse_response(
            xmlstr, BrokerAuthnResponse, "assertion_consumer_service", binding, **kwargs
        )
    except UnravelError:
        return None
    return response if isinstance(response, AuthnResponse) else None
