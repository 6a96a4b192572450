"""One PendingSignIn for OIDC and SAML, readable from what earlier releases stored."""

from __future__ import annotations

import pytest

from broker.errors import StateMismatch
from broker.signin.flows import PendingSignIn


def test_an_oidc_flow_round_trips_and_carries_its_checks() -> None:
    flow = PendingSignIn.for_oidc(store="acme", connection="corp", redirect_to="/", browser="b")
    again = PendingSignIn.from_record(flow.to_record())
    assert again == flow
    nonce, verifier = again.oidc_checks()
    assert len(nonce) >= 43
    assert len(verifier) >= 43
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
    assert PendingSignIn.from_record(oidc).oidc_checks() == ("n", "v")
    flow = PendingSignIn.from_record(saml)
    assert (flow.request_id, flow.link_customer_id) == ("id-1", 7)
    with pytest.raises(StateMismatch):
        flow.oidc_checks()  # a SAML flow at an OIDC callback
