"""The one namespace of stored keys: every key keeps the shape data already stored has.

A flow started before an upgrade finishes after it, and a claim or a used assertion id must
still be found, so each key here is pinned to the exact string the broker has always stored.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import broker
from broker.storage import keys

SECRET = "Zm9vYmFy-secret_value"
HASHED = hashlib.sha256(SECRET.encode()).hexdigest()


def test_pending_keys_are_a_prefix_and_the_secrets_sha256() -> None:
    assert keys.digest(SECRET) == HASHED
    assert keys.digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert {
        "oidc": keys.oidc_flow(SECRET),
        "confirm": keys.confirmation(SECRET),
        "logout": keys.oidc_logout(SECRET),
        "saml-relay": keys.saml_relay(SECRET),
        "saml-continue": keys.saml_continue(SECRET),
        "saml-logout": keys.saml_logout(SECRET),
        "link-ticket": keys.link_ticket(SECRET),
        "link-session": keys.link_session(SECRET),
    } == {
        "oidc": f"oidc:{HASHED}",
        "confirm": f"confirm:{HASHED}",
        "logout": f"logout:{HASHED}",
        "saml-relay": f"saml-relay:{HASHED}",
        "saml-continue": f"saml-continue:{HASHED}",
        "saml-logout": f"saml-logout:{HASHED}",
        "link-ticket": f"link-ticket:{HASHED}",
        "link-session": f"link-session:{HASHED}",
    }


def test_once_keys_are_scoped_by_store_and_connection() -> None:
    assert keys.oidc_flow_spent(SECRET) == f"oidc-flow:{HASHED}"  # a state is unique anyway
    assert keys.saml_assertion("acme", "corp", "_a1") == "saml:acme:corp:_a1"
    assert keys.saml_logout_request("acme", "corp", "_r1") == "saml-logout:acme:corp:_r1"
    assert keys.logout_jti("acme", "corp", "j-1") == "logout-jti:acme:corp:j-1"
    assert keys.webhook("acme", "h1") == "webhook:acme:h1"
    assert keys.create_claim("acme", "pat@example.com") == "create:acme:pat@example.com"


def test_counter_keys() -> None:
    assert keys.confirm_attempts("acme", 7) == "confirm:acme:customer:7"
    assert keys.confirm_pace("acme", 7) == "confirm:acme:pace:7"
    assert keys.confirm_ip("acme", "203.0.113.9") == "confirm:acme:ip:203.0.113.9"
    assert keys.audit_refusals("acme", "203.0.113.9") == "audit-refusals:acme:203.0.113.9"
    assert keys.audit_refusals("acme", None) == "audit-refusals:acme:None"


def test_no_two_kinds_of_pending_key_meet() -> None:
    built = [
        make(SECRET)
        for make in (
            keys.oidc_flow,
            keys.confirmation,
            keys.oidc_logout,
            keys.saml_relay,
            keys.saml_continue,
            keys.saml_logout,
            keys.link_ticket,
            keys.link_session,
        )
    ]
    prefixes = [key.removesuffix(HASHED) for key in built]
    assert len(set(prefixes)) == len(prefixes)


#: What a stored key starts with: a string literal equal to one of these, alone or as the
#: head of an f-string, builds a key.
PREFIXES = {
    "oidc:",
    "confirm:",
    "logout:",
    "saml-relay:",
    "saml-continue:",
    "saml-logout:",
    "link-ticket:",
    "link-session:",
    "saml:",
    "oidc-flow:",
    "logout-jti:",
    "webhook:",
    "create:",
    "audit-refusals:",
}
#: Where keys are still built by hand, until those modules call broker.storage.keys (the web
#: layer and the sign-in service, being rewritten): this only shrinks, to nothing.
NOT_YET_SWITCHED: tuple[str, ...] = ()


def test_keys_are_built_in_broker_storage_keys_only() -> None:
    root = Path(broker.__file__).parent
    builders: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            head = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
            if isinstance(head, ast.Constant) and head.value in PREFIXES:
                builders.add(path.relative_to(root).as_posix())
    assert "storage/keys.py" in builders
    elsewhere = builders - {"storage/keys.py"}
    assert sorted(p for p in elsewhere if not p.startswith(NOT_YET_SWITCHED)) == []
