"""The SAML negative corpus: hostile or wrong Responses, each refused with a clear page.

Every case starts from a genuine sign-in at the samlify IdP (SP-initiated unless said
otherwise), turns the IdP's Response into the attack with tests/support/saml_forge.py, posts
it to the broker's ACS in the same browser, and checks what a shopper and an operator would:
a 4xx page with a reference id, and nothing created at the store (no customer, no storefront
login). A faithful re-signing by the IdP's key is accepted (the positive control), so each
refusal comes from the check named in the case, not from re-signing.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.saml_fixtures import SamlWorld
from tests.support import saml_forge as forge
from tests.support.flows import Outcome

Attack = Callable[[str, SamlWorld], str]


def _idp_key(world: SamlWorld) -> tuple[str, str]:
    assert world.idp.key_pem is not None
    return world.idp.key_pem, world.idp.cert_pem


def changed(**fields: Any) -> Attack:
    def attack(resp: str, world: SamlWorld) -> str:
        return forge.with_changed(resp, *_idp_key(world), **fields)

    return attack


def _with_attacker_key(attack: Callable[[str, str, str], str], resp: str, pair: Any) -> str:
    return attack(resp, pair.key_pem, pair.cert_pem)


def _ago(seconds: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)


ATTACKS: dict[str, Attack] = {
    "unsigned": lambda resp, world: forge.unsigned(resp),
    "signed by another key": lambda resp, world: _with_attacker_key(
        forge.signed_by_other_key, resp, forge.attacker_keypair()
    ),
    "key carried in KeyInfo": lambda resp, world: _with_attacker_key(
        forge.key_in_keyinfo, resp, forge.attacker_keypair(impersonating=world.idp.cert_pem)
    ),
    "comment injected in the NameID": lambda resp, world: forge.comment_in_nameid(
        resp, *_idp_key(world)
    ),
    "two signed assertions": lambda resp, world: forge.two_assertions(resp, *_idp_key(world)),
    "SHA-1 signature": lambda resp, world: forge.sha1_signed(resp, *_idp_key(world)),
    "RSA-MD5 signature, MD5 digest": lambda resp, world: forge.signed_with_algorithms(
        resp, *_idp_key(world), signature=forge.RSA_MD5, digest=forge.MD5
    ),
    "RSA-SHA256 signature, MD5 digest": lambda resp, world: forge.signed_with_algorithms(
        resp, *_idp_key(world), signature=forge.RSA_SHA256, digest=forge.MD5
    ),
    "RSA-SHA224 signature, SHA-224 digest": lambda resp, world: forge.signed_with_algorithms(
        resp, *_idp_key(world), signature=forge.RSA_SHA224, digest=forge.SHA224
    ),
    "DTD with entities (XXE)": lambda resp, world: forge.with_doctype(resp),
    "wrong Audience": changed(audience="https://someone-else.example/sp"),
    "no AudienceRestriction": changed(audience=forge.REMOVE),
    "wrong Destination": changed(destination="https://someone-else.example/acs"),
    "no Destination": changed(destination=forge.REMOVE),
    "wrong Recipient": changed(recipient="https://someone-else.example/acs"),
    "wrong Issuer": changed(issuer="https://evil-idp.example/metadata"),
    "expired": changed(not_on_or_after=_ago(600), confirmation_not_on_or_after=_ago(600)),
    "not yet valid": changed(not_before=_ago(-3600)),
    "confirmation expired": changed(confirmation_not_on_or_after=_ago(600)),
    "InResponseTo of another request": changed(in_response_to="_another-request-id"),
    "InResponseTo missing on an SP-initiated flow": changed(in_response_to=forge.REMOVE),
    "status not Success": changed(status="urn:oasis:names:tc:SAML:2.0:status:Requester"),
}


#: Refusals that are not 400: the IdP's own key signed another Issuer (a configuration that
#: does not match: 502, misconfigured), and the IdP's refusal (401, it did not sign you in).
STATUSES = {"wrong Issuer": 502, "status not Success": 401}


def assert_refused(outcome: Outcome, world: SamlWorld, status: int = 400) -> None:
    assert outcome.status == status, outcome.response.text[:2000]
    assert outcome.error_ref, "a clear page with a reference id"
    assert "Traceback" not in outcome.response.text
    assert world.customers() == [], "nothing created"
    assert not [login for login in world.logins() if login["ok"]], "nobody signed in"


@pytest.fixture
def world(make_saml_world: Callable[..., SamlWorld]) -> SamlWorld:
    return make_saml_world(idp={"sign_assertion": True, "sign_response": True})


def test_a_faithful_re_signing_is_accepted(world: SamlWorld, browser_http: httpx.Client) -> None:
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.with_changed(form["SAMLResponse"], *_idp_key(world))
    assert world.post(browser_http, form).status == 302
    assert len(world.customers()) == 1


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused(world: SamlWorld, browser_http: httpx.Client, name: str) -> None:
    form = world.sso(browser_http)
    form["SAMLResponse"] = ATTACKS[name](form["SAMLResponse"], world)
    assert_refused(world.post(browser_http, form), world, STATUSES.get(name, 400))


def _wrapping_names() -> list[str]:
    # The variants saml_forge.xsw_variants makes for a response whose Response and Assertion
    # are both signed; the test checks they are all there.
    moved = [
        f"signed_assertion_in_{place}"
        for place in ("extensions", "status_detail", "wrapper", "evil_assertion")
    ]
    duplicated = [
        f"evil_assertion_{position}{suffix}"
        for position in ("before", "after")
        for suffix in ("", "_same_id")
    ]
    elsewhere = [
        f"{signed}_signature_on_evil_original_{place}"
        for signed in ("assertion", "response")
        for place in ("after", "extensions")
    ]
    return moved + duplicated + elsewhere


@pytest.mark.parametrize("variant", _wrapping_names())
def test_signature_wrapping_is_refused(
    world: SamlWorld, browser_http: httpx.Client, variant: str
) -> None:
    form = world.sso(browser_http)
    variants = forge.xsw_variants(form["SAMLResponse"])
    assert variant in variants, sorted(variants)
    form["SAMLResponse"] = variants[variant]
    assert_refused(world.post(browser_http, form), world)


def test_only_the_response_signed_is_refused_by_default(
    world: SamlWorld, browser_http: httpx.Client
) -> None:
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.unsigned(form["SAMLResponse"], only="assertion")
    assert_refused(world.post(browser_http, form), world)


def test_replayed_assertion_is_refused(world: SamlWorld, browser_http: httpx.Client) -> None:
    form = world.sso(browser_http)
    assert world.post(browser_http, form).status == 302
    created = world.customers()
    # The same Response again, even with a fresh RelayState from a new sign-in in this browser.
    fresh = world.sso(browser_http)
    replay = {"SAMLResponse": form["SAMLResponse"], "RelayState": fresh["RelayState"]}
    outcome = world.post(browser_http, replay)
    assert outcome.status == 400
    assert world.customers() == created
    assert len([login for login in world.logins() if login["ok"]]) <= 1


def test_a_response_meant_for_another_browser_is_refused(
    world: SamlWorld, browser_http: httpx.Client
) -> None:
    # The attacker signs in with their own account and posts their Response into the
    # victim's browser (login CSRF): the ACS verifies it, the continuation sees the wrong
    # browser.
    with httpx.Client(follow_redirects=False) as attacker:
        form = world.sso(attacker, "bob")
    outcome = world.post(browser_http, form)
    assert outcome.status == 400
    assert "another browser" in outcome.error_message
    assert world.logins() == []


def test_relay_state_pointing_elsewhere_is_refused_on_an_sp_initiated_response(
    world: SamlWorld, browser_http: httpx.Client
) -> None:
    form = world.sso(browser_http)
    form["RelayState"] = "https://evil.com/"
    assert_refused(world.post(browser_http, form), world)


def test_oversize_post_is_refused(world: SamlWorld, browser_http: httpx.Client) -> None:
    form = world.sso(browser_http)
    form["SAMLResponse"] = forge.oversize(form["SAMLResponse"], 400_000)
    outcome = world.post(browser_http, form)
    assert outcome.status == 413
    assert world.customers() == []


def test_garbage_is_refused(world: SamlWorld, browser_http: httpx.Client) -> None:
    for value in ("", "not base64!!", base64.b64encode(b"<notsaml/>").decode()):
        form = world.sso(browser_http)
        form["SAMLResponse"] = value
        assert_refused(world.post(browser_http, form), world)
