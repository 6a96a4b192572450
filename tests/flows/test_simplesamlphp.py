"""The broker against a real third-party SAML IdP, SimpleSAMLphp (Debian's package under
``php -S``; tests/support/simplesamlphp.py), over real HTTP with the sandbox store: SP- and
IdP-initiated sign-in, encrypted assertions, Shibboleth-style attributes, single logout both
ways, and what the broker must refuse from a misconfigured IdP.

One SimpleSAMLphp serves the session (of each xdist worker); each test starts its own broker,
registers it at the IdP from the broker's own SP metadata (as an IdP admin would, with the
IdP-side options the test is about), and unregisters it at the end.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from broker.sandbox.store import SandboxStore
from tests.conftest import BrokerServer, Sandbox
from tests.support import settings as docs
from tests.support.broker_log import LogLines
from tests.support.flows import Outcome, page_field, visit_storefront
from tests.support.simplesamlphp import (
    REDIRECT_BINDING,
    SimpleSAMLphp,
    complete_sso,
    follow,
    idp_initiated,
    initiate_logout,
    make_key_pair,
    post_form,
    same_endpoint,
    start_simplesamlphp,
)
from tests.support.world import SpKeys

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


@pytest.fixture(scope="session")
def simplesamlphp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleSAMLphp]:
    """One SimpleSAMLphp per session (per xdist worker); fails (never skips) without php or
    SimpleSAMLphp, naming scripts/setup."""
    with start_simplesamlphp(tmp_path_factory.mktemp("simplesamlphp") / "idp") as idp:
        yield idp


@dataclass
class SspWorld:
    """The sandbox store "abc123" (key "acme" at the broker), the broker with the SAML
    connection "corp" to SimpleSAMLphp, and the broker registered at SimpleSAMLphp."""

    sandbox: Sandbox
    idp: SimpleSAMLphp
    broker: BrokerServer
    store: SandboxStore
    registration: Path

    @property
    def sp_url(self) -> str:
        return f"{self.broker.url}/acme/saml/corp"

    @property
    def entity_id(self) -> str:
        return f"{self.sp_url}/metadata"

    @property
    def acs(self) -> str:
        return f"{self.sp_url}/acs"

    @property
    def slo(self) -> str:
        return f"{self.sp_url}/slo"

    @property
    def storefront(self) -> str:
        return self.sandbox.storefront(self.store.store_hash)

    def customers(self) -> list[dict[str, Any]]:
        customers: list[dict[str, Any]] = self.sandbox.state.customers(self.store.store_hash)
        return customers

    def logins(self) -> list[dict[str, Any]]:
        logins: list[dict[str, Any]] = self.sandbox.state.logins(self.store.store_hash)
        return logins

    def sso(self, http: httpx.Client, login: str = "alice", path: str = "") -> dict[str, str]:
        """Start at the broker, sign in at SimpleSAMLphp; the form it would POST to the ACS."""
        start = http.get(f"{self.broker.url}/acme/login/corp{path}")
        assert start.status_code == 302, start.text
        assert same_endpoint(start.headers["location"], self.idp.sso_url), start.headers
        acs, form = complete_sso(http, self.idp, start.headers["location"], login)
        assert acs == self.acs
        return form

    def post(self, http: httpx.Client, form: dict[str, str]) -> Outcome:
        """POST to the ACS, then follow the broker's own continuation, as a browser would."""
        answer = http.post(self.acs, data=form)
        if answer.status_code == 303 and "/acs/continue" in answer.headers["location"]:
            answer = http.get(self.broker.url + answer.headers["location"])
        return Outcome(answer)

    def sign_in(self, http: httpx.Client, login: str = "alice", path: str = "") -> None:
        """The whole SP-initiated sign-in, up to the storefront signed in."""
        outcome = self.post(http, self.sso(http, login, path))
        assert outcome.status == 302, f"{outcome.response.text[:2000]}\n{self.idp.log()}"
        visit_storefront(http, outcome.location)

    def active_sessions(self) -> list[Any]:
        from sqlalchemy import select

        from broker.storage import sessions

        storage = self.broker.app.extensions["broker"].storage
        with storage.engine.connect() as conn:
            return [row for row in conn.execute(select(sessions)) if row.ended_at is None]


@pytest.fixture
def make_ssp_world(
    sandbox: Sandbox,
    make_broker: Callable[..., BrokerServer],
    saml_sp_keys: SpKeys,
    simplesamlphp: SimpleSAMLphp,
) -> Iterator[Callable[..., SspWorld]]:
    """``make_ssp_world(connection={...}, sp={...})``: the broker's connection settings, and the
    IdP-side options of the broker's saml20-sp-remote entry at SimpleSAMLphp."""
    registrations: list[Path] = []

    def make(
        *, connection: dict[str, Any] | None = None, sp: dict[str, Any] | None = None
    ) -> SspWorld:
        bc_store = sandbox.add_store("abc123", name="Acme Supplies")

        def document(base_url: str) -> dict[str, Any]:
            conn = docs.saml_connection(
                **{
                    "display_name": "Acme SimpleSAMLphp",
                    "idp_metadata_url": simplesamlphp.metadata_url,
                    "sp_key_file": str(saml_sp_keys.key_file),
                    "sp_cert_file": str(saml_sp_keys.cert_file),
                    "link": "auto",
                    "trust_email": True,
                    **(connection or {}),
                }
            )
            store = docs.store_table(sandbox.url, bc_store, connections={"corp": conn})
            return docs.document(base_url, {"acme": store})

        broker = make_broker(document)
        metadata = httpx.get(f"{broker.url}/acme/saml/corp/metadata", timeout=10)
        assert metadata.status_code == 200, metadata.text
        registration = simplesamlphp.register_sp(metadata.text, sp)
        registrations.append(registration)
        return SspWorld(sandbox, simplesamlphp, broker, bc_store, registration)

    try:
        yield make
    finally:
        for registration in registrations:
            simplesamlphp.unregister(registration)


def decoded(form: dict[str, str]) -> str:
    return base64.b64decode(form["SAMLResponse"]).decode()


def redirect_message(url: str, kind: str) -> str:
    """The XML of the ``kind`` (SAMLRequest, SAMLResponse) parameter of an HTTP-Redirect URL."""
    [value] = parse_qs(urlsplit(url).query)[kind]
    return zlib.decompress(base64.b64decode(value), -15).decode()


def root_tag(xml: str) -> str:
    """The local name of the document's root element (LogoutRequest, Response, ...)."""
    return str(fromstring(xml).tag).rpartition("}")[2]


# -- sign-in ------------------------------------------------------------------------------------


def test_sp_initiated_sign_in(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client
) -> None:
    world = make_ssp_world(
        connection={"groups_attribute": "isMemberOf", "customer_groups_by_group": {"buyers": 3}}
    )
    form = world.sso(browser_http, "alice", "?redirect_to=/cart.php")
    xml = decoded(form)
    # What SimpleSAMLphp sends by default: a signed Response holding a signed assertion.
    assert "<saml:EncryptedAssertion" not in xml
    assert re.search(r"<saml:Assertion\b.*<ds:Signature\b.*</saml:Assertion>", xml, re.DOTALL)
    outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text[:2000]
    visit_storefront(browser_http, outcome.location)
    [login] = world.logins()
    assert (login["ok"], login["claims"]["redirect_to"]) == (True, "/cart.php")
    page = browser_http.get(f"{world.storefront}/account.php")
    assert page_field(page.text, "customer-email") == "alice@example.com"
    [customer] = world.customers()
    assert (customer["email"], customer["first_name"], customer["last_name"]) == (
        "alice@example.com",
        "Alice",
        "Liddell",
    )
    assert customer["customer_group_id"] == 3


def test_encrypted_assertion(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client
) -> None:
    # SimpleSAMLphp 1.19 encrypts for the SP's use="encryption" certificate with
    # rsa-oaep-mgf1p and aes128-cbc (neither can be changed there).
    world = make_ssp_world(sp={"assertion.encryption": True})
    form = world.sso(browser_http, "bob")
    xml = decoded(form)
    assert "<saml:EncryptedAssertion" in xml
    assert "bob@example.com" not in xml
    assert "http://www.w3.org/2001/04/xmlenc#aes128-cbc" in xml
    assert "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" in xml
    outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text[:2000]
    visit_storefront(browser_http, outcome.location)
    page = browser_http.get(f"{world.storefront}/account.php")
    assert page_field(page.text, "customer-email") == "bob@example.com"
    [customer] = world.customers()
    assert (customer["first_name"], customer["last_name"]) == ("Bob", "Builder")


def test_shibboleth_style_release_oid_names_and_a_persistent_name_id(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client
) -> None:
    # What a Shibboleth IdP sends: urn:oid: attribute names (NameFormat uri) and a persistent,
    # opaque NameID; the broker reads mail, givenName, sn and isMemberOf by their OIDs.
    world = make_ssp_world(
        connection={
            "name_id_format": "persistent",
            "customer_groups_by_group": {"buyers": 5},
        },
        sp={
            "NameIDFormat": PERSISTENT,
            "attributes.NameFormat": URI_FORMAT,
            "authproc": {
                10: {"class": "saml:PersistentNameID", "attribute": "uid"},
                90: {"class": "core:AttributeMap", "0": "name2oid"},
            },
        },
    )
    form = world.sso(browser_http, "alice")
    xml = decoded(form)
    assert f'Format="{PERSISTENT}"' in xml
    assert 'Name="urn:oid:0.9.2342.19200300.100.1.3"' in xml
    assert 'Name="mail"' not in xml
    outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text[:2000]
    [customer] = world.customers()
    assert (customer["email"], customer["first_name"], customer["last_name"]) == (
        "alice@example.com",
        "Alice",
        "Liddell",
    )
    assert customer["customer_group_id"] == 5
    # The persistent NameID is the link: a second sign-in finds the customer without a lookup.
    world.sandbox.state.clear_requests(world.store.store_hash)
    assert world.post(browser_http, world.sso(browser_http, "alice")).status == 302
    assert world.sandbox.state.requests(world.store.store_hash) == []


def test_idp_initiated_sign_in_when_allowed(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client
) -> None:
    world = make_ssp_world(connection={"allow_idp_initiated": True})
    acs, form = idp_initiated(
        browser_http, world.idp, world.entity_id, "bob", relay_state="/cart.php"
    )
    assert acs == world.acs
    assert "InResponseTo" not in decoded(form)
    outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text[:2000]
    visit_storefront(browser_http, outcome.location)
    [login] = world.logins()
    assert (login["ok"], login["claims"]["redirect_to"]) == (True, "/cart.php")
    page = browser_http.get(f"{world.storefront}/account.php")
    assert page_field(page.text, "customer-email") == "bob@example.com"


def test_idp_initiated_sign_in_refused_when_not_allowed(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client
) -> None:
    world = make_ssp_world()
    _, form = idp_initiated(browser_http, world.idp, world.entity_id, "bob")
    outcome = world.post(browser_http, form)
    assert outcome.status == 400
    assert "portal is not enabled" in outcome.error_message
    assert world.customers() == []


# -- what a misconfigured IdP sends -------------------------------------------------------------


def test_a_signature_by_a_key_not_in_the_idp_metadata_is_refused(
    make_ssp_world: Callable[..., SspWorld],
    simplesamlphp: SimpleSAMLphp,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    # The IdP signs for this SP with another key (a rollover done at the IdP, not published in
    # the metadata the broker reads); the message carries that key's certificate, which the
    # broker must not trust.
    key_pem, cert_pem = make_key_pair("not-in-the-metadata")
    key_path, cert_path = simplesamlphp.write_key("unpublished", key_pem, cert_pem)
    world = make_ssp_world(
        sp={"signature.privatekey": key_path, "signature.certificate": cert_path}
    )
    form = world.sso(browser_http, "alice")
    unpublished = "".join(cert_pem.strip().splitlines()[1:-1])
    assert unpublished[:60] in decoded(form).replace("\n", "")
    outcome = world.post(browser_http, form)
    assert outcome.status == 400, outcome.response.text[:2000]
    assert outcome.error_ref
    assert [e["ref"] for e in broker_log.events("request.refused")] == [outcome.error_ref]
    assert world.customers() == []
    assert world.logins() == []

    # Control: the same IdP session, signed with the published key, signs in.
    simplesamlphp.register_sp(httpx.get(world.entity_id, timeout=10).text)
    assert world.post(browser_http, world.sso(browser_http, "alice")).status == 302
    assert len(world.customers()) == 1


def test_an_assertion_for_another_audience_is_refused(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    # The IdP admin registered the broker under a wrong entity ID (the ACS is right): the
    # assertion's AudienceRestriction names that entity, not the broker.
    world = make_ssp_world(connection={"allow_idp_initiated": True})
    wrong = "https://shop.example/acme/saml/corp/metadata"
    metadata = httpx.get(world.entity_id, timeout=10).text
    with world.idp.registered(metadata, entity_id=wrong):
        acs, form = idp_initiated(browser_http, world.idp, wrong, "alice")
    assert acs == world.acs
    xml = decoded(form)
    assert f"<saml:Audience>{wrong}</saml:Audience>" in xml
    assert world.entity_id not in xml
    outcome = world.post(browser_http, form)
    assert outcome.status == 400, outcome.response.text[:2000]
    assert world.customers() == []
    # The operator is told what to change at the IdP.
    detail = broker_log.for_ref(outcome.error_ref)["detail"]
    assert f"not this SP's entity id '{world.entity_id}'" in detail

    # Control: the same sign-in for the broker's own entity ID is accepted.
    acs, form = idp_initiated(browser_http, world.idp, world.entity_id, "alice")
    assert world.post(browser_http, form).status == 302
    assert len(world.customers()) == 1


@pytest.mark.parametrize("allow_sha1", [False, True], ids=["refused", "allow_sha1"])
def test_sha1_signatures_only_with_allow_sha1(
    make_ssp_world: Callable[..., SspWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
    allow_sha1: bool,
) -> None:
    # SimpleSAMLphp signs with rsa-sha1 (and a sha1 digest) when told to, as older ADFS and
    # Shibboleth installations still do.
    world = make_ssp_world(
        connection={"allow_sha1": allow_sha1}, sp={"signature.algorithm": RSA_SHA1}
    )
    form = world.sso(browser_http, "alice")
    assert f'Algorithm="{RSA_SHA1}"' in decoded(form)
    outcome = world.post(browser_http, form)
    if allow_sha1:
        assert outcome.status == 302, outcome.response.text[:2000]
        assert len(world.customers()) == 1
    else:
        assert outcome.status == 400, outcome.response.text[:2000]
        assert world.customers() == []
        # The refusal names the fix, for the operator.
        [refused] = broker_log.events("request.refused")
        assert "allow_sha1" in refused["detail"], refused


# -- single logout ------------------------------------------------------------------------------


def test_broker_initiated_logout_ends_the_idp_session_too(
    make_ssp_world: Callable[..., SspWorld],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = make_ssp_world(connection={"idp_logout": True})
    world.sign_in(browser_http)
    assert len(world.active_sessions()) == 1

    out = browser_http.get(f"{world.broker.url}/acme/logout")
    assert out.status_code == 303, out.text[:2000]
    request_url = out.headers["location"]
    assert same_endpoint(request_url, world.idp.slo_url)
    assert root_tag(redirect_message(request_url, "SAMLRequest")) == "LogoutRequest"
    # SimpleSAMLphp (validate.logout) accepts only a LogoutRequest signed with the key of the
    # broker's metadata, ends its session and answers to the broker's SLO endpoint.
    answer = follow(browser_http, browser_http.get(request_url), within=world.idp.base_url)
    assert answer.is_redirect, f"{answer.status_code} {answer.text[:2000]}\n{world.idp.log()}"
    response_url = answer.headers["location"]
    assert same_endpoint(response_url, world.slo)
    response_xml = redirect_message(response_url, "SAMLResponse")
    assert root_tag(response_xml) == "LogoutResponse"
    assert 'Value="urn:oasis:names:tc:SAML:2.0:status:Success"' in response_xml
    assert "Signature=" in response_url  # sign.logout

    done = browser_http.get(response_url)
    assert done.status_code == 303, done.text[:2000]
    assert done.headers["location"] == f"{world.storefront}/login.php?action=logout"
    assert world.active_sessions() == []
    assert broker_log.events("logout.idp_answer_refused") == []
    # The IdP session is gone: signing in again asks for the password.
    start = browser_http.get(f"{world.broker.url}/acme/login/corp")
    page = follow(
        browser_http, browser_http.get(start.headers["location"]), within=world.idp.base_url
    )
    assert 'name="password"' in page.text, page.text[:2000]


def test_idp_initiated_logout_ends_the_broker_session(
    make_ssp_world: Callable[..., SspWorld], browser_http: httpx.Client
) -> None:
    world = make_ssp_world()
    world.sign_in(browser_http)
    assert len(world.active_sessions()) == 1
    return_to = f"{world.storefront}/"

    request = initiate_logout(browser_http, world.idp, return_to)
    request = follow(browser_http, request, within=world.idp.base_url)
    assert request.is_redirect, f"{request.status_code} {request.text[:2000]}\n{world.idp.log()}"
    request_url = request.headers["location"]
    assert same_endpoint(request_url, world.slo)
    xml = redirect_message(request_url, "SAMLRequest")
    assert root_tag(xml) == "LogoutRequest"
    assert "alice@example.com" in xml
    assert "Signature=" in request_url  # sign.logout

    answer = browser_http.get(request_url)
    assert world.active_sessions() == []
    # The broker's LogoutResponse back to the IdP, which checks its signature (validate.logout)
    # and only then continues to where the logout was asked to end.
    if answer.status_code == 303:
        assert same_endpoint(answer.headers["location"], world.idp.slo_url)
        back = browser_http.get(answer.headers["location"])
    else:
        assert answer.status_code == 200, answer.text[:2000]
        url, form = post_form(answer, "SAMLResponse")
        assert same_endpoint(url, world.idp.slo_url)
        back = browser_http.post(url, data=form)
    back = follow(browser_http, back, within=world.idp.base_url)
    assert back.is_redirect, f"{back.status_code} {back.text[:2000]}\n{world.idp.log()}"
    assert back.headers["location"] == return_to


def test_idp_metadata_as_simplesamlphp_publishes_it(simplesamlphp: SimpleSAMLphp) -> None:
    # What the broker reads: the entity, one signing certificate, SSO and SLO by HTTP-Redirect.
    xml = httpx.get(simplesamlphp.metadata_url, timeout=10).text
    assert f'entityID="{simplesamlphp.entity_id}"' in xml
    assert f'Binding="{REDIRECT_BINDING}" Location="{simplesamlphp.sso_url}"' in xml
    assert f'Binding="{REDIRECT_BINDING}" Location="{simplesamlphp.slo_url}"' in xml
    body = "".join(simplesamlphp.cert_pem.strip().splitlines()[1:-1])
    assert body[:60] in xml.replace("\n", "")
