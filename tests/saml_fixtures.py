"""A SAML world: the sandbox store, the samlify IdP and the broker with a SAML connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from broker.keys import make_key_pair
from tests.conftest import BrokerServer, Sandbox
from tests.support.speed import KeyRecycler
from tests.support.world import SAML_USERS, SamlWorld, SpKeys, Worlds

__all__ = ["USERS", "SamlWorld"]

#: The samlify IdP's users in a SAML world, by login.
USERS = SAML_USERS

#: The samlify IdPs' signing keys, handed on from test to test (see tests/support/speed.py).
_IDP_KEYS = KeyRecycler()


@pytest.fixture(scope="session")
def saml_sp_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    """The broker's SP key pair, made once (a 3072-bit key takes a quarter of a second)."""
    key_file, cert_file = make_key_pair(tmp_path_factory.mktemp("sp-keys"))
    return SpKeys(key_file=key_file, cert_file=cert_file)


@pytest.fixture
def make_saml_world(
    sandbox: Sandbox, make_broker: Callable[..., BrokerServer], saml_sp_keys: SpKeys
) -> Iterator[Callable[..., SamlWorld]]:
    """``make_saml_world(idp={...}, connection={...})``: samlify options and broker settings.

    ``connection`` may also be a function of the started IdP returning them (for settings that
    name its entity id or metadata); ``more_connections(idp)`` returns further SAML connections
    of the store (key -> settings; a SAML one gets the SP key pair and a display name);
    ``app_options`` go to ``create_app`` (e.g. ``clock``)."""
    with ExitStack() as stack:
        stack.callback(_IDP_KEYS.end_test)  # after the IdPs have stopped
        worlds = Worlds(
            sandbox, make_broker, stack=stack, sp_keys=saml_sp_keys, saml_idp_keys=_IDP_KEYS
        )
        yield worlds.saml
