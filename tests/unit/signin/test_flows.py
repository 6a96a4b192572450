"""One PendingSignIn for OIDC and SAML, readable from what earlier releases stored."""

from __future__ import annotations

from broker.signin.flows import PendingSignIn
from broker.upstream.shape import Checks


def test_a_flow_round_trips_and_carries_its_checks() -> None:
    flow = PendingSignIn(
        store="acme", connection="corp", redirect_to="/", browser="b", nonce="n", code_verifier="v"
    )
    again = PendingSignIn.from_record(flow.to_record())
    assert again == flow
    assert again.checks() == Checks(nonce="n", code_verifier="v")
    assert again.belongs_to("acme", "corp")
    assert not again.belongs_to("acme", "other")


def test_records_of_the_earlier_shapes_still_read() -> None:
    oidc = {
        "store": "acme",
        "connection": "corp",
        "nonce": "n",
        "code_verifier": "v",
        "redirect_to": "/account.php",
        "browser": "b",
        "link_customer_id": None,
    }
    saml = {
        "store": "acme",
        "connection": "adfs",
        "request_id": "id-1",
        "redirect_to": "/",
        "browser": "b",
        "link_customer_id": 7,
        "identity": {"subject": "waiting"},  # a verified identity stored beside it
    }
    assert PendingSignIn.from_record(oidc).checks() == Checks(nonce="n", code_verifier="v")
    flow = PendingSignIn.from_record(saml)
    assert (flow.request_id, flow.link_customer_id) == ("id-1", 7)
    assert flow.checks() == Checks(request_id="id-1")
