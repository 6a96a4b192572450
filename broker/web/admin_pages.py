"""The store's admin pages, inside the control panel's iframe (``/{store}/admin/...``).

Server-rendered; the admin session is a signed token carried in every link and form
(``ctx``), never a cookie (third-party cookies are blocked in the iframe:
:mod:`broker.admin.sessions`). Every POST carries the token and its CSRF value in the body,
and an Origin other than the broker's is refused. ``frame-ancestors`` allows only
``[app].frame_ancestors``. The work is :mod:`broker.admin`.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, g, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from broker.admin.checks import test_connection
from broker.admin.forms import (
    LINK_RISKS,
    field_errors,
    fields_for,
    form_values,
    number_bounds,
    staff_form_values,
    staff_from_form,
    table_from_form,
)
from broker.admin.staff import staff_table
from broker.admin.staff import status as staff_status
from broker.admin.storefront import install_scripts, installed_scripts, remove_scripts
from broker.admin.stores import InvalidSettings, StoreAdmin
from broker.admin.tokens import issue_token
from broker.bigcommerce.webhooks import destination, missing_scopes
from broker.errors import BrokerError, CrossSiteRequest
from broker.web import starts
from broker.web.context import runtime
from broker.web.framing import allow_control_panel_frame
from broker.web.installer import installer

bp = Blueprint("admin_pages", __name__, url_prefix="/<store_key>/admin")

#: What the "Sign in with …" storefront script is called in the store's Script Manager.
SCRIPT_NAME = "Storefront SSO broker"


@bp.before_request
def _session() -> None:
    store_key = (request.view_args or {}).get("store_key", "")
    if request.method == "POST":
        origin = request.headers.get("Origin")
        base = urlsplit(runtime().broker_settings.base_url)
        if origin and origin != f"{base.scheme}://{base.netloc}":
            raise CrossSiteRequest(
                "This form was sent from another site.", detail="admin: foreign origin"
            )
        token = request.form.get("ctx")
    else:
        token = request.args.get("ctx")
    session = installer().admin_session(token, store_key)
    if request.method == "POST" and not installer().sessions.check_csrf(
        session, request.form.get("csrf")
    ):
        raise CrossSiteRequest("This form is out of date; reload the page.", detail="admin csrf")
    g.admin = session


bp.after_request(allow_control_panel_frame)


def _render(template: str, store_key: str, **context: Any) -> str:
    broker = runtime()
    install = broker.storage.get_install(store_key)
    return render_template(
        template,
        store_key=store_key,
        store_name=(install.name if install else None) or store_key,
        ctx=g.admin.token,
        csrf=g.admin.csrf,
        base_url=broker.broker_settings.base_url,
        **context,
    )


def _home(store_key: str, **context: Any) -> str:
    broker = runtime()
    admin = StoreAdmin(broker, store_key)
    tokens = broker.storage.list_api_tokens(store_key, "admin")
    scripts: list[dict[str, Any]] | None = None
    missing_hooks: list[str] | None = None
    with contextlib.suppress(BrokerError):  # the store's API may be down: the rest still shows
        client = broker.store_api(store_key)
        scripts = installed_scripts(client)
        hook_url = destination(broker.broker_settings.base_url, store_key)
        missing_hooks = missing_scopes(client, hook_url)
    return _render(
        "admin/home.html",
        store_key,
        connections=admin.connections(),
        tokens=[t for t in tokens if t.revoked_at is None],
        scripts=scripts,
        missing_hooks=missing_hooks,
        **context,
    )


@bp.get("/")
def home(store_key: str) -> str:
    return _home(store_key)


@bp.get("/connections/new")
def new_connection(store_key: str) -> str:
    kind = "saml" if request.args.get("type") == "saml" else "oidc"
    defaults = {"jit": True, "link": "confirm", "scopes": ["openid", "email", "profile"]}
    return _connection_page(store_key, kind, None, form_values(kind, defaults), {})


@bp.post("/connections/new")
def create_connection(store_key: str) -> str:
    kind = "saml" if request.form.get("type") == "saml" else "oidc"
    conn_key = request.form.get("key", "").strip()
    return _save(store_key, kind, conn_key, new=True)


@bp.get("/connections/<conn_key>")
def edit_connection(store_key: str, conn_key: str) -> str:
    described = StoreAdmin(runtime(), store_key).connection(conn_key)
    kind = str(described["type"])
    return _connection_page(store_key, kind, conn_key, form_values(kind, described), {})


@bp.post("/connections/<conn_key>")
def save_connection(store_key: str, conn_key: str) -> str:
    described = StoreAdmin(runtime(), store_key).connection(conn_key)
    return _save(store_key, str(described["type"]), conn_key, new=False)


def _save(store_key: str, kind: str, conn_key: str, *, new: bool) -> str:
    admin = StoreAdmin(runtime(), store_key)
    form = request.form.copy()
    upload = request.files.get("idp_metadata_upload")
    if kind == "saml" and upload is not None and upload.filename:
        form["idp_metadata_xml"] = upload.read(256 * 1024).decode("utf-8", "replace")
    stored = None if new else admin.stored_table(conn_key)
    try:
        admin.put_connection(conn_key, table_from_form(kind, form, stored))
    except InvalidSettings as error:
        errors = {e["key"]: e["message"] for e in error.errors}
        return _connection_page(
            store_key, kind, None if new else conn_key, dict(form.items()), errors, key=conn_key
        )
    # What the broker finds at the IdP now: endpoints, algorithms, PKCE, logout; SAML's
    # entity and certificates (the full report is the connection's Test page).
    report = test_connection(runtime(), store_key, conn_key)
    return _home(
        store_key, notice=f"Saved the connection {conn_key}.", saved=conn_key, report=report
    )


def _connection_page(
    store_key: str,
    kind: str,
    conn_key: str | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    key: str = "",
    scim_token: str | None = None,
) -> str:
    groups: list[dict[str, Any]] = []
    with contextlib.suppress(BrokerError):  # the picker is a help; the form works without it
        groups = runtime().store_api(store_key).customer_groups()
    mapped: dict[str, int] = {}
    if conn_key:
        described = StoreAdmin(runtime(), store_key).connection(conn_key)
        mapped = dict(described.get("customer_groups_by_group") or {})
    base = runtime().broker_settings.base_url
    return _render(
        "admin/connection.html",
        store_key,
        kind=kind,
        conn_key=conn_key,
        key=conn_key or key,
        fields=fields_for(kind),
        values=values,
        errors=errors,
        link_risks=LINK_RISKS,
        customer_groups=groups,
        mapped_groups=mapped,
        redirect_uri=f"{base}/{store_key}/oidc/{conn_key or '<key>'}/callback",
        oidc_base=f"{base}/{store_key}/oidc/{conn_key or '<key>'}",
        post_logout_redirect_uri=f"{base}/{store_key}/logout/done",
        saml_base=f"{base}/{store_key}/saml/{conn_key or '<key>'}",
        scim_base=f"{base}/{store_key}/scim/{conn_key}/v2" if conn_key else None,
        scim_token=scim_token,
    )


@bp.get("/connections/<conn_key>/delete")
def confirm_delete(store_key: str, conn_key: str) -> str:
    """Deleting asks first (the admin runs no script: its CSP allows none)."""
    described = StoreAdmin(runtime(), store_key).connection(conn_key)
    return _render("admin/delete.html", store_key, conn=described)


@bp.post("/connections/<conn_key>/scim-token")
def create_scim_token(store_key: str, conn_key: str) -> str:
    """A bearer token for the IdP's SCIM client, shown once (stored hashed)."""
    runtime().connection(store_key, conn_key)  # 404 for a connection the store lacks
    token, _ = issue_token(
        runtime().storage,
        store=store_key,
        kind="scim",
        label="admin",
        now=int(runtime().clock()),
        connection=conn_key,
    )
    described = StoreAdmin(runtime(), store_key).connection(conn_key)
    kind = str(described["type"])
    return _connection_page(
        store_key, kind, conn_key, form_values(kind, described), {}, scim_token=token
    )


@bp.post("/connections/<conn_key>/delete")
def delete_connection(store_key: str, conn_key: str) -> str:
    StoreAdmin(runtime(), store_key).delete_connection(conn_key)
    return _home(store_key, notice=f"Deleted the connection {conn_key}.")


@bp.get("/connections/<conn_key>/test")
def test(store_key: str, conn_key: str) -> str:
    report = test_connection(runtime(), store_key, conn_key)
    start = url_for("admin_pages.trial", store_key=store_key, conn_key=conn_key, ctx=g.admin.token)
    return _render("admin/test.html", store_key, conn_key=conn_key, report=report, start_url=start)


@bp.get("/connections/<conn_key>/trial")
def trial(store_key: str, conn_key: str) -> BaseResponse:
    """A test sign-in in a new tab: the IdP's answer is shown, nothing is changed."""
    store, conn = runtime().connection(store_key, conn_key)
    return starts.sign_in(store, conn, redirect_to=store.default_redirect, trial=True)


@bp.get("/audit")
def audit(store_key: str) -> str:
    args = request.args
    entries = runtime().storage.search_audit(
        store_key,
        limit=200,
        event=args.get("event") or None,
        connection=args.get("connection") or None,
        outcome=args.get("outcome") or None,
        since=_day(args.get("from")),
        until=_day(args.get("to"), end=True),
    )
    rows = [{**entry.__dict__, "when": _when(entry.at)} for entry in entries]
    return _render("admin/audit.html", store_key, entries=rows, filters=args)


@bp.get("/staff")
def staff(store_key: str) -> str:
    """The control-panel mapping and its form, the queue with when each change runs, the
    budget."""
    admin = StoreAdmin(runtime(), store_key)
    stored = staff_table(admin)
    return _staff_page(store_key, admin, stored, staff_form_values(stored), {})


@bp.post("/staff")
def save_staff(store_key: str) -> str:
    """``[stores.X.staff]`` saved as the admin API's PATCH saves it (same rules, the token
    sealed, the document edited as read); a file store refuses it (ReadOnlyStore)."""
    admin = StoreAdmin(runtime(), store_key)
    table = staff_from_form(request.form)
    try:
        admin.patch_settings({"staff": table})
    except InvalidSettings as error:
        errors = field_errors(error.errors, "staff")
        return _staff_page(store_key, admin, staff_table(admin), staff_form_values(table), errors)
    stored = staff_table(admin)
    return _staff_page(store_key, admin, stored, staff_form_values(stored), {}, notice="Saved.")


def _staff_page(
    store_key: str,
    admin: StoreAdmin,
    stored: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str],
    **context: Any,
) -> str:
    """The page; ``stored``: the saved table (:func:`staff_table`), ``values``: the form's."""
    broker = runtime()
    status = staff_status(broker.staff, broker.store(store_key))
    for item in [*status.get("pending", ()), *status.get("failed", ())]:
        item["when"] = _when(item.get("runs_at") or item["created_at"])
    return _render(
        "admin/staff.html",
        store_key,
        staff=status,
        read_only=admin.read_only,
        configured=stored is not None,
        values=values,
        errors=errors,
        token_set=bool(stored and stored.get("account_token_set")),
        store_connections=sorted(admin.store.connections),
        bounds=number_bounds,
        **context,
    )


def _day(value: str | None, *, end: bool = False) -> int | None:
    """A date of the form (YYYY-MM-DD, UTC) as Unix time: its start, or the next day's."""
    try:
        day = datetime.date.fromisoformat(value or "")
    except ValueError:
        return None
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    return int(start.timestamp()) + (86400 if end else 0)


def _when(at: int) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


@bp.post("/storefront/scripts")
def add_scripts(store_key: str) -> str:
    broker = runtime()
    store = broker.store(store_key)
    added = install_scripts(broker.store_api(store_key), store, broker.broker_settings.base_url)
    notice = f"Added {added} script(s) to the storefront." if added else "The scripts were there."
    return _home(store_key, notice=notice)


@bp.post("/storefront/scripts/remove")
def remove_storefront_scripts(store_key: str) -> str:
    removed = remove_scripts(runtime().store_api(store_key))
    return _home(store_key, notice=f"Removed {removed} script(s) from the storefront.")


@bp.post("/storefront/webhooks")
def add_webhooks(store_key: str) -> str:
    done = installer().register_webhooks(store_key)
    notice = "The webhooks are registered." if done else "The store refused the webhooks."
    return _home(store_key, notice=notice)


@bp.post("/tokens")
def create_token(store_key: str) -> str:
    label = (request.form.get("label") or "admin API").strip()[:64]
    token, _ = issue_token(
        runtime().storage,
        store=store_key,
        kind="admin",
        label=label,
        now=int(runtime().clock()),
    )
    return _home(store_key, new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(store_key: str, token_id: int) -> str:
    runtime().storage.revoke_api_tokens(
        store_key, "admin", int(runtime().clock()), token_id=token_id
    )
    return _home(store_key, notice="The token was revoked.")
