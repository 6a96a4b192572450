"""Test a connection from the admin: reach the IdP as a sign-in would, and say what was found.

``ok`` is false only when a check fails that would stop a sign-in; advice (plain http on
localhost, a certificate expiring within :data:`EXPIRY_WARNING_DAYS`) goes to ``warnings``.
Nothing is cached: a fresh provider is built, so the test sees the IdP as it is now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.errors import BrokerError
from broker.runtime import Runtime
from broker.settings.values import Connection, OIDCConnection, SAMLConnection
from broker.upstream.certificates import EXPIRY_WARNING_DAYS, days_left, described
from broker.upstream.oidc import OIDCProvider
from broker.upstream.registry import Provider, open_provider
from broker.upstream.saml import SAMLProvider


@dataclass
class Report:
    checks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        return ok

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": all(c["ok"] for c in self.checks),
            "checks": self.checks,
            "warnings": self.warnings,
            "facts": self.facts,
        }


def test_connection(runtime: Runtime, store_key: str, conn_key: str) -> dict[str, Any]:
    store, conn = runtime.connection(store_key, conn_key)
    base = runtime.broker_settings.base_url
    provider = open_provider(
        conn,
        base_url=base,
        store_key=store.key,
        transport=runtime.transport,
        clock=runtime.clock,
        sp_keys=runtime.sp_keys.current,
    )
    return check_connection(conn, provider, base, store.key, runtime.clock()).as_json()


def check_connection(
    conn: Connection, provider: Provider, base: str, store_key: str, now: float
) -> Report:
    """Every check of one connection; ``broker check`` runs the same for the file's."""
    report = Report()
    if base.startswith("http://"):
        report.warnings.append(
            "the broker runs on plain http: fine on localhost, not in production"
        )
    if isinstance(conn, OIDCConnection) and isinstance(provider, OIDCProvider):
        _oidc(report, provider, conn, f"{base}/{store_key}/oidc/{conn.key}/callback")
    elif isinstance(conn, SAMLConnection) and isinstance(provider, SAMLProvider):
        _saml(report, provider, f"{base}/{store_key}/saml/{conn.key}", now)
    return report


def _oidc(report: Report, provider: OIDCProvider, conn: OIDCConnection, redirect: str) -> None:
    report.facts["redirect_uri"] = redirect
    # What else to register at the IdP: its logout calls (OpenID Connect Back-Channel and
    # Front-Channel Logout 1.0).
    base = redirect.rsplit("/", 1)[0]
    report.facts["backchannel_logout_uri"] = f"{base}/backchannel-logout"
    report.facts["frontchannel_logout_uri"] = f"{base}/frontchannel-logout"
    try:
        doc: Mapping[str, Any] = provider.metadata()
    except BrokerError as error:
        report.check("discovery", False, f"{error.message} ({error.detail})")
        return
    report.check("discovery", True, f"issuer {conn.issuer} answers its discovery document")
    report.facts.update(
        authorization_endpoint=doc.get("authorization_endpoint"),
        token_endpoint=doc.get("token_endpoint"),
        jwks_uri=doc.get("jwks_uri"),
        end_session_endpoint=doc.get("end_session_endpoint"),
        backchannel_logout_supported=bool(doc.get("backchannel_logout_supported")),
        frontchannel_logout_supported=bool(doc.get("frontchannel_logout_supported")),
    )
    offered = list(doc.get("id_token_signing_alg_values_supported") or [])
    report.facts["id_token_algorithms"] = offered
    common = [a for a in conn.algorithms if a in offered] if offered else list(conn.algorithms)
    report.check(
        "algorithms",
        bool(common),
        f"ID tokens signed with {', '.join(common)}"
        if common
        else f"the IdP signs with {', '.join(offered)}; the connection allows "
        f"{', '.join(conn.algorithms)}",
    )
    methods = list(doc.get("code_challenge_methods_supported") or [])
    report.facts["pkce"] = "S256" in methods
    if "S256" not in methods:
        report.warnings.append("the IdP does not say it supports PKCE S256 (the broker sends it)")
    try:
        provider.probe()
        report.check("signing keys", True, "the IdP's signing keys were fetched")
    except BrokerError as error:
        report.check("signing keys", False, f"{error.message} ({error.detail})")
    if conn.idp_logout and not doc.get("end_session_endpoint"):
        report.warnings.append("idp_logout is on, but the IdP has no end_session_endpoint")


def _saml(report: Report, provider: SAMLProvider, base: str, now: float) -> None:
    report.facts.update(
        sp_entity_id=f"{base}/metadata",
        sp_metadata_url=f"{base}/metadata",
        acs_url=f"{base}/acs",
        slo_url=f"{base}/slo",
    )
    try:
        entity = provider.idp_entity_id()
        certificates = described(provider.signing_certificates())
    except BrokerError as error:
        report.check("metadata", False, f"{error.message} ({error.detail})")
        return
    report.check("metadata", True, f"IdP entity {entity}")
    report.facts["idp_entity_id"] = entity
    report.facts["certificates"] = certificates
    live = [c for c in certificates if c["not_after"] > now]
    report.check(
        "signing certificates",
        bool(live),
        f"{len(live)} valid signing certificate(s)" if live else "no valid signing certificate",
    )
    for cert in certificates:
        days = days_left(cert, now)
        if 0 <= days < EXPIRY_WARNING_DAYS:
            report.warnings.append(
                f"the IdP certificate {cert['subject']} expires in {days} days ({cert['expires']})"
            )
        elif days < 0:
            report.warnings.append(f"the IdP certificate {cert['subject']} has expired")
