"""SAML Single Logout in :class:`~broker.upstream.saml.SAMLProvider`, over real HTTP against the
samlify IdP (tests/support/saml_idp.py), without the broker's web app.

SP-initiated: a shopper signs in (AuthnRequest, ``complete_sso``, ``handle_response``), the SP
sends a LogoutRequest naming the assertion's NameID and SessionIndex, the IdP ends that session
and answers a LogoutResponse (``complete_slo``), which ``handle_logout_response`` checks.
IdP-initiated: ``initiate_logout`` makes the IdP send a LogoutRequest, ``handle_logout_request``
checks it, and the IdP records and verifies the SP's ``logout_response`` (``idp.events()``).

Forgeries start from the IdP's genuine messages. Those that the IdP "signs" again use its private
key (``expose_key_for_tests``), and each such family has a positive control: the message signed
again unchanged is accepted, so a refusal comes from the check named, not from the re-signing.

One IdP serves the module (it keeps no state a test depends on: each test signs in afresh and
finds its own events by message ID); ``provider`` reads its metadata as published (Redirect and
POST SingleLogoutService), ``post_only`` reads it without the Redirect one.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from broker.config import SAMLConnection
from broker.errors import IdPUnavailable, InvalidResponse
from broker.keys import make_key_pair
from broker.upstream.saml import (
    POST,
    REDIRECT,
    RSA_SHA256,
    Assertion,
    LogoutRequestInfo,
    OutboundMessage,
    SAMLProvider,
)
from tests.support import saml_forge as forge
from tests.support.saml_idp import (
    SamlIdp,
    auto_post_form,
    complete_slo,
    complete_sso,
    decode_post_message,
    decode_redirect_message,
    initiate_logout,
    start_saml_idp,
)

SP = "https://shop.example/acme/saml/corp"
ENTITY_ID, ACS, SLO = f"{SP}/metadata", f"{SP}/acs", f"{SP}/slo"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
USERS = {
    "alice": {"email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"},
    "bob": {"email": "bob@example.com", "first_name": "Bob", "last_name": "Builder"},
}


def _provider(
    idp: SamlIdp, key_file: Path, cert_file: Path, *, slo_url: str | None = SLO, **fields: Any
) -> SAMLProvider:
    connection = SAMLConnection(
        key="corp",
        display_name="Acme SAML",
        sp_key_file=str(key_file),
        sp_cert_file=str(cert_file),
        **({"idp_metadata_url": idp.metadata_url} | fields),
    )
    return SAMLProvider(connection, sp_entity_id=ENTITY_ID, acs_url=ACS, slo_url=slo_url)


@dataclass
class SloWorld:
    idp: SamlIdp
    key_file: Path
    cert_file: Path
    #: The IdP's metadata as published: SingleLogoutService in HTTP-Redirect and HTTP-POST.
    provider: SAMLProvider
    #: The same IdP, its metadata without the HTTP-Redirect SingleLogoutService.
    post_only: SAMLProvider

    def make_provider(self, *, slo_url: str | None = SLO, **fields: Any) -> SAMLProvider:
        return _provider(self.idp, self.key_file, self.cert_file, slo_url=slo_url, **fields)

    @property
    def idp_key(self) -> str:
        assert self.idp.key_pem is not None
        return self.idp.key_pem

    def events(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            event
            for event in self.idp.events()
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items())
        ]


def _without_slo(metadata: str, binding: str | None) -> str:
    """The IdP's metadata without its SingleLogoutService of ``binding`` (None: all of them)."""
    which = re.escape(binding) if binding else '[^"]+'
    pattern = rf'<SingleLogoutService Binding="{which}"[^>]*>(?:</SingleLogoutService>)?'
    stripped, count = re.subn(pattern, "", metadata)
    assert count >= 1, metadata
    return stripped


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SloWorld]:
    key_file, cert_file = make_key_pair(tmp_path_factory.mktemp("keys"))
    sp = {
        "entity_id": ENTITY_ID,
        "acs_url": ACS,
        "slo_url": SLO,
        "signing_cert_pem": cert_file.read_text(),
        "encryption_cert_pem": cert_file.read_text(),
    }
    # want_logout_requests_signed: the IdP refuses our LogoutRequests unless their signature
    # verifies with our certificate, so each one it accepts also proves our signing.
    options = {"want_logout_requests_signed": True, "expose_key_for_tests": True}
    with start_saml_idp(sp=sp, users=USERS, idp=options) as idp:
        post_only = _without_slo(httpx.get(idp.metadata_url, timeout=10).text, REDIRECT)
        yield SloWorld(
            idp=idp,
            key_file=key_file,
            cert_file=cert_file,
            provider=_provider(idp, key_file, cert_file),
            post_only=_provider(
                idp, key_file, cert_file, idp_metadata_url=None, idp_metadata_xml=post_only
            ),
        )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=20) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------------


def sign_in(http: httpx.Client, provider: SAMLProvider, login: str = "alice") -> Assertion:
    request_id, url = provider.authn_request(relay_state="sign-in")
    acs, form = complete_sso(http, url, login)
    assert acs == ACS
    return provider.handle_response(form["SAMLResponse"], expected_request_id=request_id)


def start_logout(
    provider: SAMLProvider, assertion: Assertion, relay_state: str = "rs-1"
) -> OutboundMessage:
    return provider.logout_request(
        name_id=assertion.name_id,
        name_id_format=assertion.name_id_format,
        session_index=assertion.session_index,
        relay_state=relay_state,
    )


@dataclass
class Inbound:
    """A message the IdP sent to our SLO endpoint, as the web layer would receive it."""

    binding: str
    params: dict[str, str]
    query_string: str | None = None

    @property
    def kind(self) -> str:
        return "SAMLRequest" if "SAMLRequest" in self.params else "SAMLResponse"

    @property
    def xml(self) -> str:
        value = self.params[self.kind]
        return (
            decode_redirect_message(value)
            if self.binding == REDIRECT
            else decode_post_message(value)
        )


def inbound(url: str, form: dict[str, str]) -> Inbound:
    """What ``complete_slo`` or ``initiate_logout`` returned, as our SLO endpoint gets it."""
    if form:
        assert url == SLO
        return Inbound(POST, dict(form))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == SLO
    return Inbound(REDIRECT, dict(parse_qsl(parts.query, keep_blank_values=True)), parts.query)


def idp_answer(http: httpx.Client, message: OutboundMessage) -> Inbound:
    """Take our LogoutRequest to the IdP; its LogoutResponse to our SLO endpoint."""
    if message.url is not None:
        return inbound(*complete_slo(http, message.url))
    assert message.binding == POST
    assert message.html is not None
    return inbound(*auto_post_form(http.post(message.destination, data=dict(message.form))))


def send_to_idp(http: httpx.Client, message: OutboundMessage) -> httpx.Response:
    if message.url is not None:
        return http.get(message.url)
    return http.post(message.destination, data=dict(message.form))


def accept_response(provider: SAMLProvider, message: Inbound, expected: str) -> None:
    provider.handle_logout_response(
        binding=message.binding,
        params=message.params,
        expected_request_id=expected,
        query_string=message.query_string,
    )


def accept_request(provider: SAMLProvider, message: Inbound) -> LogoutRequestInfo:
    return provider.handle_logout_request(
        binding=message.binding, params=message.params, query_string=message.query_string
    )


def refused(kind: str, call: Callable[[], object]) -> None:
    with pytest.raises(InvalidResponse) as caught:
        call()
    assert caught.value.detail is not None
    assert caught.value.detail.startswith(f"saml logout ({kind})"), caught.value.detail


def deflate(xml: str) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()


def query_signed(
    kind: str, xml: str, relay_state: str | None, key_pem: str, sig_alg: str = RSA_SHA256
) -> Inbound:
    """An HTTP-Redirect message carrying ``xml``, its query signed with ``key_pem``."""
    params = {kind: deflate(xml)}
    if relay_state is not None:
        params["RelayState"] = relay_state
    params["SigAlg"] = sig_alg
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    digest = hashes.SHA1() if sig_alg == RSA_SHA1 else hashes.SHA256()  # noqa: S303
    signature = key.sign(urlencode(params).encode(), padding.PKCS1v15(), digest)
    params["Signature"] = base64.b64encode(signature).decode()
    query = urlencode(params)
    return Inbound(REDIRECT, params, query)


_SIGNATURE = re.compile(r"<ds:Signature\b.*?</ds:Signature>", re.S)


def xml_signed(xml: str, key_pem: str, cert_pem: str) -> str:
    """``xml`` (a samlify logout message) with an enveloped signature by ``key_pem`` in place of
    its own, after its Issuer, shaped as samlify makes it (xmlsec1 --sign)."""
    xml = _SIGNATURE.sub("", xml)
    found = re.search(r'\bID="([^"]+)"', xml)
    tag = re.search(r"<samlp:(\w+)", xml)
    assert found is not None
    assert tag is not None
    cert = "".join(line for line in cert_pem.splitlines() if not line.startswith("-----"))
    template = (
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        f'<ds:SignatureMethod Algorithm="{RSA_SHA256}"/>'
        f'<ds:Reference URI="#{found.group(1)}"><ds:Transforms>'
        f'<ds:Transform Algorithm="{DS}enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        "<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"
        "<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data>"
        f"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</ds:Signature>"
    )
    xml = xml.replace("</saml:Issuer>", f"</saml:Issuer>{template}", 1)
    with tempfile.TemporaryDirectory(prefix="slo-forge-") as scratch:
        directory = Path(scratch)
        (directory / "key.pem").write_text(key_pem)
        (directory / "in.xml").write_text(xml)
        subprocess.run(
            [
                *("xmlsec1", "--sign", "--privkey-pem", str(directory / "key.pem")),
                *("--id-attr:ID", f"{SAMLP}:{tag.group(1)}"),
                *("--output", str(directory / "out.xml"), str(directory / "in.xml")),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return (directory / "out.xml").read_text()


def post_message(kind: str, xml: str, relay_state: str | None) -> Inbound:
    params = {kind: base64.b64encode(xml.encode()).decode()}
    if relay_state is not None:
        params["RelayState"] = relay_state
    return Inbound(POST, params)


def resigned(message: Inbound, world: SloWorld, edit: Callable[[str], str] = str) -> Inbound:
    """The message with its XML edited, signed again by the IdP's own key, in its binding."""
    xml = edit(message.xml)
    relay_state = message.params.get("RelayState")
    if message.binding == REDIRECT:
        return query_signed(message.kind, xml, relay_state, world.idp_key)
    return post_message(
        message.kind, xml_signed(xml, world.idp_key, world.idp.cert_pem), relay_state
    )


# -- SP metadata --------------------------------------------------------------------------------


def test_sp_metadata_advertises_slo_in_both_bindings(world: SloWorld) -> None:
    xml = world.provider.sp_metadata()
    for binding in (REDIRECT, POST):
        assert f'SingleLogoutService Binding="{binding}" Location="{SLO}"' in xml, xml
    assert world.provider.has_single_logout()

    without = world.make_provider(slo_url=None)
    assert "SingleLogoutService" not in without.sp_metadata()
    assert not without.has_single_logout()
    with pytest.raises(ValueError, match="slo_url"):
        without.logout_response(in_response_to="id-1", relay_state=None)


def test_an_idp_without_single_logout(world: SloWorld) -> None:
    metadata = _without_slo(httpx.get(world.idp.metadata_url, timeout=10).text, None)
    provider = world.make_provider(idp_metadata_url=None, idp_metadata_xml=metadata)
    assert not provider.has_single_logout()
    with pytest.raises(IdPUnavailable):
        provider.logout_request(
            name_id="alice@example.com", name_id_format=None, session_index=None, relay_state="x"
        )


# -- SP-initiated -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw_query", [True, False], ids=["raw-query", "params-only"])
def test_sp_initiated_logout_over_redirect(
    world: SloWorld, http: httpx.Client, raw_query: bool
) -> None:
    assertion = sign_in(http, world.provider)
    assert assertion.name_id == "alice@example.com"
    assert assertion.name_id_format == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert assertion.session_index

    message = start_logout(world.provider, assertion)
    assert message.binding == REDIRECT
    assert message.html is None
    assert message.url is not None
    query = dict(parse_qsl(urlsplit(message.url).query))
    assert (query["RelayState"], query["SigAlg"]) == ("rs-1", RSA_SHA256)
    request = decode_redirect_message(query["SAMLRequest"])
    assert f'ID="{message.request_id}"' in request
    assert "alice@example.com</" in request
    assert f"{assertion.session_index}</" in request
    assert "Signature" not in request  # HTTP-Redirect: the query signature only

    answer = idp_answer(http, message)
    [ended] = world.events("logout_request", id=message.request_id)
    assert ended["ended_sessions"] == [assertion.session_index]
    assert answer.binding == REDIRECT
    assert answer.params["RelayState"] == "rs-1"
    if not raw_query:
        answer.query_string = None
    accept_response(world.provider, answer, message.request_id)


def test_sp_initiated_logout_over_post(world: SloWorld, http: httpx.Client) -> None:
    assertion = sign_in(http, world.post_only)
    message = start_logout(world.post_only, assertion)
    assert message.binding == POST
    assert message.url is None
    assert message.html is not None
    assert message.destination == world.idp.slo_url
    assert f'action="{world.idp.slo_url}"' in message.html
    assert 'name="RelayState" value="rs-1"' in message.html
    request = decode_post_message(message.form["SAMLRequest"])
    assert f'URI="#{message.request_id}"' in request  # an enveloped signature of the request

    answer = idp_answer(http, message)
    [ended] = world.events("logout_request", id=message.request_id)
    assert ended["ended_sessions"] == [assertion.session_index]
    assert answer.binding == POST
    assert answer.params["RelayState"] == "rs-1"
    accept_response(world.post_only, answer, message.request_id)


def _sp_logout(world: SloWorld, http: httpx.Client, provider: SAMLProvider) -> tuple[str, Inbound]:
    message = start_logout(provider, sign_in(http, provider))
    return message.request_id, idp_answer(http, message)


def _set(attribute: str, value: str) -> Callable[[str], str]:
    def edit(xml: str) -> str:
        changed, count = re.subn(rf'\b{attribute}="[^"]*"', f'{attribute}="{value}"', xml, count=1)
        assert count == 1
        return changed

    return edit


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(xml: str) -> str:
        assert old in xml
        return xml.replace(old, new)

    return edit


RESPONSE_FORGERIES: dict[str, tuple[str | None, Callable[[Inbound, SloWorld], Inbound]]] = {
    "re-signed by the IdP unchanged (control)": (None, lambda m, w: resigned(m, w)),
    "failure status, signed by the IdP": (
        "status",
        lambda m, w: resigned(m, w, _replace(SUCCESS, RESPONDER)),
    ),
    "another Destination, signed by the IdP": (
        "destination",
        lambda m, w: resigned(m, w, _set("Destination", f"{SP}/other-slo")),
    ),
    "another Issuer, signed by the IdP": (
        "issuer",
        lambda m, w: resigned(m, w, _replace(w.idp.entity_id, "https://evil.example/idp")),
    ),
    "another InResponseTo, signed by the IdP": (
        "in_response_to",
        lambda m, w: resigned(m, w, _set("InResponseTo", "id-someone-else")),
    ),
    "issued long ago, signed by the IdP": (
        "issue_instant",
        lambda m, w: resigned(m, w, _set("IssueInstant", "2020-01-01T00:00:00Z")),
    ),
    "a comment, signed by the IdP": (
        "comment",
        lambda m, w: resigned(m, w, _replace("</saml:Issuer>", "<!-- x --></saml:Issuer>")),
    ),
}


@pytest.mark.parametrize("case", list(RESPONSE_FORGERIES))
@pytest.mark.parametrize("via", ["redirect", "post"])
def test_logout_response_checks(world: SloWorld, http: httpx.Client, case: str, via: str) -> None:
    provider = world.provider if via == "redirect" else world.post_only
    request_id, genuine = _sp_logout(world, http, provider)
    kind, forge_it = RESPONSE_FORGERIES[case]
    forged = forge_it(genuine, world)
    if kind is None:
        accept_response(provider, forged, request_id)
    else:
        refused(kind, lambda: accept_response(provider, forged, request_id))


def test_logout_response_to_another_request_is_refused(world: SloWorld, http: httpx.Client) -> None:
    first, _ = _sp_logout(world, http, world.provider)
    _, answer = _sp_logout(world, http, world.provider)
    refused("in_response_to", lambda: accept_response(world.provider, answer, first))


def test_redirect_logout_response_signature_is_required_and_checked(
    world: SloWorld, http: httpx.Client
) -> None:
    request_id, answer = _sp_logout(world, http, world.provider)
    params = answer.params

    def attempt(changed: dict[str, str], query: bool = False) -> Callable[[], None]:
        message = Inbound(REDIRECT, changed, urlencode(changed) if query else None)
        return lambda: accept_response(world.provider, message, request_id)

    unsigned = {k: v for k, v in params.items() if k not in ("SigAlg", "Signature")}
    refused("unsigned", attempt(unsigned))
    refused("unsigned", attempt({k: v for k, v in params.items() if k != "Signature"}))

    signature = bytearray(base64.b64decode(params["Signature"]))
    signature[10] ^= 0x01
    tampered = {**params, "Signature": base64.b64encode(bytes(signature)).decode()}
    refused("signature", attempt(tampered))

    other_relay_state = {**params, "RelayState": "rs-other"}
    refused("signature", attempt(other_relay_state))
    refused("signature", attempt(other_relay_state, query=True))

    changed_xml = deflate(answer.xml.replace(SUCCESS, RESPONDER))
    refused("signature", attempt({**params, "SAMLResponse": changed_xml}))

    pair = forge.attacker_keypair()
    by_other_key = query_signed("SAMLResponse", answer.xml, params["RelayState"], pair.key_pem)
    refused("signature", lambda: accept_response(world.provider, by_other_key, request_id))

    sha1 = query_signed(
        "SAMLResponse", answer.xml, params["RelayState"], world.idp_key, sig_alg=RSA_SHA1
    )
    refused("sha1", lambda: accept_response(world.provider, sha1, request_id))
    lenient = world.make_provider(allow_sha1=True)
    accept_response(lenient, sha1, request_id)


def test_post_logout_response_signature_is_required_and_checked(
    world: SloWorld, http: httpx.Client
) -> None:
    request_id, answer = _sp_logout(world, http, world.post_only)
    relay_state = answer.params["RelayState"]

    def attempt(xml: str) -> Callable[[], None]:
        message = post_message("SAMLResponse", xml, relay_state)
        return lambda: accept_response(world.post_only, message, request_id)

    refused("unsigned", attempt(_SIGNATURE.sub("", answer.xml)))
    refused("signature", attempt(answer.xml.replace(SUCCESS, RESPONDER)))
    pair = forge.attacker_keypair()
    refused("signature", attempt(xml_signed(answer.xml, pair.key_pem, pair.cert_pem)))
    impostor = forge.attacker_keypair(impersonating=world.idp.cert_pem)
    refused("signature", attempt(xml_signed(answer.xml, impostor.key_pem, impostor.cert_pem)))
    # A query signature does not stand in for the XML one in the POST binding.
    unsigned_xml = _SIGNATURE.sub("", answer.xml)
    query = query_signed("SAMLResponse", unsigned_xml, relay_state, world.idp_key)
    as_post = post_message("SAMLResponse", unsigned_xml, relay_state)
    as_post.params |= {"SigAlg": query.params["SigAlg"], "Signature": query.params["Signature"]}
    refused("unsigned", lambda: accept_response(world.post_only, as_post, request_id))


# -- IdP-initiated ------------------------------------------------------------------------------


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_idp_initiated_logout(world: SloWorld, http: httpx.Client, binding: str) -> None:
    assertion = sign_in(http, world.provider, "bob")
    message = inbound(*initiate_logout(http, world.idp, "bob", binding=binding, relay_state="x"))
    assert message.binding == (REDIRECT if binding == "redirect" else POST)

    info = accept_request(world.provider, message)
    [sent] = world.events("logout_request_sent", id=info.request_id)
    assert sent["session_indexes"] == [assertion.session_index]
    assert (info.name_id, info.name_id_format) == (assertion.name_id, assertion.name_id_format)
    assert info.session_indexes == (assertion.session_index,)
    assert (info.relay_state, info.binding) == ("x", message.binding)
    assert info.not_on_or_after > 0

    answer = world.provider.logout_response(
        in_response_to=info.request_id, relay_state=info.relay_state
    )
    assert answer.binding == REDIRECT
    assert answer.url is not None
    assert answer.url.startswith(f"{world.idp.slo_url}?SAMLResponse=")
    page = send_to_idp(http, answer)
    assert page.status_code == 200, page.text
    [recorded] = world.events("logout_response", in_response_to=info.request_id)
    assert recorded["status"] == SUCCESS
    assert (recorded["binding"], recorded["signed"], recorded["verified"]) == (
        "redirect",
        True,
        True,
    )


def test_logout_response_over_post(world: SloWorld, http: httpx.Client) -> None:
    sign_in(http, world.post_only, "bob")
    message = inbound(*initiate_logout(http, world.idp, "bob", binding="post"))
    info = accept_request(world.post_only, message)
    assert info.relay_state is None

    answer = world.post_only.logout_response(in_response_to=info.request_id, relay_state=None)
    assert answer.binding == POST
    assert answer.html is not None
    assert answer.url is None
    assert dict(answer.form).keys() == {"SAMLResponse"}
    assert f'action="{world.idp.slo_url}"' in answer.html
    assert send_to_idp(http, answer).status_code == 200
    [recorded] = world.events("logout_response", in_response_to=info.request_id)
    assert recorded["status"] == SUCCESS
    assert (recorded["binding"], recorded["signed"], recorded["verified"]) == ("post", True, True)


def test_a_failed_logout_is_answered_with_a_signed_responder_status(
    world: SloWorld, http: httpx.Client
) -> None:
    sign_in(http, world.provider, "bob")
    message = inbound(*initiate_logout(http, world.idp, "bob", relay_state="x"))
    info = accept_request(world.provider, message)

    answer = world.provider.logout_response(
        in_response_to=info.request_id, relay_state=info.relay_state, success=False
    )
    assert answer.url is not None
    assert send_to_idp(http, answer).status_code == 200
    [recorded] = world.events("logout_response", in_response_to=info.request_id)
    assert (recorded["status"], recorded["signed"]) == (RESPONDER, True)
    # samlify refuses a failure status before it looks at the signature: verify it here.
    query = urlsplit(answer.url).query
    octets = query.rsplit("&Signature=", 1)[0].encode()
    signature = base64.b64decode(dict(parse_qsl(query))["Signature"])
    certificate = x509.load_pem_x509_certificate(world.cert_file.read_bytes())
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, octets, padding.PKCS1v15(), hashes.SHA256())


def test_relay_state_encoded_as_javascript_does_without_the_raw_query(
    world: SloWorld, http: httpx.Client
) -> None:
    sign_in(http, world.provider)
    relay_state = "/cart.php?x=1 2&y=(it's)*!~"
    message = inbound(*initiate_logout(http, world.idp, "alice", relay_state=relay_state))
    assert message.query_string is not None
    assert "%20" in message.query_string
    with_query = accept_request(world.provider, message)
    message.query_string = None
    assert accept_request(world.provider, message) == with_query
    assert with_query.relay_state == relay_state


def _genuine_request(world: SloWorld, http: httpx.Client, binding: str) -> Inbound:
    sign_in(http, world.provider)
    return inbound(*initiate_logout(http, world.idp, "alice", binding=binding, relay_state="x"))


def _forged_by_other_key(message: Inbound, world: SloWorld) -> Inbound:
    pair = forge.attacker_keypair()
    relay_state = message.params.get("RelayState")
    if message.binding == REDIRECT:
        return query_signed("SAMLRequest", message.xml, relay_state, pair.key_pem)
    return post_message(
        "SAMLRequest", xml_signed(message.xml, pair.key_pem, pair.cert_pem), relay_state
    )


def _unsigned(message: Inbound, world: SloWorld) -> Inbound:
    if message.binding == REDIRECT:
        params = {k: v for k, v in message.params.items() if k not in ("SigAlg", "Signature")}
        return Inbound(REDIRECT, params, urlencode(params))
    return post_message(
        "SAMLRequest", _SIGNATURE.sub("", message.xml), message.params.get("RelayState")
    )


def _tampered(message: Inbound, world: SloWorld) -> Inbound:
    """Another person named, the signature left as it was."""
    xml = message.xml.replace("alice@example.com", "bob@example.com")
    if message.binding == REDIRECT:
        return Inbound(REDIRECT, {**message.params, "SAMLRequest": deflate(xml)})
    return post_message("SAMLRequest", xml, message.params.get("RelayState"))


REQUEST_FORGERIES: dict[str, tuple[str | None, Callable[[Inbound, SloWorld], Inbound]]] = {
    "re-signed by the IdP unchanged (control)": (None, lambda m, w: resigned(m, w)),
    "signed by another key": ("signature", _forged_by_other_key),
    "unsigned": ("unsigned", _unsigned),
    "another NameID, signature kept": ("signature", _tampered),
    "another Destination, signed by the IdP": (
        "destination",
        lambda m, w: resigned(m, w, _set("Destination", f"{SP}/other-slo")),
    ),
    "another Issuer, signed by the IdP": (
        "issuer",
        lambda m, w: resigned(m, w, _replace(w.idp.entity_id, "https://evil.example/idp")),
    ),
    "past its NotOnOrAfter, signed by the IdP": (
        "not_on_or_after",
        lambda m, w: resigned(m, w, _set("NotOnOrAfter", "2021-01-01T00:00:00Z")),
    ),
    "issued long ago, signed by the IdP": (
        "issue_instant",
        lambda m, w: resigned(m, w, _set("IssueInstant", "2021-01-01T00:00:00Z")),
    ),
    "a comment in the NameID, signed by the IdP": (
        "comment",
        lambda m, w: resigned(
            m, w, _replace("alice@example.com<", "alice@example.com<!---->.evil<")
        ),
    ),
    "a DTD, signed by the IdP": (
        "xml",
        lambda m, w: resigned(m, w, lambda xml: f"<!DOCTYPE x [<!ENTITY e 'v'>]>{xml}"),
    ),
    "no NameID, signed by the IdP": (
        "schema",
        lambda m, w: resigned(
            m, w, lambda xml: re.sub(r"<saml:NameID\b.*?</saml:NameID>", "", xml)
        ),
    ),
}


@pytest.mark.parametrize("case", list(REQUEST_FORGERIES))
@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_logout_request_checks(
    world: SloWorld, http: httpx.Client, case: str, binding: str
) -> None:
    genuine = _genuine_request(world, http, binding)
    kind, forge_it = REQUEST_FORGERIES[case]
    forged = forge_it(genuine, world)
    if kind is None:
        info = accept_request(world.provider, forged)
        assert info == accept_request(world.provider, genuine)
    else:
        refused(kind, lambda: accept_request(world.provider, forged))


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_logout_request_for_another_slo_endpoint_is_refused(
    world: SloWorld, http: httpx.Client, binding: str
) -> None:
    """The IdP's genuine request, Destination our registered SLO, at an SP on another URL."""
    genuine = _genuine_request(world, http, binding)
    elsewhere = world.make_provider(slo_url=f"{SP}/slo-elsewhere")
    refused("destination", lambda: accept_request(elsewhere, genuine))


def test_redirect_query_parameters_must_match_the_raw_query(
    world: SloWorld, http: httpx.Client
) -> None:
    genuine = _genuine_request(world, http, "redirect")
    assert genuine.query_string is not None
    swapped = Inbound(REDIRECT, {**genuine.params, "RelayState": "y"}, genuine.query_string)
    refused("query", lambda: accept_request(world.provider, swapped))
    twice = Inbound(REDIRECT, genuine.params, f"{genuine.query_string}&RelayState=y")
    refused("query", lambda: accept_request(world.provider, twice))


def test_oversized_and_garbled_messages_are_refused(world: SloWorld) -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    inflating = base64.b64encode(bomb.compress(b" " * 5_000_000) + bomb.flush()).decode()
    cases = {
        "size": Inbound(REDIRECT, {"SAMLRequest": inflating}),
        "encoding": Inbound(REDIRECT, {"SAMLRequest": base64.b64encode(b"not deflate").decode()}),
    }
    cases["xml"] = post_message("SAMLRequest", "<samlp:LogoutRequest", None)
    cases["root"] = post_message("SAMLRequest", f'<samlp:Response xmlns:samlp="{SAMLP}"/>', None)
    for kind, message in cases.items():
        refused(kind, functools.partial(accept_request, world.provider, message))
    empty = Inbound(POST, {})
    refused("size", lambda: accept_request(world.provider, empty))


def test_pysaml2_says_nothing_in_the_logs(
    world: SloWorld, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused message is one InvalidResponse with a detail, not pysaml2's ERROR lines
    (which quote the document)."""
    caplog.set_level(logging.DEBUG)
    forged = _forged_by_other_key(_genuine_request(world, http, "post"), world)
    refused("signature", lambda: accept_request(world.provider, forged))
    assert [record for record in caplog.records if record.name.startswith("saml2")] == []
