"""The BigCommerce app's callbacks (docs/bigcommerce-api.md, "App install"):
``/bigcommerce/auth`` and ``/load`` come from the merchant's browser in the control panel's
iframe and answer with the admin; ``/uninstall`` and ``/remove_user`` come from BigCommerce's
servers and answer JSON. The logic is :class:`broker.admin.installs.AppInstaller`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request, url_for

from broker.admin.sessions import AdminSession
from broker.web.framing import allow_control_panel_frame
from broker.web.installer import installer

bp = Blueprint("bigcommerce_app", __name__, url_prefix="/bigcommerce")
bp.after_request(allow_control_panel_frame)


def _to_admin(session: AdminSession) -> Response:
    target = url_for("admin_pages.home", store_key=session.store, ctx=session.token)
    return redirect(target, code=303)  # type: ignore[return-value]


@bp.get("/auth")
def auth() -> Response:
    args = request.args
    session = installer().install(
        code=args.get("code", ""), scope=args.get("scope", ""), context=args.get("context", "")
    )
    return _to_admin(session)


@bp.get("/load")
def load() -> Response:
    return _to_admin(installer().load(request.args.get("signed_payload_jwt", "")))


@bp.get("/uninstall")
def uninstall() -> Response:
    store = installer().uninstall(request.args.get("signed_payload_jwt", ""))
    return jsonify({"ok": True, "store": store})


@bp.get("/remove_user")
def remove_user() -> Response:
    store = installer().remove_user(request.args.get("signed_payload_jwt", ""))
    return jsonify({"ok": True, "store": store})
