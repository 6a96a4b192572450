"""Every key the broker stores under, in one namespace: build them here, nowhere else.

Three tables take free-form keys, each its own namespace; within each, a key starts with the
prefix of what it is, so no two kinds ever meet:

- **pending** (:class:`~broker.storage.model.PendingStore`): a started flow, under a hash of
  the secret the browser brings back (state, RelayState, a ticket); the secret itself is
  never stored.
- **once** (:class:`~broker.storage.model.OnceStore`): one use of an IdP's message id, a
  webhook, or a claim, scoped by store and connection (an id is unique only at its issuer).
- **counters** (:class:`~broker.storage.model.CounterStore`): attempt budgets.

The strings are part of the stored data: a flow started before an upgrade is finished after
it, so a key built here never changes shape (tests/storage/test_keys.py pins each one).
"""

from __future__ import annotations

import hashlib


def digest(value: str) -> str:
    """The SHA-256 of ``value``, in hex: how a secret is named in storage."""
    return hashlib.sha256(value.encode()).hexdigest()


# -- pending ------------------------------------------------------------------------------


def oidc_flow(state: str) -> str:
    """An OIDC sign-in started, under its ``state``."""
    return "oidc:" + digest(state)


def confirmation(key: str) -> str:
    """An identity waiting for the shopper's storefront password (link policy ``confirm``)."""
    return "confirm:" + digest(key)


def oidc_logout(state: str) -> str:
    """An RP-initiated OIDC logout under way, under its ``state``."""
    return "logout:" + digest(state)


def saml_relay(relay_state: str) -> str:
    """An SP-initiated SAML sign-in started, under its RelayState."""
    return "saml-relay:" + digest(relay_state)


def saml_continue(key: str) -> str:
    """A verified SAML sign-in handed from the ACS POST to the browser's own GET."""
    return "saml-continue:" + digest(key)


def saml_logout(relay_state: str) -> str:
    """An SP-initiated SAML logout under way, under its RelayState."""
    return "saml-logout:" + digest(relay_state)


def link_ticket(ticket: str) -> str:
    """A storefront customer's ticket to link an IdP identity to their account."""
    return "link-ticket:" + digest(ticket)


def link_session(key: str) -> str:
    """The account-links page's session of a signed-in storefront customer."""
    return "link-session:" + digest(key)


# -- once ---------------------------------------------------------------------------------


def oidc_flow_spent(state: str) -> str:
    """One use of an OIDC flow the browser carries (broker.web.flows), under its ``state``."""
    return "oidc-flow:" + digest(state)


def saml_assertion(store: str, connection: str, assertion_id: str) -> str:
    """One use of a SAML assertion id, per connection."""
    return f"saml:{store}:{connection}:{assertion_id}"


def saml_logout_request(store: str, connection: str, request_id: str) -> str:
    """One use of an IdP's SAML LogoutRequest id, per connection."""
    return f"saml-logout:{store}:{connection}:{request_id}"


def logout_jti(store: str, connection: str, jti: str) -> str:
    """One use of a back-channel logout token's ``jti``, per connection."""
    return f"logout-jti:{store}:{connection}:{jti}"


def webhook(store: str, payload_hash: str) -> str:
    """One delivery of a BigCommerce webhook (its ``hash``), per store."""
    return f"webhook:{store}:{payload_hash}"


def create_claim(store: str, email_key: str) -> str:
    """The claim of the one sign-in that may create this e-mail's customer."""
    return f"create:{store}:{email_key}"


# -- counters -----------------------------------------------------------------------------


def confirm_attempts(store: str, customer_id: int) -> str:
    """A customer's storefront-password attempts on the confirmation page."""
    return f"confirm:{store}:customer:{customer_id}"


def confirm_pace(store: str, customer_id: int) -> str:
    """The pace of a customer's password checks (validate-credentials' own limit)."""
    return f"confirm:{store}:pace:{customer_id}"


def confirm_ip(store: str, ip: str) -> str:
    """Storefront-password attempts from one IP address."""
    return f"confirm:{store}:ip:{ip}"


def audit_refusals(store: str, ip: str | None) -> str:
    """Refusals written to the audit log for one IP address (None: the address unknown)."""
    return f"audit-refusals:{store}:{ip}"


# -- once: the BigCommerce app ------------------------------------------------------------


def app_install_code(code: str) -> str:
    """One use of an install's authorization code (a replayed install is refused)."""
    return "app-code:" + digest(code)


def app_payload(store: str, jti: str) -> str:
    """One use of a signed ``load``/``uninstall``/``remove_user`` payload, per store."""
    return f"app-payload:{store}:{digest(jti)}"
