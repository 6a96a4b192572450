"""The environment the broker runs in: Authlib switches to the ``httpx2`` fork whenever it
can import it, and then refuses the broker's ``httpx`` transports (the egress guard, the test
doubles), which broke every OIDC callback once when scim2-tester's client brought it in. The
SCIM tests drive scim2-tester through tests/support/scim_client.py over ``httpx`` instead."""

from __future__ import annotations

import importlib.util
import warnings

import httpx


def test_httpx2_is_not_installed_beside_the_broker() -> None:
    assert importlib.util.find_spec("httpx2") is None, (
        "httpx2 is installed: Authlib would use it instead of httpx; remove it "
        "(pip uninstall httpx2) and keep scim2-client on tests/support/scim_client.py"
    )


def test_authlibs_oauth_client_is_an_httpx_client() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.integrations.httpx_client import OAuth2Client

    assert issubclass(OAuth2Client, httpx.Client)
