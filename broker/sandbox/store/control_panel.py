"""BigCommerce's side of an app as the app and the merchant meet it: the OAuth token endpoint
and a control-panel page that opens the app in an iframe. One blueprint.

- ``POST /oauth2/token`` (``login.bigcommerce.com``'s path): the form-encoded (or JSON) body
  ``client_id, client_secret, code, context, scope, grant_type=authorization_code,
  redirect_uri``; 200 with the token answer, 400 ``{"error", "error_description"}`` when
  refused (:mod:`broker.sandbox.store.apps` has the rules);
- ``GET /manage/<hash>/apps/<client_id>?user=<id>`` (user 1, the owner, by default): the
  header "Control panel — <store name>" and ``<iframe id="app-frame" title="App">`` showing
  the app: its auth callback with a fresh install code while it is not installed, else its
  load callback with a signed payload for that user (a user not granted the app sees a
  notice instead); a form "Uninstall app" posts to
  ``POST /manage/<hash>/apps/<client_id>/uninstall?user=<id>``, which uninstalls (the app's
  uninstall callback is called server to server) and redirects (303) to the page again.

The page works with third-party cookies blocked: it sets no cookie and reads none, and the
app inside the iframe (another site) gets everything it needs in the iframe's URL. It sends no
``X-Frame-Options`` and no CSP, like a page that frames other sites.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request
from werkzeug.utils import redirect
from werkzeug.wrappers import Response as BaseResponse

from broker.sandbox.store.apps import OAuthError
from broker.sandbox.store.installs import OWNER_ID
from broker.sandbox.store.model import SandboxError, SandboxNotFound
from broker.sandbox.store.web import TEMPLATES, error_status, json_response, sandbox_state

control_panel = Blueprint("control_panel", __name__, template_folder=str(TEMPLATES))

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@control_panel.errorhandler(SandboxError)
def _sandbox_error(error: SandboxError) -> Response:
    html = render_template("store/control_panel_error.html", message=str(error))
    return Response(html, error_status(error), mimetype="text/html")


@control_panel.post("/oauth2/token")
def token() -> Response:
    try:
        form = _token_form()
        answer = sandbox_state().exchange_token(form)
    except OAuthError as refused:
        return json_response(refused.to_json(), 400, _NO_STORE)
    return json_response(answer, 200, _NO_STORE)


def _token_form() -> dict[str, str]:
    """The exchange's parameters: a form (as BigCommerce documents it) or a JSON object."""
    if request.mimetype == "application/json":
        try:
            body: Any = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise OAuthError("invalid_request", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise OAuthError("invalid_request", "the body must be a JSON object")
        return {str(k): v for k, v in body.items() if isinstance(v, str)}
    return {k: v for k, v in request.form.items()}


@control_panel.get("/manage/<store_hash>/apps/<client_id>")
def app_page(store_hash: str, client_id: str) -> Response:
    state = sandbox_state()
    store, app, user_id = state.store(store_hash), state.app(client_id), _user()
    users = state.users(store_hash)
    if user_id not in {u["id"] for u in users}:
        raise SandboxNotFound(f"no control-panel user {user_id}")
    installed = state.is_installed(store_hash, client_id)
    frame_src: str | None
    if not installed:
        frame_src = state.install_url(store_hash, client_id, user_id)
    elif state.may_use(store_hash, client_id, user_id):
        frame_src = state.load_url(store_hash, client_id, user_id)
    else:
        frame_src = None
    html = render_template(
        "store/control_panel.html",
        store=store,
        app=app,
        user_id=user_id,
        users=users,
        installed=installed,
        frame_src=frame_src,
        uninstalled=request.args.get("uninstalled"),
        action=f"/manage/{store_hash}/apps/{client_id}/uninstall?{urlencode({'user': user_id})}",
        page=f"/manage/{store_hash}/apps/{client_id}",
    )
    return Response(html, 200, mimetype="text/html", headers=_NO_STORE)


@control_panel.post("/manage/<store_hash>/apps/<client_id>/uninstall")
def uninstall(store_hash: str, client_id: str) -> BaseResponse:
    user_id = _user()
    outcome = sandbox_state().uninstall_app(store_hash, client_id, user_id)
    said = str(outcome["status"]) if outcome["status"] is not None else "unreachable"
    query = urlencode({"user": user_id, "uninstalled": said})
    return redirect(f"/manage/{store_hash}/apps/{client_id}?{query}", 303)


def _user() -> int:
    raw = request.args.get("user", str(OWNER_ID))
    if not raw.isdigit():
        raise SandboxError("user must be a control-panel user id")
    return int(raw)
