"""The storefronts of a sandbox store's other channels, under ``/s/<hash>/c/<N>/``: one
blueprint, the pages of the default storefront (:mod:`~broker.sandbox.store.storefront`) on
channel N (:mod:`~broker.sandbox.store.channels` holds the rules).

- ``GET /login/token/<jwt>``: the JWT must be for channel N (and pass every other check);
- ``GET /account.php``, ``GET /`` and any other page, with channel N's session;
- ``GET /login.php?action=logout`` (Stencil) and, on a Catalyst channel,
  ``GET /logout?redirectTo=<path>`` (only the path is kept; default ``/login``);
- ``GET /customer/current.jwt?app_client_id=``: the Current Customer JWT of channel N's
  session, 404 for a guest.

The session is the cookie ``SHOP_SESSION_<hash>_<N>`` (path ``/s/<hash>/c/<N>``): a session of
another storefront, the default one's included, is nobody here. A channel the store does not
have (or the default channel, whose storefront is ``/s/<hash>/``) is the "Store not found"
page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, render_template, request
from werkzeug.utils import redirect
from werkzeug.wrappers import Response as BaseResponse

from broker.sandbox.store import channels
from broker.sandbox.store.login import DEFAULT_REDIRECT
from broker.sandbox.store.model import SandboxNotFound, SandboxStore
from broker.sandbox.store.web import TEMPLATES, sandbox_state

channel_storefronts = Blueprint("channel_storefronts", __name__, template_folder=str(TEMPLATES))

_PREFIX = "/s/<store_hash>/c/<int:channel_id>"


@channel_storefronts.errorhandler(SandboxNotFound)
def _missing(error: SandboxNotFound) -> Response:
    html = render_template("store/missing.html", store=None, base="", customer=None)
    return Response(html, 404, mimetype="text/html")


@channel_storefronts.get(_PREFIX)
def root(store_hash: str, channel_id: int) -> BaseResponse:
    return redirect(f"/s/{store_hash}/c/{channel_id}/")


@channel_storefronts.get(_PREFIX + "/")
def home(store_hash: str, channel_id: int) -> BaseResponse:
    return _page(store_hash, channel_id, "home.html")


@channel_storefronts.get(_PREFIX + "/login/token/<path:token>")
def login_token(store_hash: str, channel_id: int, token: str) -> BaseResponse:
    _store(store_hash, channel_id)
    outcome = sandbox_state().channel_login(
        store_hash, channel_id, token, request.remote_addr, _session_id(store_hash, channel_id)
    )
    response = redirect(outcome.location)
    if outcome.session_id is not None:
        _set_session(response, store_hash, channel_id, outcome.session_id)
    return response


@channel_storefronts.get(_PREFIX + "/account.php")
def account(store_hash: str, channel_id: int) -> BaseResponse:
    if _customer(store_hash, channel_id) is None:
        return redirect(f"{_base(store_hash, channel_id)}/login.php")
    return _page(store_hash, channel_id, "account.html")


@channel_storefronts.get(_PREFIX + "/login.php")
def login_page(store_hash: str, channel_id: int) -> BaseResponse:
    _store(store_hash, channel_id)
    if request.args.get("action") == "logout":
        return _logged_out(store_hash, channel_id, "/")
    error = request.args.get("error") == "invalid_login"
    return _page(store_hash, channel_id, "login.html", invalid_login=error)


@channel_storefronts.get(_PREFIX + "/logout")
def catalyst_logout(store_hash: str, channel_id: int) -> BaseResponse:
    """Catalyst's ``/logout``: signs out, then goes to the path of ``redirectTo``."""
    store = _store(store_hash, channel_id)
    if channels.platform(store, channel_id) != "catalyst":
        return _page(store_hash, channel_id, "placeholder.html", path="/logout")
    path = urlsplit(request.args.get("redirectTo") or "/login").path or "/"
    return _logged_out(store_hash, channel_id, path if path.startswith("/") else "/" + path)


@channel_storefronts.get(_PREFIX + "/customer/current.jwt")
def current_jwt(store_hash: str, channel_id: int) -> BaseResponse:
    _store(store_hash, channel_id)
    app_client_id = request.args.get("app_client_id")
    if not app_client_id:
        return Response("app_client_id is required", 400, mimetype="text/plain")
    try:
        token = sandbox_state().channel_customer_jwt(
            store_hash, channel_id, _session_id(store_hash, channel_id), app_client_id
        )
    except SandboxNotFound:
        return Response("Unknown app", 404, mimetype="text/plain")
    if token is None:
        return Response("Not signed in", 404, mimetype="text/plain")
    return Response(token, 200, mimetype="text/plain", headers={"Cache-Control": "no-store"})


@channel_storefronts.get(_PREFIX + "/<path:rest>")
def other(store_hash: str, channel_id: int, rest: str) -> BaseResponse:
    return _page(store_hash, channel_id, "placeholder.html", path="/" + rest)


# -- helpers -----------------------------------------------------------------------------------


def _store(store_hash: str, channel_id: int) -> SandboxStore:
    """The store, when ``channel_id`` has a storefront under /c/; else SandboxNotFound."""
    store = sandbox_state().store(store_hash)
    channels.other_channel(store, channel_id)
    return store


def _base(store_hash: str, channel_id: int) -> str:
    return f"/s/{store_hash}/c/{channel_id}"


def _cookie_name(store_hash: str, channel_id: int) -> str:
    return f"SHOP_SESSION_{store_hash}_{channel_id}"


def _session_id(store_hash: str, channel_id: int) -> str | None:
    return request.cookies.get(_cookie_name(store_hash, channel_id))


def _customer(store_hash: str, channel_id: int) -> dict[str, Any] | None:
    return sandbox_state().channel_customer(
        store_hash, channel_id, _session_id(store_hash, channel_id)
    )


def _set_session(response: BaseResponse, store_hash: str, channel_id: int, value: str) -> None:
    response.set_cookie(
        _cookie_name(store_hash, channel_id),
        value,
        path=_base(store_hash, channel_id),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )


def _logged_out(store_hash: str, channel_id: int, path: str) -> BaseResponse:
    sandbox_state().end_channel_session(store_hash, channel_id, _session_id(store_hash, channel_id))
    response = redirect(_base(store_hash, channel_id) + path)
    response.delete_cookie(_cookie_name(store_hash, channel_id), path=_base(store_hash, channel_id))
    return response


def _page(store_hash: str, channel_id: int, template: str, **context: Any) -> Response:
    """A page of channel N's storefront, with who is signed in there and the SSO link (the
    store's ``sso_login_url`` with ``channel=N``)."""
    store = _store(store_hash, channel_id)
    state = sandbox_state()
    customer = _customer(store_hash, channel_id)
    company_user = state.company_user(store_hash, customer["id"]) if customer else None
    scripts_head, scripts_footer = state.storefront_scripts(store_hash, channel_id)
    html = render_template(
        f"store/{template}",
        store=store,
        base=_base(store_hash, channel_id),
        customer=customer,
        company_user=company_user,
        sso_url=_sso_link(store.sso_login_url, channel_id),
        scripts_head=scripts_head,
        scripts_footer=scripts_footer,
        channel_name=channels.channel_name(store, channel_id),
        **context,
    )
    return Response(html, 200, mimetype="text/html")


def _sso_link(url: str | None, channel_id: int) -> str | None:
    if not url:
        return None
    if "?" not in url:
        url = f"{url}?redirect_to={DEFAULT_REDIRECT}"
    return f"{url}&channel={channel_id}"
