"""One error handler: every failure becomes a clear page with a reference id and a log line.

The page shows the error's title and shopper-facing message, the reference id (also in the
log line, so support can find it), and a way back to the store. Never a stack trace, never
the request's headers or tokens. An IdP whose clock is off (:class:`ClockSkewed`) gets a page
of its own naming the difference in seconds, which its log line records too. Security headers
for every response live here too.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from broker.errors import BrokerError
from broker.events import log_event
from broker.provisioning.scim.errors import ScimError
from broker.storage import AuditEntry, keys
from broker.upstream.clock import ClockSkewed
from broker.web import pages, tracing
from broker.web.context import runtime

#: Refusals written to a store's audit log per client address in the window (the rest: log only).
REFUSALS_AUDITED_PER_IP = 30
REFUSAL_WINDOW_SECONDS = 600


def init_app(app: Flask) -> None:
    app.register_error_handler(BrokerError, _broker_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.after_request(_security_headers)


def _broker_error(error: BrokerError) -> Response:
    ref = _reference()
    skew = error if isinstance(error, ClockSkewed) else None
    log_event(
        "request.refused",
        level=logging.WARNING if error.status < 500 else logging.ERROR,
        ref=ref,
        code=error.code,
        status=error.status,
        path=request.path,
        detail=error.detail,
        # Seconds the IdP's clock is ahead of ours (negative: behind): nothing personal.
        clock_offset_seconds=skew.offset if skew else None,
    )
    _audit_refusal(error, ref)
    tracing.refused(error)
    if _wants_problem_json():
        errors = getattr(error, "errors", None)
        response = _problem(
            error.status,
            error.title,
            error.message,
            ref,
            errors=errors if isinstance(errors, list) else None,
        )
    elif skew is not None:
        response = _clock_page(skew, ref)
    else:
        response = _page(error.status, error.title, error.message, ref, type(error))
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _audit_refusal(error: BrokerError, ref: str) -> None:
    """Refusals on a store's pages go to its audit log too (never at the cost of the page)."""
    broker = runtime()
    args = request.view_args or {}
    store = broker.find_store(args.get("store_key", ""))
    if store is None:
        return
    # Only what the broker itself knows goes in: a configured connection key, the error code,
    # the reference; never text from the request.
    conn_key = args.get("conn_key")
    now = int(broker.clock())
    try:
        # Anyone can cause refusals: at most REFUSALS_AUDITED_PER_IP rows per address in the
        # window, so a flood cannot fill the audit log (the log line is still written).
        if (
            broker.storage.reserve_attempt(
                keys.audit_refusals(store.key, request.remote_addr),
                limit=REFUSALS_AUDITED_PER_IP,
                window=REFUSAL_WINDOW_SECONDS,
                now=now,
            )
            is None
        ):
            return
        broker.storage.record_audit(
            AuditEntry(
                at=now,
                store=store.key,
                event="refused",
                outcome=error.code,
                connection=conn_key if conn_key in store.connections else None,
                ip=request.remote_addr,
                detail=f"ref {ref}",
            )
        )
    except BrokerError:
        log_event("audit.failed", level=logging.ERROR, ref=ref)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    ref = _reference()
    # Every error's reference id is in the log, routing's 404 and 405 included.
    log_event(
        "request.failed" if status >= 500 else "request.refused",
        level=logging.ERROR if status >= 500 else logging.WARNING,
        ref=ref,
        code=_HTTP_CODES.get(status, "http_error"),
        status=status,
        path=request.path,
    )
    if _SCIM_PATHS.match(request.path):
        return _scim_error(status, error.description or error.name)
    if _wants_problem_json():
        return _problem(status, error.name, error.description or "", ref)
    shown = _HTTP_PAGES.get(status)
    if shown is not None:
        return _page(status, shown.title, "", ref, shown)
    return _page(status, error.name, error.description or "", ref)


#: Routing's own refusals as pages of ours (their text in the shopper's language).
_HTTP_PAGES: dict[int, type[BrokerError]] = {
    404: pages.PageNotFound,
    405: pages.MethodNotAllowed,
}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _unexpected_error(error: Exception) -> Response:
    ref = _reference()
    # The frames say where it broke; the message is left out, as it may quote a token.
    frames = traceback.extract_tb(error.__traceback__)[-5:]
    log_event(
        "request.crashed",
        level=logging.ERROR,
        ref=ref,
        error=type(error).__name__,
        path=request.path,
        where=[f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in frames],
    )
    if _wants_problem_json():
        return _problem(500, "Something went wrong", "An unexpected problem; try again.", ref)
    return _page(
        500,
        "Something went wrong",
        "The sign-in service met an unexpected problem. Please try again.",
        ref,
    )


#: Where answers are JSON: the admin API, and the app callbacks BigCommerce's servers call.
_JSON_PATHS = re.compile(r"^/(?:bigcommerce/(?:uninstall|remove_user)$|[^/]+/admin/api(?:/|$))")


#: SCIM's own error body (RFC 7644 3.12), for what the SCIM blueprint never sees (a 404 or
#: 405 of routing).
_SCIM_PATHS = re.compile(r"^/[^/]+/scim/[^/]+/v2(?:/|$)")


def _scim_error(status: int, detail: str) -> Response:
    body = ScimError(status, detail).body()
    return Response(json.dumps(body), status=status, mimetype="application/scim+json")


def _wants_problem_json() -> bool:
    return bool(_JSON_PATHS.match(request.path))


def _problem(
    status: int, title: str, message: str, ref: str, *, errors: list[Any] | None = None
) -> Response:
    """RFC 9457 problem details, with the reference id that is also in the log line."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": message,
        "ref": ref,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def _page(
    status: int,
    title: str,
    message: str,
    ref: str,
    error_class: type[BrokerError] = BrokerError,
) -> Response:
    """The store's error page, in its look and the shopper's language (broker.web.pages)."""
    return pages.error_page(status, title, message, ref, error_class=error_class)


def _clock_page(error: ClockSkewed, ref: str) -> Response:
    return pages.error_page(
        error.status,
        error.title,
        error.message,
        ref,
        error_class=type(error),
        template="clock_skew.html",
        seconds=abs(error.offset),
        ahead=error.offset > 0,
        allowed=error.allowed,
    )


def _reference() -> str:
    return tracing.request_id()


#: Every answer's headers, unless the view set its own: (name, lower-case name, value).
_SECURITY_HEADERS = tuple(
    (name, name.lower(), value)
    for name, value in (
        ("Cache-Control", "no-store"),
        # Callback URLs carry codes: never leak them to another site through Referer.
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        # No form-action: Chrome applies it to the redirect after a POST, and the Link
        # button's POST must redirect to the IdP.
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'",
        ),
    )
)
#: A year, this host only: the broker's own name says nothing of its parent domain's other
#: hosts, so no includeSubDomains (nor preload). Over https only.
_HSTS = ("Strict-Transport-Security", "strict-transport-security", "max-age=31536000")


def _security_headers(response: Response) -> Response:
    headers = response.headers
    # One look at the headers the view set, not one scan of them per header added.
    present = {name.lower() for name, _ in headers}
    wanted = _SECURITY_HEADERS
    if runtime().broker_settings.cookie_secure:
        wanted = (*wanted, _HSTS)
    for name, lower, value in wanted:
        if lower not in present:
            headers.add(name, value)
    if "x-request-id" not in present:  # the reference its log lines and error page show
        headers.add("X-Request-Id", tracing.request_id())
    return response
