"""The broker's own SAML SP key pairs (:mod:`broker.sp_keys`) at work: a SAML connection that
names no key files signs in and publishes the broker's certificate; during a rollover the SP
metadata carries both certificates, an IdP encrypting to the next one is understood, and once
the next pair is due it signs the AuthnRequests while the previous one still decrypts.

Sign-ins go to the samlify IdP (tests/support/saml_idp.py) over real HTTP; the key pairs are
in a real database (SQLite, as users run it by default).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from broker.config import SAMLConnection
from broker.settings.secrets import derived_box
from broker.sp_keys import SPKeyRing
from broker.storage import SQLStorage, open_storage
from broker.upstream.saml import SAMLProvider
from tests.saml_fixtures import SamlWorld
from tests.support.clock import Clock
from tests.support.saml_idp import complete_sso, start_saml_idp

SP = "https://shop.example/acme/saml/corp"
ENTITY_ID, ACS = f"{SP}/metadata", f"{SP}/acs"
USERS = {"alice": {"email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"}}
DAY = 86400


def _certificates(metadata: str, use: str) -> list[str]:
    pattern = rf'<(?:md:|ns\d+:)?KeyDescriptor use="{use}">.*?X509Certificate>([^<]+)<'
    return [cert.strip() for cert in re.findall(pattern, metadata, re.S)]


def _body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


# -- the broker with a connection that names no key files -------------------------------------


def test_a_saml_connection_without_key_files_signs_in_on_the_brokers_own_pair(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(connection={"sp_key_file": None, "sp_cert_file": None})
    outcome = world.post(browser_http, world.sso(browser_http))
    assert outcome.status == 302, outcome.response.text[:2000]
    assert len(world.customers()) == 1
    metadata = httpx.get(f"{world.broker.url}/acme/saml/corp/metadata", timeout=10).text
    [signing] = _certificates(metadata, "signing")
    assert _certificates(metadata, "encryption") == [signing]
    assert signing != _body(world.sp_cert_pem), "not the fixture's pair: the broker's own"


# -- the provider and the key ring, on a real database -----------------------------------------


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SQLStorage]:
    store = open_storage(f"sqlite:///{tmp_path / 'broker.db'}")
    yield store
    store.close()


def _provider(ring: SPKeyRing, clock: Clock, metadata_url: str) -> SAMLProvider:
    connection = SAMLConnection(key="corp", display_name="Corp", idp_metadata_url=metadata_url)
    return SAMLProvider(
        connection, sp_entity_id=ENTITY_ID, acs_url=ACS, clock=clock, sp_keys=ring.current
    )


def _sign_in(saml: SAMLProvider) -> str:
    request_id, url = saml.authn_request(relay_state="rs")
    with httpx.Client(timeout=10) as http:
        _, form = complete_sso(http, url, "alice")
    return (
        saml.handle_response(form["SAMLResponse"], expected_request_id=request_id).identity.email
        or ""
    )


def test_a_rollover_publishes_then_signs_with_the_next_pair_while_the_old_still_decrypts(
    storage: SQLStorage,
) -> None:
    clock = Clock()
    ring = SPKeyRing(storage, derived_box("s" * 40, purpose="sp-keys"), clock=clock)
    first = ring.current().active.cert_pem
    ring.rollover(activate_in_days=14)
    upcoming = ring.current().upcoming[0].cert_pem

    # Before it is due: the metadata publishes both; the current pair signs; an IdP that
    # already encrypts to the next certificate is understood.
    idp_options = {"encrypt_assertion": True, "want_authn_requests_signed": True}
    sp = {
        "entity_id": ENTITY_ID,
        "acs_url": ACS,
        "signing_cert_pem": first,
        "encryption_cert_pem": upcoming,
    }
    with start_saml_idp(sp=sp, users=USERS, idp=idp_options) as idp:
        saml = _provider(ring, clock, idp.metadata_url)
        metadata = saml.sp_metadata()
        published = [_body(first), _body(upcoming)]
        assert _certificates(metadata, "signing") == published
        assert _certificates(metadata, "encryption") == published
        assert _sign_in(saml) == "alice@example.com"

    # Once due: the next pair signs (the IdP now checks requests against it), and an IdP that
    # has not refreshed our metadata and still encrypts to the old certificate is understood.
    clock.advance(14 * DAY + 1)
    sp = {
        "entity_id": ENTITY_ID,
        "acs_url": ACS,
        "signing_cert_pem": upcoming,
        "encryption_cert_pem": first,
    }
    with start_saml_idp(sp=sp, users=USERS, idp=idp_options) as idp:
        saml = _provider(ring, clock, idp.metadata_url)
        assert _certificates(saml.sp_metadata(), "signing") == [_body(upcoming)]
        assert _sign_in(saml) == "alice@example.com"


def test_an_idp_checking_requests_against_the_next_pair_refuses_them_before_it_is_due(
    storage: SQLStorage,
) -> None:
    """Control: the switch is real, not both keys at once."""
    clock = Clock()
    ring = SPKeyRing(storage, derived_box("s" * 40, purpose="sp-keys"), clock=clock)
    ring.current()
    ring.rollover(activate_in_days=14)
    upcoming = ring.current().upcoming[0].cert_pem
    sp = {"entity_id": ENTITY_ID, "acs_url": ACS, "signing_cert_pem": upcoming}
    with start_saml_idp(sp=sp, users=USERS, idp={"want_authn_requests_signed": True}) as idp:
        saml = _provider(ring, clock, idp.metadata_url)
        _, url = saml.authn_request(relay_state="rs")
        with httpx.Client(timeout=10) as http:
            refused = http.get(url)
        assert refused.status_code >= 400


# -- the command line ---------------------------------------------------------------------------


def _broker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_broker_keys_lists_and_rolls_over_the_brokers_own_pair(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(
        f"""
[broker]
base_url = "https://sso.example.com"
secret_key = "{"k" * 40}"
database_url = "sqlite:///{tmp_path / "broker.db"}"

[stores.acme]
store_hash = "abc123"
access_token = "t"
client_id = "c"
client_secret = "s"
storefront_url = "https://shop.acme.com"

[stores.acme.connections.corp]
type = "saml"
idp_metadata_url = "https://idp.example/metadata"
""",
        encoding="utf-8",
    )
    listed = _broker("keys", "--config", str(config), "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("no pair yet"), listed.stdout
    rolled = _broker("keys", "--config", str(config), "--rollover", "--activate-in-days", "7")
    assert rolled.returncode == 0, rolled.stderr
    assert "signing from" in rolled.stdout
    states = [line.split("\t")[1] for line in rolled.stdout.splitlines() if "\t" in line]
    assert states == ["active", "next"]
    assert "PRIVATE KEY" not in listed.stdout + rolled.stdout + rolled.stderr
    storage = open_storage(f"sqlite:///{tmp_path / 'broker.db'}")
    try:
        assert [key.id for key in storage.sp_keys()][:1] == ["first"]
        assert len(storage.sp_keys()) == 2
    finally:
        storage.close()


@pytest.mark.parametrize(
    "args",
    [["--list"], ["--rollover"], ["--out", "x", "--config", "y", "--list"]],
    ids=["list without --config", "rollover without --config", "--out with --list"],
)
def test_broker_keys_refuses_a_mixed_or_incomplete_command(args: list[str]) -> None:
    result = _broker("keys", *args)
    assert result.returncode == 2
    assert "--config" in result.stderr
