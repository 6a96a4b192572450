"""`broker check` on a good and on a broken file, against the real sandbox store and IdPs.

What an operator reads: a ✓ or ✗ per check of each store and connection, what to register at
each IdP, and for a failure the URL asked, its HTTP status and a hint; warnings (``!``) for
IdP certificates that expire within 30 days and for a client_id the IdP does not know. Every
failure is also one line on stderr naming its key; the exit status is 1 on any ✗.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main as broker_main
from tests.conftest import World
from tests.support import toml
from tests.support.certificates import self_signed
from tests.support.world import SamlWorld

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = broker_main(["check", "--config", str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def edited(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the config file with ``change`` applied to its document."""
    document = tomllib.loads(path.read_text())
    change(document)
    copy = path.with_name(f"edited-{path.name}")
    copy.write_text(toml.dumps(document))
    return copy


def registered(out: str, name: str) -> str:
    """The value printed beside ``name`` under "register at the IdP"."""
    match = re.search(rf"^ {{4}}{re.escape(name)} +(\S+)$", out, re.MULTILINE)
    assert match, f"no {name!r} in:\n{out}"
    return match.group(1)


def test_a_good_oidc_file_lists_every_check_and_what_to_register(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world()
    status, out, err = run_check(world.broker.config_path, capsys)
    assert status == 0, out + err
    assert err == ""
    base = world.broker.url
    assert f"store acme ({world.sandbox.url}/stores/abc123)" in out
    assert "  ✓ store API: the access token reads customers" in out
    assert f"connection acme/corp (oidc, issuer {world.idp.url})" in out
    for check in ("discovery", "algorithms", "signing keys"):
        assert f"  ✓ {check}: " in out
    assert "  ✓ client: the IdP takes client_id 'broker' and answers at the redirect URI" in out
    assert "✗" not in out
    assert "may not know client_id" not in out
    assert registered(out, "redirect URI") == f"{base}/acme/oidc/corp/callback"
    assert registered(out, "back-channel logout URI") == f"{base}/acme/oidc/corp/backchannel-logout"
    assert (
        registered(out, "front-channel logout URI") == f"{base}/acme/oidc/corp/frontchannel-logout"
    )
    assert out.rstrip().endswith("ok: 1 store(s), 1 connection(s) reachable")
    # The dev IdP saw the probe: a prompt=none request with the configured client and redirect.
    probe = world.idp.state.authorize_requests[-1]
    assert probe["prompt"] == "none"
    assert probe["client_id"] == "broker"
    assert probe["redirect_uri"] == f"{base}/acme/oidc/corp/callback"


@pytest.mark.parametrize(
    ("change", "status", "hint"),
    [
        ("access_token", 401, "the access_token is wrong or revoked"),
        ("store_hash", 404, "the store_hash (or api_url) is wrong"),
    ],
)
def test_a_store_that_refuses_names_the_url_the_status_and_a_hint(
    make_world: Callable[..., World],
    capsys: pytest.CaptureFixture[str],
    change: str,
    status: int,
    hint: str,
) -> None:
    world = make_world()

    def broken(document: dict[str, Any]) -> None:
        document["stores"]["acme"][change] = "wrong0" if change == "store_hash" else "nope"

    exit_status, out, err = run_check(edited(world.broker.config_path, broken), capsys)
    assert exit_status == 1
    store_hash = "wrong0" if change == "store_hash" else "abc123"
    url = f"{world.sandbox.url}/stores/{store_hash}/v3/customers?limit=1"
    assert "  ✗ store API: The store refused the broker's request." in out
    assert f"      GET {url} -> HTTP {status}" in out
    assert f"      hint: {hint}" in out
    assert "  ✓ discovery: " in out  # the IdP is checked all the same
    [line] = err.splitlines()
    assert line.startswith("stores.acme: store API: The store refused the broker's request.")
    assert f"-> HTTP {status}" in line
    assert "nope" not in out + err  # the wrong token itself is never printed
    assert out.rstrip().endswith("✗ 1 problem(s) in 1 store(s), 1 connection(s)")


def test_an_issuer_without_discovery_names_the_discovery_url_and_the_issuer(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world()
    wrong = f"{world.idp.url}/tenant-x"

    def broken(document: dict[str, Any]) -> None:
        document["stores"]["acme"]["connections"]["corp"]["issuer"] = wrong

    status, out, err = run_check(edited(world.broker.config_path, broken), capsys)
    assert status == 1
    assert "  ✗ discovery: " in out
    assert f"      GET {wrong}/.well-known/openid-configuration -> HTTP 404" in out
    assert "      hint: the issuer URL is wrong" in out
    assert "  ✓ client" not in out  # nothing to ask without discovery
    # What to register is still said: it does not depend on the IdP.
    assert registered(out, "redirect URI") == f"{world.broker.url}/acme/oidc/corp/callback"
    [line] = err.splitlines()
    assert line.startswith("stores.acme.connections.corp: identity provider: discovery: ")


def test_a_client_id_the_idp_does_not_know_is_a_warning(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world()

    def unknown(document: dict[str, Any]) -> None:
        document["stores"]["acme"]["connections"]["corp"]["client_id"] = "nobody"

    status, out, err = run_check(edited(world.broker.config_path, unknown), capsys)
    assert status == 0, out  # advice: the IdP's answer is a hint, not proof
    assert err == ""
    warning = next(line for line in out.splitlines() if "may not know client_id" in line)
    assert warning.startswith("  ! the IdP may not know client_id 'nobody'")
    assert "got HTTP 400" in warning
    assert "  ✓ client" not in out


# -- SAML ------------------------------------------------------------------------------------


def certificate_pem(days: int) -> str:
    return self_signed("soon-expiring-idp", days=days)[1]


def idp_metadata(entity_id: str, cert_pem: str) -> str:
    body = "".join(cert_pem.strip().splitlines()[1:-1])
    return (
        f'<EntityDescriptor xmlns="{MD}" entityID="{entity_id}">'
        '<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<KeyDescriptor use="signing"><KeyInfo xmlns="{DS}"><X509Data><X509Certificate>{body}'
        "</X509Certificate></X509Data></KeyInfo></KeyDescriptor>"
        '<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://soon-idp.example/sso"/></IDPSSODescriptor></EntityDescriptor>'
    )


def test_saml_lists_the_metadata_url_and_warns_of_a_certificate_expiring_soon(
    make_saml_world: Callable[..., SamlWorld], capsys: pytest.CaptureFixture[str]
) -> None:
    soon = idp_metadata("https://soon-idp.example/metadata", certificate_pem(days=10))
    later = idp_metadata("https://later-idp.example/metadata", certificate_pem(days=400))
    world = make_saml_world(
        more_connections=lambda idp: {
            "soon": {"display_name": "Soon", "idp_metadata_xml": soon},
            "later": {"display_name": "Later", "idp_metadata_xml": later},
        }
    )
    status, out, err = run_check(world.broker.config_path, capsys)
    assert status == 0, out + err  # a warning is no failure
    base = world.broker.url
    corp, rest = out.split("connection acme/soon (saml)")
    soon_section, later_section = rest.split("connection acme/later (saml)")
    assert "connection acme/corp (saml)" in corp
    assert f"  ✓ metadata: IdP entity {world.idp.entity_id}" in corp
    assert "  ✓ signing certificates: 1 valid signing certificate(s)" in corp
    assert registered(corp, "SP metadata URL (entity ID)") == f"{base}/acme/saml/corp/metadata"
    assert registered(corp, "ACS URL (HTTP-POST)") == f"{base}/acme/saml/corp/acs"
    assert registered(corp, "SLO URL") == f"{base}/acme/saml/corp/slo"
    assert re.search(
        r"^  ! the IdP certificate CN=soon-expiring-idp expires in (9|10) days "
        r"\(\d{4}-\d\d-\d\d\)$",
        soon_section,
        re.MULTILINE,
    ), soon_section
    assert registered(soon_section, "SP metadata URL (entity ID)") == (
        f"{base}/acme/saml/soon/metadata"
    )
    assert "  ✓ metadata: IdP entity https://later-idp.example/metadata" in later_section
    assert "expires in" not in later_section  # 400 days left: nothing to say


def test_saml_metadata_url_that_is_not_there(
    make_saml_world: Callable[..., SamlWorld], capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_saml_world()
    wrong = world.idp.metadata_url + "-missing"

    def broken(document: dict[str, Any]) -> None:
        document["stores"]["acme"]["connections"]["corp"]["idp_metadata_url"] = wrong

    status, out, err = run_check(edited(world.broker.config_path, broken), capsys)
    assert status == 1
    assert "  ✗ metadata: " in out
    assert f"      GET {wrong} -> HTTP 404" in out
    assert "      hint: idp_metadata_url is wrong" in out
    [line] = err.splitlines()
    assert line.startswith("stores.acme.connections.corp: identity provider: metadata: ")
