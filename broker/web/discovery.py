"""Home-realm discovery: the chooser (``GET /{store}/login``) and the connection an e-mail's
domain belongs to, and the connection this browser used last.

- ``?email=`` (a theme that asks for the e-mail first), or the chooser's own form, which
  posts it (with its CSRF token) so that the e-mail is in no URL, no log and no history: the
  connection whose ``allowed_domains`` hold the e-mail's domain (or the store's only
  connection, when it takes any domain) is started at once, the e-mail
  handed to the IdP as a hint (OpenID Connect ``login_hint``; SAML gets none: see
  :mod:`broker.web.starts`). No connection owns the domain: the chooser again, saying so.
- The connection a sign-in was last started with is remembered in this browser: a cookie
  (``__Host-`` over https, Secure, HttpOnly, SameSite=Lax, a year) holding the connection's key
  and nothing else: never the e-mail. A value that names no connection of the store is
  ignored. "Not you?" (``?forget=1``) deletes it (:mod:`broker.web.remembered`).
"""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

from broker.config import Connection
from broker.signin.channels import chooser_channel, path_on
from broker.web import pages, sessions, starts
from broker.web.context import runtime
from broker.web.csrf import check_csrf
from broker.web.remembered import forget, remembered

MAX_EMAIL_LENGTH = 254


def email_domain(email: str) -> str | None:
    """The domain of a plausible e-mail address (one ``@``, no spaces), lower-cased."""
    email = email.strip()
    if len(email) > MAX_EMAIL_LENGTH or email.count("@") != 1 or any(c.isspace() for c in email):
        return None
    local, domain = email.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return None
    return domain.lower()


def owner_of(domain: str, connections: list[Connection]) -> Connection | None:
    """The first connection (file order) whose ``allowed_domains`` hold ``domain``; else the
    only connection offered when it takes any domain (nothing to choose between)."""
    owner = next((c for c in connections if domain in c.allowed_domains), None)
    if owner is None and len(connections) == 1 and not connections[0].allowed_domains:
        owner = connections[0]
    return owner


def choose(store_key: str) -> Response:
    """The chooser, or straight to the connection that owns the e-mail's domain."""
    store = runtime().store(store_key)
    wanted = request.args.get("redirect_to")
    channel = chooser_channel(store, requested=request.args.get("channel"), redirect_to=wanted)
    redirect_to = sessions.landing_redirect(store, path_on(store, channel, wanted), channel)
    connections = [c for c in store.connections.values() if c.offered_on(channel.id)]
    pages.page_store()  # the page's language is the store's
    pages.remember_locale()
    if request.method == "POST":
        check_csrf()  # the chooser's own form (the e-mail then stays out of every URL)
    email = request.values.get("email", "")
    email_error = None
    if email:
        domain = email_domain(email)
        owner = owner_of(domain, connections) if domain else None
        if owner is not None:
            return starts.sign_in(
                store, owner, redirect_to=redirect_to, channel_id=channel.id, login_hint=email
            )
        email_error = (
            pages.gettext("Enter your e-mail address as name@company.com.")
            if domain is None
            else pages.gettext(
                "No company sign-in of this store is set up for %(domain)s. Choose yours "
                "below, or sign in with your password.",
                domain=domain,
            )
        )
    forgetting = request.args.get("forget") == "1"
    last = None if forgetting or email else remembered(store, channel)
    locales = " ".join(pages.requested_locales()) or None
    body = pages.render(
        "choose.html",
        store,
        channel=channel,
        redirect_to=redirect_to,
        # The channel's own id in the links, so each signs in where the page was opened.
        channel_parameter=None if channel.id == store.channel_id else channel.id,
        connections=connections,
        remembered=last,
        discoverable=any(c.allowed_domains for c in connections),
        email=email[:MAX_EMAIL_LENGTH],
        email_error=email_error,
        locale_parameter=locales,
    )
    response = Response(body, mimetype="text/html")
    if forgetting:
        forget(response, store)
    return response
