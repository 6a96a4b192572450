"""The storefront pages of every sandbox store, under ``/s/<store_hash>/``: one blueprint.

Thin views over :class:`~broker.sandbox.store.state.SandboxState` (whose sign-in rules are in
:mod:`broker.sandbox.store.login`); the pages are the templates in
``broker/sandbox/templates/store/``. Facts followed (``docs/bigcommerce-api.md``, "Customer
Login JWT", "Current Customer JWT", "Logout"):

- ``GET /login/token/<jwt>`` signs the customer in and redirects to ``redirect_to``, or to
  ``/login.php?error=invalid_login``, whose page says "Invalid login. Please attempt to log in
  again";
- ``GET /customer/current.jwt?app_client_id=`` answers the Current Customer JWT as plain text,
  404 for a guest (and for a client id that is neither the store's nor an installed app's),
  signed with the secret of the client id asked for;
- ``GET /login.php?action=logout`` ends the session and goes home;
- ``POST /login.php?action=check_login`` is the password form (``login_email``,
  ``login_pass``): a wrong password shows the form again with the e-mail kept and "Your email
  address or password is incorrect.".

The session is the cookie ``SHOP_SESSION_<hash>`` (HttpOnly, SameSite=Lax, path ``/s/<hash>``).
No page sends a Content-Security-Policy: like a theme without one, the page may load the
store's ``theme_script_url`` from another origin, and the enabled storefront scripts of the
Scripts API (:func:`broker.sandbox.store.scripts.storefront_tags`) in the head and footer.
An unknown store is a 404 "Store not found" page (the error handler for
:class:`~broker.sandbox.store.model.SandboxNotFound`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.utils import redirect
from werkzeug.wrappers import Response as BaseResponse

from broker.sandbox.store.login import DEFAULT_REDIRECT
from broker.sandbox.store.model import SandboxNotFound, SandboxStore, default_channel
from broker.sandbox.store.web import TEMPLATES, sandbox_state

storefront = Blueprint("storefront", __name__, template_folder=str(TEMPLATES))


@storefront.errorhandler(SandboxNotFound)
def _missing_store(error: SandboxNotFound) -> Response:
    html = render_template("store/missing.html", store=None, base="", customer=None)
    return Response(html, 404, mimetype="text/html")


@storefront.get("/s/<store_hash>")
def root(store_hash: str) -> BaseResponse:
    return redirect(f"/s/{store_hash}/")


@storefront.get("/s/<store_hash>/")
def home(store_hash: str) -> BaseResponse:
    return _page(_store(store_hash), "home.html")


@storefront.get("/s/<store_hash>/login/token/<path:token>")
def login_token(store_hash: str, token: str) -> BaseResponse:
    _store(store_hash)  # an unknown store: the "Store not found" page, whatever the token
    outcome = sandbox_state().attempt_login(
        store_hash, token, request.remote_addr, _session_id(store_hash)
    )
    response = redirect(outcome.location)
    if outcome.session_id is not None:
        return _with_session(response, store_hash, outcome.session_id)
    return response


@storefront.get("/s/<store_hash>/account.php")
def account(store_hash: str) -> BaseResponse:
    store = _store(store_hash)
    if sandbox_state().session_customer(store_hash, _session_id(store_hash)) is None:
        return redirect(f"/s/{store_hash}/login.php")
    return _page(store, "account.html")


@storefront.get("/s/<store_hash>/login.php")
def login_page(store_hash: str) -> BaseResponse:
    store = _store(store_hash)
    if request.args.get("action") == "logout":
        sandbox_state().end_session(store_hash, _session_id(store_hash))
        response = redirect(f"/s/{store_hash}/")
        response.delete_cookie(_cookie_name(store_hash), path=f"/s/{store_hash}")
        return response
    error = request.args.get("error") == "invalid_login"
    return _page(store, "login.html", invalid_login=error)


@storefront.post("/s/<store_hash>/login.php")
def check_login(store_hash: str) -> BaseResponse:
    store = _store(store_hash)
    if request.args.get("action") != "check_login":
        return Response("Unknown action", 400, mimetype="text/plain")
    email = request.form.get("login_email", "").strip()
    outcome = sandbox_state().password_login(
        store_hash, email, request.form.get("login_pass", ""), _session_id(store_hash)
    )
    if outcome.session_id is None:
        # BigCommerce shows the form again, with the e-mail kept, and a message.
        return _page(store, "login.html", wrong_password=True, email=email)
    return _with_session(redirect(outcome.location), store_hash, outcome.session_id)


@storefront.get("/s/<store_hash>/customer/current.jwt")
def current_jwt(store_hash: str) -> BaseResponse:
    store = _store(store_hash)
    app_client_id = request.args.get("app_client_id")
    if not app_client_id:
        return Response("app_client_id is required", 400, mimetype="text/plain")
    state = sandbox_state()
    if app_client_id != store.client_id and not state.is_installed(store_hash, app_client_id):
        return Response("Unknown app", 404, mimetype="text/plain")
    token = state.current_customer_jwt(store_hash, _session_id(store_hash), app_client_id)
    if token is None:
        return Response("Not signed in", 404, mimetype="text/plain")
    return Response(token, 200, mimetype="text/plain", headers={"Cache-Control": "no-store"})


@storefront.get("/s/<store_hash>/<path:rest>")
def other(store_hash: str, rest: str) -> BaseResponse:
    return _page(_store(store_hash), "placeholder.html", path="/" + rest)


# -- helpers -----------------------------------------------------------------------------------


def _store(store_hash: str) -> SandboxStore:
    """The store's settings; SandboxNotFound (the "Store not found" page) if there is none."""
    return sandbox_state().store(store_hash)


def _cookie_name(store_hash: str) -> str:
    return f"SHOP_SESSION_{store_hash}"


def _session_id(store_hash: str) -> str | None:
    return request.cookies.get(_cookie_name(store_hash))


def _page(store: SandboxStore, template: str, **context: Any) -> Response:
    """A storefront page, with who is signed in and the SSO link."""
    state = sandbox_state()
    store_hash = store.store_hash
    customer = state.session_customer(store_hash, _session_id(store_hash))
    company_user = state.company_user(store_hash, customer["id"]) if customer else None
    # the Scripts API's tags (broker.sandbox.store.scripts), for the page's channel
    scripts_head, scripts_footer = state.storefront_scripts(store_hash, default_channel(store))
    html = render_template(
        f"store/{template}",
        store=store,
        base=f"/s/{store_hash}",
        customer=customer,
        company_user=company_user,
        sso_url=_sso_link(store.sso_login_url),
        scripts_head=scripts_head,
        scripts_footer=scripts_footer,
        **context,
    )
    return Response(html, 200, mimetype="text/html")


def _with_session(response: BaseResponse, store_hash: str, new_session: str) -> BaseResponse:
    response.set_cookie(
        _cookie_name(store_hash),
        new_session,
        path=f"/s/{store_hash}",
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


def _sso_link(url: str | None) -> str | None:
    if not url:
        return None
    return url if "?" in url else f"{url}?redirect_to={DEFAULT_REDIRECT}"
