"""The broker's error tree.

Every failure a shopper can meet is one of these classes; the web layer turns each into an
HTML page with the class's status, title and message, plus a short reference id that is also
in the log line. Messages are shown to shoppers: they never carry tokens, secrets or raw IdP
answers.

    BrokerError
    ├── ConfigError                  the configuration file is wrong (start-up, `broker check`)
    ├── NotFound                     unknown store or connection in the URL
    ├── FlowError                    the browser's sign-in flow itself is wrong
    │   ├── FlowExpired              state unknown, expired or already used (replay)
    │   ├── StateMismatch            the flow was started in another browser
    │   ├── InvalidStorefrontToken   a Current Customer JWT that does not verify
    │   └── CrossSiteRequest         a state-changing request another site's page made
    ├── UpstreamError                the identity provider's side
    │   ├── IdPDeniedError           the IdP answered with an `error` parameter
    │   ├── InvalidResponse          a token, claim or answer failed a check
    │   ├── IdPUnavailable           the IdP could not be reached or answered garbage
    │   └── UpstreamMisconfigured    the connection and the IdP disagree (entity, issuer)
    ├── AppCallbackRefused           a BigCommerce app callback that cannot be trusted
    ├── AdminDenied                  no (or no longer a) right to this store's admin
    ├── PolicyDenied                 the identity is valid but may not sign in here
    │   ├── AccessRevoked            deprovisioned by the company's IdP (SCIM)
    │   ├── EmailNotAllowed          missing, unverified, or outside allowed_domains
    │   ├── NoCustomer               no customer and just-in-time creation is off
    │   └── TooManyAttempts          too many wrong passwords: locked for a while
    ├── BigCommerceError             the store's API
    │   ├── RateLimited              429 past our deadline (carries retry_after)
    │   └── BigCommerceUnavailable   timeouts, 5xx, unexpected 4xx
    └── StorageError                 the broker's database cannot be used
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of every error the broker raises on purpose."""

    status = 500
    title = "Sign-in failed"
    #: A stable, machine-readable code for logs and problem+json bodies.
    code = "broker_error"
    #: Seconds after which trying again makes sense (sent as Retry-After), if known.
    retry_after: int | None = None

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Extra context for the log line only (never shown; never a secret).
        self.detail = detail


class ConfigError(BrokerError):
    """The configuration has one or more problems, each naming its key."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid configuration")


class NotFound(BrokerError):
    status = 404
    title = "Not found"
    code = "not_found"


class FlowError(BrokerError):
    status = 400
    title = "This sign-in could not be completed"
    code = "flow_error"


class FlowExpired(FlowError):
    code = "flow_expired"


class StateMismatch(FlowError):
    code = "state_mismatch"


class InvalidStorefrontToken(FlowError):
    code = "invalid_storefront_token"


class CrossSiteRequest(FlowError):
    """The request came from a page of another site than the store's (its Origin or Referer
    says so), or lacks the proof that this browser started it: refused before any effect."""

    status = 403
    title = "This request did not come from the store"
    code = "cross_site_request"


class UpstreamError(BrokerError):
    status = 400
    title = "Your identity provider's answer was not accepted"
    code = "upstream_error"


class IdPDeniedError(UpstreamError):
    status = 401
    title = "Your identity provider did not sign you in"
    code = "idp_denied"


class InvalidResponse(UpstreamError):
    code = "invalid_response"


class IdPUnavailable(UpstreamError):
    status = 502
    title = "Your identity provider is not answering"
    code = "idp_unavailable"


class UpstreamMisconfigured(UpstreamError):
    """The connection's configuration and what the IdP says do not match: an entity id not in
    the metadata, no IdP role, another issuer, two connections of a store naming one IdP.
    Trying again does not help; the store must fix it. ``detail`` says what differs."""

    status = 502
    title = "Sign-in with this identity provider is misconfigured"
    code = "upstream_misconfigured"

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(
            message
            or "Signing in with your organisation is not set up correctly for this store, so "
            "trying again will not help. Please tell the store.",
            detail=detail,
        )


class AppCallbackRefused(BrokerError):
    """A BigCommerce app callback (install, load, uninstall, remove_user) that cannot be
    trusted or does not apply: a bad signature, an expired or replayed payload, a store that
    did not install the app. Refused before any effect."""

    status = 401
    title = "This request from BigCommerce was not accepted"
    code = "app_callback_refused"


class AdminDenied(BrokerError):
    """No admin session or token, or one that no longer gives access to this store."""

    status = 401
    title = "Please open the app from the store's control panel again"
    code = "admin_denied"


class PolicyDenied(BrokerError):
    status = 403
    title = "You cannot sign in to this store this way"
    code = "policy_denied"


class AccessRevoked(PolicyDenied):
    """The company's IdP deprovisioned this person (SCIM ``active: false`` or a deleted
    user): no sign-in through any connection of the store until it provisions them again."""

    title = "Your access to this store was removed"
    code = "access_revoked"


class EmailNotAllowed(PolicyDenied):
    code = "email_not_allowed"


class NoCustomer(PolicyDenied):
    title = "No customer account for you in this store"
    code = "no_customer"


class TooManyAttempts(PolicyDenied):
    status = 429
    title = "Too many attempts"
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BigCommerceError(BrokerError):
    status = 502
    title = "The store is not answering"
    code = "bigcommerce_error"


class RateLimited(BigCommerceError):
    status = 503
    title = "The store is busy"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, detail: str | None = None) -> None:
        retry_after = max(1, retry_after)
        super().__init__(f"{message} Please try again in {retry_after} seconds.", detail=detail)
        self.retry_after = retry_after


class BigCommerceUnavailable(BigCommerceError):
    code = "bigcommerce_unavailable"


class StorageError(BrokerError):
    status = 503
    title = "The sign-in service is having trouble"
    code = "storage_error"
