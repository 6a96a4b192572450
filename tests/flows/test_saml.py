"""SAML sign-in end to end over real HTTP: broker (pysaml2), samlify IdP, sandbox store."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.saml_fixtures import SamlWorld
from tests.support.flows import page_field, visit_storefront
from tests.support.saml_idp import idp_initiated


@pytest.mark.parametrize(
    "idp",
    [
        {"sign_assertion": True, "sign_response": False},
        {"sign_assertion": True, "sign_response": True},
        {"sign_assertion": True, "encrypt_assertion": True},
    ],
    ids=["signed-assertion", "signed-both", "encrypted"],
)
def test_sp_initiated_sign_in(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client, idp: dict[str, bool]
) -> None:
    world = make_saml_world(idp=idp)
    form = world.sso(browser_http, "alice", "?redirect_to=/cart.php")
    outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text
    visit_storefront(browser_http, outcome.location)
    [login] = world.logins()
    assert (login["ok"], login["claims"]["redirect_to"]) == (True, "/cart.php")
    page = browser_http.get(f"{world.sandbox.storefront(world.store.store_hash)}/account.php")
    assert page_field(page.text, "customer-email") == "alice@example.com"
    [customer] = world.customers()
    assert (customer["first_name"], customer["last_name"]) == ("Alice", "Liddell")


_WATCHED_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "tempfile.mkstemp"})
_watchers: list[list[str]] = []
_watchers_lock = threading.Lock()


def _on_audit_event(event: str, _args: object) -> None:
    if event in _WATCHED_EVENTS and _watchers:
        with _watchers_lock:
            for seen in _watchers:
                seen.append(event)


@contextmanager
def programs_and_temporary_files() -> Iterator[list[str]]:
    """The programs started and temporary files made in this process meanwhile (the broker
    under test runs in it), from Python's audit events (PEP 578). The hook stays installed
    (audit hooks cannot be removed) and costs nothing while nobody watches."""
    if not getattr(sys, "_broker_test_audit_hook", False):
        sys.addaudithook(_on_audit_event)
        sys._broker_test_audit_hook = True  # type: ignore[attr-defined]
    seen: list[str] = []
    with _watchers_lock:
        _watchers.append(seen)
    try:
        yield seen
    finally:
        with _watchers_lock:
            _watchers.remove(seen)


def test_the_acs_starts_no_program_and_writes_no_temporary_file(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    """Signatures are verified and the assertion decrypted in the process (python-xmlsec):
    no xmlsec1 program per signature, no temporary copies of the document or of the keys."""
    world = make_saml_world(
        idp={"sign_assertion": True, "sign_response": True, "encrypt_assertion": True}
    )
    form = world.sso(browser_http, "alice")
    with programs_and_temporary_files() as seen:
        outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text
    assert seen == []


def test_signing_people_in_keeps_nothing_of_them_in_the_providers_memory(
    make_saml_world: Callable[..., SamlWorld],
) -> None:
    """pysaml2's client caches each signed-in person's session information in memory,
    growing with every new person; the broker reads assertions without it."""
    world = make_saml_world()
    for login in ("alice", "bob", "alice"):
        with httpx.Client(follow_redirects=False) as browser:
            assert world.post(browser, world.sso(browser, login)).status == 302
    provider = world.broker.app.extensions["broker"].provider("acme", "corp")
    assert provider.client().users.subjects() == []


def test_signed_response_alone_only_when_configured(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    idp = {"sign_assertion": False, "sign_response": True}
    strict = make_saml_world(idp=idp)
    refused = strict.post(browser_http, strict.sso(browser_http))
    assert refused.status == 400
    assert strict.customers() == []


def test_signed_response_alone_is_accepted_when_the_connection_says_so(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(
        idp={"sign_assertion": False, "sign_response": True},
        connection={"require_signed_assertion": False},
    )
    outcome = world.post(browser_http, world.sso(browser_http))
    assert outcome.status == 302, outcome.response.text
    assert len(world.customers()) == 1


def test_sp_metadata_names_entity_acs_and_both_certificates(
    make_saml_world: Callable[..., SamlWorld],
) -> None:
    world = make_saml_world()
    response = httpx.get(f"{world.broker.url}/acme/saml/corp/metadata")
    assert response.status_code == 200
    xml = response.text
    assert f'entityID="{world.broker.url}/acme/saml/corp/metadata"' in xml
    assert f'Location="{world.acs}"' in xml
    assert 'use="signing"' in xml
    assert 'use="encryption"' in xml
    body = "".join(world.sp_cert_pem.strip().splitlines()[1:-1])
    assert body[:60] in xml.replace("\n", "")


def test_idp_initiated_when_allowed_with_relay_state_as_a_safe_path(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(connection={"allow_idp_initiated": True})
    acs, form = idp_initiated(browser_http, world.idp, "bob", relay_state="https://evil.com/")
    assert acs == world.acs
    outcome = world.post(browser_http, form)
    assert outcome.status == 302, outcome.response.text
    visit_storefront(browser_http, outcome.location)
    assert world.logins()[0]["claims"]["redirect_to"] == "/account.php"

    acs, form = idp_initiated(browser_http, world.idp, "bob", relay_state="/cart.php")
    outcome = world.post(browser_http, form)
    visit_storefront(browser_http, outcome.location)
    assert world.logins()[1]["claims"]["redirect_to"] == "/cart.php"


def test_idp_initiated_refused_when_off(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world()
    _, form = idp_initiated(browser_http, world.idp, "bob")
    outcome = world.post(browser_http, form)
    assert outcome.status == 400
    assert "portal is not enabled" in outcome.error_message
    assert world.customers() == []


def test_a_returning_saml_shopper_costs_no_api_call(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world()
    assert world.post(browser_http, world.sso(browser_http)).status == 302
    world.sandbox.state.clear_requests(world.store.store_hash)
    assert world.post(browser_http, world.sso(browser_http)).status == 302
    assert world.sandbox.state.requests(world.store.store_hash) == []
