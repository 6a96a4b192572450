"""SAML single logout through the broker, both ways, against the samlify IdP, over real HTTP."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.saml_fixtures import SamlWorld
from tests.support import saml_forge as forge
from tests.support.flows import Outcome, visit_storefront
from tests.support.saml_idp import complete_slo, initiate_logout


def active_sessions(world: SamlWorld) -> list[Any]:
    from sqlalchemy import select

    from broker.storage import sessions

    storage = world.broker.app.extensions["broker"].storage
    with storage.engine.connect() as conn:
        return [row for row in conn.execute(select(sessions)) if row.ended_at is None]


def deliver(http: httpx.Client, message: tuple[str, dict[str, str]]) -> httpx.Response:
    """Send a SAML message where it is addressed, in its binding (GET query, or POST form)."""
    url, form = message
    return http.post(url, data=form) if form else http.get(url)


def signed_in(world: SamlWorld, http: httpx.Client) -> None:
    outcome = world.post(http, world.sso(http, "alice"))
    assert outcome.status == 302, outcome.response.text
    visit_storefront(http, outcome.location)
    assert len(active_sessions(world)) == 1


def test_metadata_advertises_single_logout(make_saml_world: Callable[..., SamlWorld]) -> None:
    world = make_saml_world()
    xml = httpx.get(f"{world.broker.url}/acme/saml/corp/metadata").text
    assert "SingleLogoutService" in xml
    assert f'Location="{world.broker.url}/acme/saml/corp/slo"' in xml


def test_sp_initiated_logout_signs_out_of_the_idp_and_the_storefront(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(connection={"idp_logout": True})
    signed_in(world, browser_http)
    out = browser_http.get(f"{world.broker.url}/acme/logout")
    assert out.status_code == 303
    assert out.headers["location"].startswith(world.idp.slo_url)
    answer = deliver(browser_http, complete_slo(browser_http, out.headers["location"]))
    assert answer.status_code == 303
    assert (
        answer.headers["location"]
        == f"{world.sandbox.storefront(world.store.store_hash)}/login.php?action=logout"
    )
    assert active_sessions(world) == []
    events = [e for e in world.idp.events() if "logout" in str(e.get("type", e)).lower()]
    assert events, world.idp.events()


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_idp_initiated_logout_ends_the_broker_session_and_answers_signed(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client, binding: str
) -> None:
    world = make_saml_world()
    signed_in(world, browser_http)
    request = initiate_logout(browser_http, world.idp, "alice", binding=binding)
    answer = deliver(browser_http, request)
    assert answer.status_code in (200, 303), answer.text
    assert active_sessions(world) == []
    # The LogoutResponse goes back to the IdP, which records whether it verified.
    if answer.status_code == 303:
        browser_http.get(answer.headers["location"])
    else:
        from tests.support.saml_idp import auto_post_form

        url, form = auto_post_form(answer)
        browser_http.post(url, data=form)
    responses = [e for e in world.idp.events() if e.get("type") == "logout_response"]
    assert responses
    assert responses[-1].get("verified") is True, responses[-1]


def test_forged_or_unsigned_logout_requests_end_nothing(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world()
    signed_in(world, browser_http)
    url, form = initiate_logout(browser_http, world.idp, "alice", binding="post")
    xml = forge.decode(form["SAMLRequest"])
    unsigned = re.sub(r"<ds:Signature.*?</ds:Signature>", "", xml, flags=re.DOTALL)
    assert unsigned != xml
    someone_else = xml.replace("alice@example.com", "bob@example.com")  # signature now wrong
    assert someone_else != xml
    for tampered in (forge.encode(unsigned), forge.encode(someone_else)):
        outcome = Outcome(browser_http.post(url, data={**form, "SAMLRequest": tampered}))
        assert outcome.status == 400, outcome.response.text[:500]
        assert outcome.error_ref
    assert len(active_sessions(world)) == 1


class _BrokerLog(logging.Handler):
    """The broker's JSON log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "broker":
            self.lines.append(json.loads(record.getMessage()))


def storefront_logout(world: SamlWorld) -> str:
    return f"{world.sandbox.storefront(world.store.store_hash)}/login.php?action=logout"


def test_a_logout_response_nobody_asked_for_still_ends_at_the_storefront(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    # Unknown, expired or used RelayState: the shopper is on the way out, so the storefront's
    # logout follows; nothing else happens.
    world = make_saml_world()
    for params in ({"SAMLResponse": "x", "RelayState": "forged"}, {"SAMLResponse": "x"}):
        answer = browser_http.get(f"{world.broker.url}/acme/saml/corp/slo", params=params)
        assert answer.status_code == 303
        assert answer.headers["location"] == storefront_logout(world)


def test_an_unsigned_logout_response_still_ends_at_the_storefront(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    # SimpleSAMLphp sends its LogoutResponse unsigned by default: refused (the broker never
    # trusts an unsigned logout message), logged, and the shopper still signed out of the store.
    world = make_saml_world(connection={"idp_logout": True})
    signed_in(world, browser_http)
    out = browser_http.get(f"{world.broker.url}/acme/logout")
    assert out.status_code == 303
    url, form = complete_slo(browser_http, out.headers["location"])
    if form:  # HTTP-POST: drop the enveloped signature
        xml = forge.decode(form["SAMLResponse"])
        unsigned = re.sub(r"<ds:Signature.*?</ds:Signature>", "", xml, flags=re.DOTALL)
        assert unsigned != xml
        message = (url, {**form, "SAMLResponse": forge.encode(unsigned)})
    else:  # HTTP-Redirect: drop SigAlg and Signature
        base, _, query_string = url.partition("?")
        kept = [p for p in query_string.split("&") if not p.startswith(("SigAlg=", "Signature="))]
        assert len(kept) < len(query_string.split("&"))
        message = (f"{base}?{'&'.join(kept)}", {})
    handler = _BrokerLog()
    logging.getLogger("broker").addHandler(handler)
    try:
        answer = deliver(browser_http, message)
    finally:
        logging.getLogger("broker").removeHandler(handler)
    lines = handler.lines
    assert answer.status_code == 303, answer.text[:1000]
    assert answer.headers["location"] == storefront_logout(world)
    assert active_sessions(world) == []
    [refused] = [line for line in lines if line["event"] == "logout.idp_answer_refused"]
    assert refused["detail"].startswith("saml logout (unsigned)"), refused
