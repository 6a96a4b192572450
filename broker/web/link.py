"""Account linking pages under ``/{store}/link``.

- ``script.js``: the storefront script (served by :mod:`broker.web.logout`, also at
  ``/{store}/storefront.js``). A click on any ``[data-sso-link]`` element sends the browser to
  ``nonce``; back on the storefront page, it fetches the storefront's Current Customer JWT
  (same origin) and posts it, with the nonce, to ``start``.
- ``GET nonce?return=<path>``: a top-level visit, so the broker's own (SameSite=Lax) session
  cookie can be set whatever site the storefront is on: a random nonce goes in the session,
  and the browser back to the storefront page with the nonce in the URL's fragment.
- ``POST start``: only from the storefront's pages (``Origin``, else ``Referer``; see
  :func:`broker.web.csrf.check_origin`) and with a nonce; verifies the JWT (HS256 with the
  client secret; aud, operation, store_hash, exp) and answers with a redirect to ``finish``.
  This POST is cross-site, so it carries no Lax cookie: the nonce is checked at ``finish``.
- ``GET finish?t=<ticket>``: the ticket's nonce must be the one in this browser's session (so
  another site cannot make this browser finish a start it made elsewhere); then the customer
  may use the link pages for 15 minutes. The session cookie holds a random key only: the
  customer's id and e-mail stay server-side (pending table).
- ``GET /{store}/link``: the customer's linked sign-ins, one row each, with Link buttons
  (POST, CSRF token) and Unlink, which asks first (``GET unlink/<id>``: a page naming the
  sign-in, whose button POSTs). Linking runs an IdP sign-in whose result is tied to that
  customer. "Now linked" and "unlinked" notices come from the session (set by the broker when
  it did so), never from the URL, and "now linked" only when that link is in the list.
- ``GET|POST confirm``: the ``link = "confirm"`` policy's page, where a shopper whose e-mail
  matches an existing account enters that account's storefront password once. A locked
  account (too many wrong passwords) is told before any password is asked for, with the time
  the lock ends, and no form; ``POST confirm/cancel`` ("this is not my account") drops the
  confirmation.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from datetime import UTC, datetime

from babel.dates import format_date, format_datetime, format_time
from flask import Blueprint, redirect, request, session
from werkzeug.wrappers import Response as BaseResponse

from broker.accounts import (
    FAILURE_WINDOW_SECONDS,
    MAX_FAILURES_PER_CUSTOMER,
    WrongPassword,
    attempts_key,
)
from broker.bigcommerce.api import Customer
from broker.bigcommerce.current_customer import verify_current_customer
from broker.bigcommerce.login_token import safe_redirect_path
from broker.config import Channel, StoreSettings
from broker.errors import CrossSiteRequest, FlowExpired, NotFound, TooManyAttempts
from broker.identity import Identity
from broker.signin.channels import chooser_channel
from broker.storage import keys
from broker.web import flows, pages, signin, starts
from broker.web.context import runtime
from broker.web.csrf import NONCE_FRAGMENT, check_csrf, check_origin
from broker.web.signin import audit, pending_confirmation

bp = Blueprint("link", __name__)

#: How long a storefront customer may use the link pages after proving who they are.
LINK_SESSION_SECONDS = 15 * 60
#: How long the storefront page has to come back with the nonce, and to finish after start.
LINK_NONCE_SECONDS = 5 * 60
LINK_TICKET_SECONDS = 2 * 60


@bp.get("/<store_key>/link/nonce")
def nonce(store_key: str) -> BaseResponse:
    """Bind a new nonce to this browser (its session), and hand it to the storefront page."""
    broker = runtime()
    store = broker.store(store_key)
    channel = _channel(store)
    value = secrets.token_urlsafe(32)
    session["link_nonce"] = {
        "store": store.key,
        "digest": flows.digest(value),
        "until": int(broker.clock()) + LINK_NONCE_SECONDS,
        "channel": channel.id,
    }
    pages.remember_locale()  # the storefront's language, for the link pages and the IdP
    back = safe_redirect_path(request.args.get("return"), channel.default_redirect)
    return redirect(f"{channel.storefront_url}{back}#{NONCE_FRAGMENT}={value}", code=303)


@bp.post("/<store_key>/link/start")
def start(store_key: str) -> BaseResponse:
    broker = runtime()
    store = broker.store(store_key)
    channel = _channel(store)
    check_origin([channel.storefront_url])
    given = request.form.get("nonce", "")
    if len(given) != 43:  # token_urlsafe(32)
        raise CrossSiteRequest(
            "This page was opened in an unexpected way, so nothing was done. Start again "
            "from your account page on the store.",
            detail="link start without a nonce",
        )
    customer = verify_current_customer(
        request.form.get("customer_jwt", ""),
        client_id=store.client_id,
        client_secret=store.client_secret,
        store_hash=store.store_hash,
        now=int(broker.clock()),
    )
    ticket = secrets.token_urlsafe(32)
    broker.storage.save_pending(
        keys.link_ticket(ticket),
        {
            "store": store.key,
            "customer_id": customer.id,
            "email": customer.email,
            "nonce": flows.digest(given),
            "channel": channel.id,
        },
        expires_at=int(broker.clock()) + LINK_TICKET_SECONDS,
    )
    return redirect(f"/{store.key}/link/finish?t={ticket}", code=303)


@bp.get("/<store_key>/link/finish")
def finish(store_key: str) -> BaseResponse:
    broker = runtime()
    store = broker.store(store_key)
    now = int(broker.clock())
    ticket = request.args.get("t", "")
    record = broker.storage.take_pending(keys.link_ticket(ticket), now) if ticket else None
    if record is None or record.get("store") != store.key:
        raise FlowExpired(
            "This page has expired. Start again from your account page on the store.",
            detail="link ticket unknown, expired or used",
        )
    bound = session.pop("link_nonce", None)
    if not (
        isinstance(bound, dict)
        and bound.get("store") == store.key
        and bound.get("until", 0) >= now
        and bound.get("channel", record.get("channel")) == record.get("channel")
        and hmac.compare_digest(str(bound.get("digest", "")), str(record.get("nonce", "")))
    ):
        raise CrossSiteRequest(
            "This page was not opened from the store in this browser, so nothing was done. "
            "Start again from your account page on the store.",
            detail="link finish: nonce not bound to this browser",
        )
    language = session.get(pages.SESSION_LOCALE)
    session.clear()  # a new person: nothing of a previous session carries over, but the
    if isinstance(language, str):  # language the storefront asked for at the first step
        session[pages.SESSION_LOCALE] = language
    key = secrets.token_urlsafe(32)
    broker.storage.save_pending(
        keys.link_session(key),
        {
            "store": store.key,
            "customer_id": record["customer_id"],
            "email": record["email"],
            "channel": record.get("channel"),
        },
        expires_at=now + LINK_SESSION_SECONDS,
    )
    session["link"] = key
    return redirect(f"/{store.key}/link", code=303)


@bp.get("/<store_key>/link")
def manage(store_key: str) -> str:
    broker = runtime()
    store = broker.store(store_key)
    customer_id, email = _linking_customer(store)
    links = broker.storage.links_for_customer(store.key, customer_id)
    linked_conns = {link.connection for link in links}
    just_linked = session.pop("just_linked", None)
    return pages.render(
        "link.html",
        store,
        email=email,
        links=links,
        available=[c for c in store.connections.values() if c.key not in linked_conns],
        just_linked=store.connections.get(just_linked) if just_linked in linked_conns else None,
        just_unlinked=session.pop("just_unlinked", None) is True,
        when=_when,
    )


def _when(timestamp: int) -> str:
    """A Unix time as a date and time in the page's language (UTC, said so)."""
    moment, lang = datetime.fromtimestamp(timestamp, UTC), pages.current_locale()
    day = format_date(moment, "medium", locale=lang)
    return f"{day} {format_time(moment, 'short', tzinfo=UTC, locale=lang)} UTC"


@bp.get("/<store_key>/link/unlink/<int:link_id>")
def unlink_form(store_key: str, link_id: int) -> str:
    """Ask before unlinking: the sign-in named, one button to do it, one to keep it."""
    broker = runtime()
    store = broker.store(store_key)
    customer_id, email = _linking_customer(store)
    link = next(
        (x for x in broker.storage.links_for_customer(store.key, customer_id) if x.id == link_id),
        None,
    )
    if link is None:
        raise NotFound("That sign-in is not linked to your account.", detail=f"link={link_id}")
    return pages.render("unlink_confirm.html", store, email=email, link=link, when=_when)


@bp.post("/<store_key>/link/connect/<conn_key>")
def connect(store_key: str, conn_key: str) -> BaseResponse:
    check_csrf()
    store, conn = runtime().connection(store_key, conn_key)
    customer_id, _ = _linking_customer(store)
    channel = store.channel(_linking_channel(store)) or store.default_channel
    return starts.sign_in(
        store,
        conn,
        redirect_to=channel.default_redirect,
        link_customer_id=customer_id,
        channel_id=channel.id,
    )


@bp.post("/<store_key>/link/unlink/<int:link_id>")
def unlink(store_key: str, link_id: int) -> BaseResponse:
    check_csrf()
    broker = runtime()
    store = broker.store(store_key)
    customer_id, _ = _linking_customer(store)
    link = next(
        (x for x in broker.storage.links_for_customer(store.key, customer_id) if x.id == link_id),
        None,
    )
    if link is None or not broker.storage.delete_link(store.key, link_id, customer_id=customer_id):
        raise NotFound("That sign-in is not linked to your account.", detail=f"link={link_id}")
    # Remembered, so that the next automatic link does not undo the customer's choice.
    now = int(broker.clock())
    broker.storage.record_unlink(store.key, link.connection, link.subject, customer_id, now)
    audit(store, "unlink", "ok", customer_id=customer_id, detail=f"link {link_id}")
    session["just_unlinked"] = True
    return redirect(f"/{store.key}/link", code=303)


@bp.get("/<store_key>/link/confirm")
def confirm_form(store_key: str) -> str | tuple[str, int, dict[str, str]]:
    broker = runtime()
    store = broker.store(store_key)
    record = pending_confirmation(store)
    customer = Customer.from_api(record["customer"])
    now = int(broker.clock())
    failures = broker.storage.failures(attempts_key(store.key, customer.id), now)
    if failures >= MAX_FAILURES_PER_CUSTOMER:
        # Locked before any password is asked for: the lock's end is at most a window away.
        until = _locked_until(store, customer.id, now) or now + FAILURE_WINDOW_SECONDS
        return _locked_page(store, customer.email, record["connection"], until, now)
    return _confirm_page(store, customer.email, record["connection"])


@bp.post("/<store_key>/link/confirm/cancel")
def confirm_cancel(store_key: str) -> str:
    """ "This is not my account": the confirmation is dropped, nothing is linked."""
    check_csrf()
    store = runtime().store(store_key)
    with contextlib.suppress(FlowExpired):  # already gone: the same page
        pending_confirmation(store, take=True)
    session.pop("confirm", None)
    return pages.render("confirm_cancelled.html", store)


@bp.post("/<store_key>/link/confirm")
def confirm(store_key: str) -> BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]:
    check_csrf()
    broker = runtime()
    store = broker.store(store_key)
    record = pending_confirmation(store)
    conn = store.connections[record["connection"]]
    identity = Identity.from_record(record["identity"])
    customer = Customer.from_api(record["customer"])
    now = int(broker.clock())
    try:
        return signin.confirm(store, record, request.form.get("password", ""))
    except TooManyAttempts as locked:
        until = now + (locked.retry_after or FAILURE_WINDOW_SECONDS)
        session["confirm_locked"] = {"store": store.key, "customer": customer.id, "until": until}
        audit(store, "link", "locked", conn=conn.key, identity=identity, customer_id=customer.id)
        return _locked_page(store, customer.email, conn.key, until, now, message=locked.message)
    except WrongPassword as wrong:
        audit(
            store,
            "link",
            "wrong_password",
            conn=conn.key,
            identity=identity,
            customer_id=customer.id,
        )
        if wrong.attempts_left == 0:
            until = now + FAILURE_WINDOW_SECONDS
            session["confirm_locked"] = {
                "store": store.key,
                "customer": customer.id,
                "until": until,
            }
            page, _, headers = _locked_page(store, customer.email, conn.key, until, now, wrong=True)
            return page, wrong.status, headers
        page = _confirm_page(store, customer.email, conn.key, error=wrong.attempts_left)
        return page, wrong.status


def _confirm_page(store: StoreSettings, email: str, conn_key: str, error: int | None = None) -> str:
    return pages.render(
        "confirm.html",
        store,
        email=email,
        connection=store.connections[conn_key],
        attempts_left=error,
        locked_until=None,
    )


def _locked_until(store: StoreSettings, customer_id: int, now: int) -> int | None:
    """When this browser was told the lock ends (the session), if it is still ahead."""
    told = session.get("confirm_locked")
    if (
        isinstance(told, dict)
        and told.get("store") == store.key
        and told.get("customer") == customer_id
        and isinstance(told.get("until"), int)
        and told["until"] > now
    ):
        return int(told["until"])
    return None


def _locked_page(
    store: StoreSettings,
    email: str,
    conn_key: str,
    until: int,
    now: int,
    *,
    message: str | None = None,
    wrong: bool = False,
) -> tuple[str, int, dict[str, str]]:
    """The confirmation page of a locked account: the lock's end (in UTC, and in the
    browser's own time zone by the page's one script), no password field."""
    pages.allow_page_script()
    moment = datetime.fromtimestamp(until, UTC)
    lang = pages.current_locale()
    page = pages.render(
        "confirm.html",
        store,
        email=email,
        connection=store.connections[conn_key],
        attempts_left=0 if wrong else None,
        locked_until=moment,
        locked_until_text=f"{format_datetime(moment, 'HH:mm', tzinfo=UTC, locale=lang)} UTC",
        locked_minutes=max(1, -(-(until - now) // 60)),
        locked_message=pages.shown_message(TooManyAttempts, message) if message else None,
    )
    return page, TooManyAttempts.status, {"Retry-After": str(max(1, until - now))}


def _channel(store: StoreSettings) -> Channel:
    """The storefront linking from: ``?channel=ID`` (its script says so), else the default."""
    return chooser_channel(store, requested=request.args.get("channel"), redirect_to=None)


def _linking_channel(store: StoreSettings) -> int | None:
    key = session.get("link")
    broker = runtime()
    data = (
        broker.storage.peek_pending(keys.link_session(key), int(broker.clock()))
        if isinstance(key, str)
        else None
    )
    channel = (data or {}).get("channel")
    return channel if isinstance(channel, int) else None


def _linking_customer(store: StoreSettings) -> tuple[int, str]:
    """The storefront customer this browser proved to be (kept server-side, by a random key
    in the session: no personal data in the cookie)."""
    key = session.get("link")
    broker = runtime()
    data = (
        broker.storage.peek_pending(keys.link_session(key), int(broker.clock()))
        if isinstance(key, str)
        else None
    )
    if data is None or data.get("store") != store.key:
        raise FlowExpired(
            "Open this page from your account page on the store (you may need to sign in "
            "to the store again).",
            detail="no storefront customer in the link session",
        )
    return int(data["customer_id"]), str(data.get("email") or "")
