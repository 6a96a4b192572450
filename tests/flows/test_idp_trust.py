"""One identity provider per connection, over real HTTP (broker, samlify IdP, sandbox store).

What the security review (issue #10) asked of the broker's trust in its IdPs, each case as a
shopper and an operator would check it:

- SAML issuer confusion: another entity of the connection's metadata (a second IdP of a
  federation aggregate, an SP entity with a signing certificate, the IdP's own SP role) cannot
  sign an assertion that an unsigned Response "from" the IdP wraps;
- signature algorithms from an allow-list (MD5 and SHA-224 refused, SHA-1 only with
  ``allow_sha1``, and the operator told so);
- an unsigned SAML error's StatusMessage stays out of the log;
- a transient NameID is never the link subject;
- the SP metadata says ``AuthnRequestsSigned="true"`` whenever the broker signs;
- a configuration that does not match the IdP is a "misconfigured" page (502), with what
  differs in the log line, not "your identity provider is not answering";
- two connections of a store never share an IdP: at start-up, in ``broker check`` and when a
  SAML metadata refresh starts naming a sibling's IdP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from flask import Flask

from broker.cli import main as broker_main
from broker.errors import ConfigError
from tests.conftest import World
from tests.saml_fixtures import SamlWorld
from tests.support import saml_forge as forge
from tests.support.broker_log import LogLines
from tests.support.flows import Outcome, page_field, sign_in, start_login, visit_storefront
from tests.support.saml_idp import SamlIdp
from tests.support.servers import serve_in_thread

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
MISCONFIGURED = "misconfigured"


def _cert_body(cert_pem: str) -> str:
    return "".join(line for line in cert_pem.strip().splitlines() if not line.startswith("-----"))


def _key_descriptor(cert_pem: str) -> str:
    return (
        f'<KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{DS}"><ds:X509Data>'
        f"<ds:X509Certificate>{_cert_body(cert_pem)}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></KeyDescriptor>"
    )


def _idp_role(cert_pem: str) -> str:
    return (
        '<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{_key_descriptor(cert_pem)}"
        '<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://other-idp.example/sso"/></IDPSSODescriptor>'
    )


def _sp_role(cert_pem: str) -> str:
    return (
        '<SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{_key_descriptor(cert_pem)}"
        '<AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        'Location="https://some-sp.example/acs" index="0"/></SPSSODescriptor>'
    )


def _entity(entity_id: str, role: str) -> str:
    return f'<EntityDescriptor xmlns="{MD}" entityID="{entity_id}">{role}</EntityDescriptor>'


def _aggregate(*entities: str) -> str:
    return f'<EntitiesDescriptor xmlns="{MD}">{"".join(entities)}</EntitiesDescriptor>'


def idp_metadata(idp: SamlIdp) -> str:
    return httpx.get(idp.metadata_url, timeout=10).text


OTHER_IDP = "https://other-idp.example/metadata"
SOME_SP = "https://some-sp.example/metadata"


def _with_second_idp(idp: SamlIdp, cert_pem: str) -> tuple[str, str]:
    return _aggregate(idp_metadata(idp), _entity(OTHER_IDP, _idp_role(cert_pem))), OTHER_IDP


def _with_sp_entity(idp: SamlIdp, cert_pem: str) -> tuple[str, str]:
    return _aggregate(idp_metadata(idp), _entity(SOME_SP, _sp_role(cert_pem))), SOME_SP


def _with_idp_sp_role(idp: SamlIdp, cert_pem: str) -> tuple[str, str]:
    # The IdP's own entity, with an SP role whose signing key is someone else's.
    xml = idp_metadata(idp).replace(
        "</EntityDescriptor>", _sp_role(cert_pem) + "</EntityDescriptor>"
    )
    return xml, idp.entity_id


METADATA_WITH_ANOTHER_SIGNER: dict[str, Callable[[SamlIdp, str], tuple[str, str]]] = {
    "a second IdP (federation aggregate)": _with_second_idp,
    "an SP entity with a signing certificate": _with_sp_entity,
    "the IdP entity's own SP role": _with_idp_sp_role,
}


def refused_page(outcome: Outcome, status: int) -> None:
    assert outcome.status == status, outcome.response.text[:2000]
    assert outcome.response.headers["content-type"].startswith("text/html")
    assert outcome.error_ref, "a clear page with a reference id"
    assert "Traceback" not in outcome.response.text


def nobody_signed_in(world: SamlWorld) -> None:
    assert world.customers() == [], "nothing created"
    assert not [login for login in world.logins() if login["ok"]], "nobody signed in"


def page_title(outcome: Outcome) -> str:
    text = outcome.response.text
    start = text.index('id="error-title">') + len('id="error-title">')
    return text[start : text.index("<", start)]


# -- 1. issuer confusion --------------------------------------------------------------------


@pytest.mark.parametrize("case", list(METADATA_WITH_ANOTHER_SIGNER))
def test_another_entity_of_the_metadata_cannot_sign_for_the_idp(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client, case: str
) -> None:
    other = forge.attacker_keypair("another entity")
    issuers: list[str] = []

    def connection(idp: SamlIdp) -> dict[str, Any]:
        xml, issuer = METADATA_WITH_ANOTHER_SIGNER[case](idp, other.cert_pem)
        issuers.append(issuer)
        return {"idp_metadata_url": None, "idp_metadata_xml": xml, "idp_entity_id": idp.entity_id}

    world = make_saml_world(connection=connection)
    form = world.sso(browser_http)
    # The other entity signs an assertion as itself, for whomever it likes, and wraps it in an
    # unsigned Response whose Issuer is the connection's IdP.
    form["SAMLResponse"] = forge.asserted_by(
        form["SAMLResponse"], other.key_pem, other.cert_pem, issuer=issuers[0]
    )
    outcome = world.post(browser_http, form)
    refused_page(outcome, 400)
    nobody_signed_in(world)


def test_the_idp_of_an_aggregate_signs_in_as_before(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    other = forge.attacker_keypair("another entity")
    world = make_saml_world(
        connection=lambda idp: {
            "idp_metadata_url": None,
            "idp_metadata_xml": _with_second_idp(idp, other.cert_pem)[0],
            "idp_entity_id": idp.entity_id,
        }
    )
    outcome = world.post(browser_http, world.sso(browser_http))
    assert outcome.status == 302, outcome.response.text[:2000]
    visit_storefront(browser_http, outcome.location)
    assert [login["ok"] for login in world.logins()] == [True]


# -- 2. algorithms ----------------------------------------------------------------------------


def test_sha1_is_refused_naming_the_setting(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    strict = make_saml_world()
    assert strict.idp.key_pem is not None
    form = strict.sso(browser_http)
    form["SAMLResponse"] = forge.sha1_signed(
        form["SAMLResponse"], strict.idp.key_pem, strict.idp.cert_pem
    )
    outcome = strict.post(browser_http, form)
    refused_page(outcome, 400)
    assert "allow_sha1 = true" in broker_log.for_ref(outcome.error_ref)["detail"]


def test_sha1_is_accepted_with_allow_sha1(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(connection={"allow_sha1": True})
    assert world.idp.key_pem is not None
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.sha1_signed(
        form["SAMLResponse"], world.idp.key_pem, world.idp.cert_pem
    )
    assert world.post(browser_http, form).status == 302


@pytest.mark.parametrize(
    "cipher", ["aes128-gcm", "aes256-gcm", "aes128-cbc", "aes256-cbc", "tripledes-cbc"]
)
def test_encrypted_assertions_in_each_cipher_idps_use(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client, cipher: str
) -> None:
    """ADFS, Shibboleth and Entra ID each default to another cipher: each one decrypts."""
    world = make_saml_world(idp={"encrypt_assertion": True, "data_encryption": cipher})
    outcome = world.post(browser_http, world.sso(browser_http))
    assert outcome.status == 302, outcome.response.text[:2000]
    [customer] = world.customers()
    assert customer["email"] == "alice@example.com"


def test_rsa_pkcs1_key_transport_is_refused_naming_the_fix(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    """RSA PKCS#1 v1.5 key transport has a padding oracle (Bleichenbacher): never decrypted."""
    world = make_saml_world(idp={"encrypt_assertion": True, "key_encryption": "rsa-1_5"})
    outcome = world.post(browser_http, world.sso(browser_http))
    refused_page(outcome, 400)
    assert "RSA-OAEP" in broker_log.for_ref(outcome.error_ref)["detail"]
    assert world.customers() == []


@pytest.mark.parametrize(("offset", "direction"), [(900, "ahead"), (-900, "behind")])
def test_an_idp_clock_off_beyond_the_skew_gets_a_page_naming_the_difference(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
    offset: int,
    direction: str,
) -> None:
    """The IdP stamps its Response and assertion by a clock 15 minutes off (its assertions
    live 5 minutes): the page says the clocks disagree and by how much, not "invalid"."""
    world = make_saml_world(
        idp={"time_offset_seconds": offset}, connection={"clock_skew_seconds": 120}
    )
    outcome = world.post(browser_http, world.sso(browser_http))
    refused_page(outcome, 400)
    text = outcome.response.text
    assert f"seconds {direction}" in (page_field(text, "error-message") or "")
    assert abs(int(page_field(text, "clock-difference") or 0) - abs(offset)) <= 5
    assert page_field(text, "clock-allowed") == "120"
    line = broker_log.for_ref(outcome.error_ref)
    assert line["code"] == "clock_skew"
    assert abs(line["clock_offset_seconds"] - offset) <= 5
    assert world.customers() == []


def test_an_idp_clock_off_within_the_skew_signs_in(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(idp={"time_offset_seconds": 45}, connection={"clock_skew_seconds": 60})
    assert world.post(browser_http, world.sso(browser_http)).status == 302
    assert len(world.customers()) == 1


# -- 4. the IdP's error text stays out of the log ---------------------------------------------


def test_an_unsigned_error_response_keeps_its_status_message_out_of_the_log(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    # SimpleSAMLphp and others send error responses unsigned; samlify's names the login.
    world = make_saml_world(idp={"sign_assertion": False, "sign_response": False})
    form = world.sso(browser_http, "mallory@private.example")
    assert "mallory@private.example" in forge.decode(form["SAMLResponse"])
    outcome = world.post(browser_http, form)
    refused_page(outcome, 401)
    assert "did not sign you in" in page_title(outcome)
    nobody_signed_in(world)
    assert not [line for line in broker_log.raw if "mallory" in line or "private" in line]
    assert broker_log.for_ref(outcome.error_ref)["detail"] == (
        "saml status: urn:oasis:names:tc:SAML:2.0:status:Responder"
        " / urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
    )


def test_an_error_status_message_naming_the_person_stays_out_of_the_log(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = make_saml_world()
    assert world.idp.key_pem is not None
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.with_changed(
        form["SAMLResponse"],
        world.idp.key_pem,
        world.idp.cert_pem,
        status="urn:oasis:names:tc:SAML:2.0:status:Requester",
        status_message="No access for mallory@private.example",
    )
    outcome = world.post(browser_http, form)
    assert not [line for line in broker_log.raw if "mallory" in line or "private" in line]
    refused_page(outcome, 401)
    nobody_signed_in(world)
    assert broker_log.for_ref(outcome.error_ref)["detail"] == (
        "saml status: urn:oasis:names:tc:SAML:2.0:status:Requester"
    )


def test_a_status_code_saml_does_not_define_is_logged_as_other(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = make_saml_world()
    assert world.idp.key_pem is not None
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.with_changed(
        form["SAMLResponse"], world.idp.key_pem, world.idp.cert_pem, status="urn:x:bob@example.com"
    )
    outcome = world.post(browser_http, form)
    assert not [line for line in broker_log.raw if "bob@example.com" in line]
    refused_page(outcome, 401)
    assert broker_log.for_ref(outcome.error_ref)["detail"] == "saml status: other"


# -- 5. NameID formats ---------------------------------------------------------------------


@pytest.mark.parametrize("name_id_format", ["persistent", "unspecified", "emailAddress"])
def test_a_stable_name_id_is_the_link_subject_and_the_email_comes_from_attributes(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client, name_id_format: str
) -> None:
    """ADFS and Shibboleth send persistent (opaque) or unspecified NameIDs: the e-mail is read
    from the attributes, and the returning shopper is found by the NameID alone."""
    world = make_saml_world(idp={"name_id_format": name_id_format})
    first = world.sso(browser_http)
    assert f"nameid-format:{name_id_format}" in forge.decode(first["SAMLResponse"])
    assert world.post(browser_http, first).status == 302
    [customer] = world.customers()
    assert customer["email"] == "alice@example.com"
    world.sandbox.state.clear_requests(world.store.store_hash)
    assert world.post(browser_http, world.sso(browser_http)).status == 302
    assert world.sandbox.state.requests(world.store.store_hash) == [], "found by its link"
    assert len(world.customers()) == 1


def test_a_transient_name_id_links_on_the_trusted_email(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(idp={"name_id_format": "transient"})
    first = world.sso(browser_http)
    second = world.sso(browser_http)
    assert forge.decode(first["SAMLResponse"]).count("nameid-format:transient") >= 1
    assert world.post(browser_http, first).status == 302
    world.sandbox.state.clear_requests(world.store.store_hash)
    # A new NameID, the same person: the link holds (no lookup, no new customer).
    assert world.post(browser_http, second).status == 302
    assert world.sandbox.state.requests(world.store.store_hash) == []
    assert len(world.customers()) == 1


def test_a_transient_name_id_without_a_trusted_email_is_refused(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    # An e-mail the connection does not trust as the link subject would let whoever asserts
    # that address at the IdP follow its link into the account.
    world = make_saml_world(
        idp={"name_id_format": "transient"},
        connection={"trust_email": False, "require_verified_email": False},
    )
    outcome = world.post(browser_http, world.sso(browser_http))
    refused_page(outcome, 502)
    assert MISCONFIGURED in page_title(outcome)
    assert "persistent or e-mail address NameID" in outcome.error_message
    assert "persistent or emailAddress NameID" in broker_log.for_ref(outcome.error_ref)["detail"]
    nobody_signed_in(world)


# -- 7. the SP metadata says what the broker does ----------------------------------------------


@pytest.mark.parametrize(
    ("idp", "connection", "signed"),
    [
        ({"want_authn_requests_signed": True}, {}, True),
        ({}, {"sign_authn_requests": True}, True),
        ({}, {}, False),
    ],
    ids=["the IdP wants it", "the connection says so", "neither"],
)
def test_sp_metadata_says_whether_authn_requests_are_signed(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    idp: dict[str, Any],
    connection: dict[str, Any],
    signed: bool,
) -> None:
    world = make_saml_world(idp=idp, connection=connection)
    xml = httpx.get(f"{world.broker.url}/acme/saml/corp/metadata", timeout=10).text
    assert f'AuthnRequestsSigned="{str(signed).lower()}"' in xml
    to_idp = start_login(browser_http, world.broker.url, "/acme/login/corp")
    assert ("Signature=" in to_idp) is signed


# -- 8. a configuration that does not match the IdP -------------------------------------------


def test_an_idp_entity_id_not_in_the_metadata_is_misconfigured(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = make_saml_world(connection={"idp_entity_id": "https://not-there.example/idp"})
    outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/corp"))
    refused_page(outcome, 502)
    assert MISCONFIGURED in page_title(outcome)
    assert "tell the store" in outcome.error_message
    line = broker_log.for_ref(outcome.error_ref)
    assert line["code"] == "upstream_misconfigured"
    assert "https://not-there.example/idp" in line["detail"]
    assert world.idp.entity_id in line["detail"]


def test_metadata_without_an_idp_is_misconfigured(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    other = forge.attacker_keypair("an SP")
    world = make_saml_world(
        connection={
            "idp_metadata_url": None,
            "idp_metadata_xml": _entity(SOME_SP, _sp_role(other.cert_pem)),
        }
    )
    outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/corp"))
    refused_page(outcome, 502)
    assert MISCONFIGURED in page_title(outcome)
    assert "IDPSSODescriptor" in broker_log.for_ref(outcome.error_ref)["detail"]


def test_an_idp_signing_another_issuer_is_misconfigured(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    # The IdP's own key signs, but names itself differently from its metadata (a renamed
    # entity, the wrong idp_entity_id): the operator must fix it; the shopper cannot.
    world = make_saml_world(idp={"sign_assertion": True, "sign_response": True})
    assert world.idp.key_pem is not None
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.with_changed(
        form["SAMLResponse"],
        world.idp.key_pem,
        world.idp.cert_pem,
        issuer="https://renamed-idp.example/metadata",
    )
    outcome = world.post(browser_http, form)
    refused_page(outcome, 502)
    assert MISCONFIGURED in page_title(outcome)
    detail = broker_log.for_ref(outcome.error_ref)["detail"]
    assert "https://renamed-idp.example/metadata" in detail
    assert world.idp.entity_id in detail
    nobody_signed_in(world)


def test_oidc_discovery_naming_another_issuer_is_misconfigured(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    world.idp.state.issuer = "https://elsewhere.example"
    outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/corp"))
    refused_page(outcome, 502)
    assert MISCONFIGURED in page_title(outcome)
    line = broker_log.for_ref(outcome.error_ref)
    assert line["code"] == "upstream_misconfigured"
    assert "https://elsewhere.example" in line["detail"]
    assert world.idp.url in line["detail"]


# -- 9. two connections of a store never share an IdP ------------------------------------------


def test_broker_check_names_two_connections_declaring_one_idp(
    make_saml_world: Callable[..., SamlWorld], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_saml_world(
        more_connections=lambda idp: {
            "twin": {"display_name": "Twin", "idp_metadata_url": idp.metadata_url}
        }
    )
    assert broker_main(["check", "--config", str(world.broker.config_path)]) == 1
    errors = capsys.readouterr().err
    [line] = [line for line in errors.splitlines() if "same identity provider" in line]
    assert "stores.acme.connections.corp" in line
    assert "stores.acme.connections.twin" in line
    assert world.idp.entity_id in line


@pytest.mark.parametrize("twin", ["saml", "oidc"])
def test_two_connections_declaring_one_idp_refuse_to_start(
    make_saml_world: Callable[..., SamlWorld], twin: str
) -> None:
    def inline(idp: SamlIdp) -> dict[str, Any]:
        return {"idp_metadata_url": None, "idp_metadata_xml": idp_metadata(idp)}

    def sibling(idp: SamlIdp) -> dict[str, Any]:
        if twin == "saml":
            return inline(idp)
        # An OIDC connection whose issuer is the SAML IdP's entity id.
        return {"type": "oidc", "issuer": idp.entity_id, "client_id": "c", "client_secret": "s"}

    with pytest.raises(ConfigError) as caught:
        make_saml_world(connection=inline, more_connections=lambda idp: {"twin": sibling(idp)})
    [problem] = caught.value.problems
    assert "stores.acme.connections.corp" in problem
    assert "stores.acme.connections.twin" in problem


class _SwitchableMetadata:
    """A metadata URL whose document the test changes (an IdP publishing new metadata)."""

    def __init__(self) -> None:
        self.xml = ""
        self.app = Flask(__name__)
        self.app.add_url_rule("/metadata", "metadata", lambda: (self.xml, 200))


def test_a_refreshed_metadata_that_declares_a_siblings_idp_is_refused(
    make_saml_world: Callable[..., SamlWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    later = [0.0]
    switchable = _SwitchableMetadata()
    with serve_in_thread(switchable.app) as server:

        def twin(idp: SamlIdp) -> dict[str, dict[str, Any]]:
            # At first the twin's IdP is an entity of its own.
            own = idp_metadata(idp).replace(idp.entity_id + '"', 'https://twin-idp.example/md"')
            switchable.xml = own.replace(f"{idp.base_url}/", "https://twin-idp.example/")
            return {"twin": {"display_name": "Twin", "idp_metadata_url": f"{server.url}/metadata"}}

        world = make_saml_world(
            more_connections=twin, app_options={"clock": lambda: time.time() + later[0]}
        )
        assert "twin-idp.example" in start_login(browser_http, world.broker.url, "/acme/login/twin")
        assert start_login(browser_http, world.broker.url, "/acme/login/corp").startswith(
            world.idp.sso_url
        )

        # The twin's metadata now declares corp's IdP; a day later the broker refreshes it.
        switchable.xml = idp_metadata(world.idp)
        later[0] = 25 * 3600
        outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/twin"))
        refused_page(outcome, 502)
        assert MISCONFIGURED in page_title(outcome)
        detail = broker_log.for_ref(outcome.error_ref)["detail"]
        assert "stores.acme.connections.corp" in detail
        assert "stores.acme.connections.twin" in detail
        # Still refused at the next sign-in; corp, which held the IdP first, goes on working.
        again = Outcome(browser_http.get(f"{world.broker.url}/acme/login/twin"))
        refused_page(again, 502)
        assert start_login(browser_http, world.broker.url, "/acme/login/corp").startswith(
            world.idp.sso_url
        )


# -- something the IdP signed, whatever require_signed_assertion says -------------------------


@pytest.mark.parametrize("signed", ["response", "assertion"])
def test_nothing_signed_is_refused_when_a_signed_response_alone_would_do(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client, signed: str
) -> None:
    world = make_saml_world(
        idp={"sign_assertion": signed == "assertion", "sign_response": signed == "response"},
        connection={"require_signed_assertion": False},
    )
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.unsigned(form["SAMLResponse"])
    refused_page(world.post(browser_http, form), 400)
    nobody_signed_in(world)


# -- 6. logout ends at the storefront whatever the IdP ----------------------------------------


def test_logout_ends_at_the_storefront_when_the_idp_cannot_be_used(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    later = [0.0]
    world = make_world(
        connection={"idp_logout": True},
        app_options={"clock": lambda: time.time() + later[0]},
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    visit_storefront(browser_http, outcome.location)
    # Two hours on, the IdP's discovery document names another issuer: no RP-initiated logout.
    world.idp.state.issuer = "https://elsewhere.example"
    later[0] = 2 * 3600
    out = browser_http.get(f"{world.broker.url}/acme/logout")
    assert out.status_code == 303, out.text[:1000]
    assert out.headers["location"] == f"{world.storefront}/login.php?action=logout"
    [skipped] = [line for line in broker_log.lines if line["event"] == "logout.idp_skipped"]
    assert skipped["code"] == "upstream_misconfigured"
