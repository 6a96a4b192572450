"""A sandbox store's channels: one storefront each, and the API that describes them.

Facts followed (``docs/bigcommerce-api.md``, "Multi-storefront and headless (Catalyst)" and
"App install"): every channel has its own storefront domain and its own storefront sessions;
e-mails are unique per channel; a Customer Login JWT names its ``channel_id`` (default 1) and
signs the customer in to that channel's storefront. Here:

- the default channel (1 when the store has it, else its first) is the storefront at
  ``/s/<hash>/``, as before; channel N's is at ``/s/<hash>/c/<N>/``, with the same pages and a
  session cookie of its own (:mod:`broker.sandbox.store.channel_pages`);
- ``/login/token/<jwt>`` on channel N's storefront refuses a JWT whose ``channel_id`` is
  another channel, with every check of the default storefront besides (the customer allowed
  on the channel, ...). The default storefront still takes a JWT for any channel of the
  store, as it did before channels had storefronts of their own;
- a Catalyst channel's storefront has ``/logout?redirectTo=<path>`` (Catalyst keeps only the
  path), a Stencil one ``/login.php?action=logout``;
- the API: ``GET /v2/store`` (``secure_url`` the default channel's storefront),
  ``GET /v3/channels`` (``type`` "storefront", ``platform`` "bigcommerce" or "catalyst",
  ``status`` "active") and ``GET /v3/sites?channel_id:in=`` (each site's ``url`` and its
  ``urls`` typed primary, canonical and checkout).

The pure functions come first; :class:`ChannelDesk`, a mixin of
:class:`~broker.sandbox.store.state.SandboxState`, runs them under the state's one lock.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from broker.sandbox.store import login
from broker.sandbox.store.data import StoreData
from broker.sandbox.store.login import LoginBook, LoginOutcome
from broker.sandbox.store.model import Clock, JSONDict, SandboxNotFound, SandboxStore, copy_json
from broker.sandbox.store.model import default_channel as default_channel
from broker.sandbox.store.v3 import DEFAULT_LIMIT, ApiRequest, int_list, reject_unknown_params

#: The reason in the login log when a token names another channel than the storefront's.
OTHER_CHANNEL = "channel_id is another channel: the token is for that channel's storefront"


# -- the channels of a store --------------------------------------------------------------------


def storefront_path(settings: SandboxStore, channel_id: int) -> str:
    """Where the channel's storefront lives on the sandbox: ``/s/<hash>`` or ``.../c/<N>``."""
    base = f"/s/{settings.store_hash}"
    return base if channel_id == default_channel(settings) else f"{base}/c/{channel_id}"


def other_channel(settings: SandboxStore, channel_id: int) -> None:
    """SandboxNotFound unless ``channel_id`` is a channel with a storefront under ``/c/``."""
    if channel_id not in settings.channel_ids or channel_id == default_channel(settings):
        raise SandboxNotFound(f"no channel {channel_id} with a storefront of its own")


def channel_name(settings: SandboxStore, channel_id: int) -> str:
    if settings.channel_names:
        return settings.channel_names[settings.channel_ids.index(channel_id)]
    if channel_id == default_channel(settings):
        return settings.name
    return f"{settings.name} channel {channel_id}"


def platform(settings: SandboxStore, channel_id: int) -> str:
    """``catalyst`` or ``stencil``: what serves the channel's storefront."""
    return "catalyst" if channel_id in settings.catalyst_channels else "stencil"


def channel_json(settings: SandboxStore, channel_id: int) -> JSONDict:
    """A channel as ``GET /v3/channels`` shows it."""
    return {
        "id": channel_id,
        "name": channel_name(settings, channel_id),
        "type": "storefront",
        "platform": "catalyst" if platform(settings, channel_id) == "catalyst" else "bigcommerce",
        "status": "active",
        "is_listable_from_ui": True,
        "is_visible": True,
        "external_id": "",
        "icon_url": "",
        "date_created": "2024-01-01T00:00:00Z",
        "date_modified": "2024-01-01T00:00:00Z",
    }


def site_json(settings: SandboxStore, channel_id: int, host_url: str) -> JSONDict:
    """A channel's site as ``GET /v3/sites`` shows it: its storefront's URL, three ways."""
    url = host_url.rstrip("/") + storefront_path(settings, channel_id)
    return {
        "id": 1000 + channel_id,
        "url": url,
        "channel_id": channel_id,
        "ssl_status": "dedicated",
        "is_checkout_url_customized": False,
        "urls": [{"url": url, "type": kind} for kind in ("primary", "canonical", "checkout")],
    }


def store_json(settings: SandboxStore, host_url: str) -> JSONDict:
    """``GET /v2/store``: the store's name and its default storefront."""
    url = host_url.rstrip("/") + storefront_path(settings, default_channel(settings))
    return {
        "id": settings.store_hash,
        "domain": url.split("://", 1)[-1],
        "secure_url": url,
        "control_panel_base_url": host_url.rstrip("/") + f"/manage/{settings.store_hash}",
        "status": "live",
        "name": settings.name,
        "first_name": "Sandbox",
        "last_name": "Owner",
        "address": "",
        "country": "United States",
        "country_code": "US",
        "phone": "",
        "admin_email": f"owner@{settings.store_hash}.example",
        "order_email": f"orders@{settings.store_hash}.example",
        "timezone": {"name": "Etc/UTC", "raw_offset": 0, "dst_offset": 0, "dst_correction": False},
        "language": "en",
        "currency": "USD",
        "currency_symbol": "$",
        "plan_name": "Sandbox",
        "plan_level": "Sandbox",
        "is_price_entered_with_tax": False,
        "features": {"stencil_enabled": True, "multi_storefront_enabled": True},
    }


# -- the API --------------------------------------------------------------------------------------


def get_store(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    """``GET /v2/store``."""
    return 200, store_json(st.settings, req.host_url)


def list_channels(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    """``GET /v3/channels`` (``id:in`` filters)."""
    reject_unknown_params(req.args, frozenset({"id:in", "page", "limit"}))
    wanted = int_list(req.args, "id:in") if "id:in" in req.args else None
    data = [
        channel_json(st.settings, c)
        for c in st.settings.channel_ids
        if wanted is None or c in wanted
    ]
    return 200, {"data": data, "meta": {"pagination": _pagination(len(data))}}


def list_sites(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    """``GET /v3/sites`` (``channel_id:in`` filters): one site per channel."""
    reject_unknown_params(req.args, frozenset({"channel_id:in", "page", "limit"}))
    wanted = int_list(req.args, "channel_id:in") if "channel_id:in" in req.args else None
    data = [
        site_json(st.settings, c, req.host_url)
        for c in st.settings.channel_ids
        if wanted is None or c in wanted
    ]
    return 200, {"data": data, "meta": {"pagination": _pagination(len(data))}}


def _pagination(total: int) -> JSONDict:
    return {
        "total": total,
        "count": total,
        "per_page": DEFAULT_LIMIT,
        "current_page": 1,
        "total_pages": 1,
        "links": {"current": "?page=1&limit=50"},
    }


# -- a channel's storefront sign-in --------------------------------------------------------------


def attempt_channel_login(
    st: StoreData,
    sessions: dict[str, int],
    channel_id: int,
    token: str,
    remote_addr: str | None,
    old_session: str | None,
    now: float,
    app_secrets: dict[str, str],
) -> LoginOutcome:
    """``/login/token/<jwt>`` on channel ``channel_id``'s storefront: every check of the
    default storefront (:func:`broker.sandbox.store.login.attempt_login`, whose jti and login
    logs it shares), with the token's channel required to be this one; the session goes to
    this channel's own ``sessions``."""
    book = LoginBook(
        sessions=sessions,
        used_jtis=st.login.used_jtis,
        logins=st.login.logins,
        password_logins=st.login.password_logins,
    )
    only_this = dataclasses.replace(st.settings, channel_ids=(channel_id,))
    outcome = login.attempt_login(
        book, only_this, st.customers, token, remote_addr, old_session, now, app_secrets
    )
    entry = st.login.logins[-1]
    entry["channel_id"] = channel_id  # the storefront it was tried on
    claimed = (entry.get("claims") or {}).get("channel_id", 1)
    refused_channel = entry["reason"] == "channel_id is not a channel of this store"
    if refused_channel and claimed in st.settings.channel_ids:
        entry["reason"] = OTHER_CHANNEL
    base, own = f"/s/{st.settings.store_hash}", storefront_path(st.settings, channel_id)
    location = outcome.location
    if location.startswith(base + "/"):
        location = own + location[len(base) :]
    return LoginOutcome(location, outcome.session_id)


class ChannelDesk:
    """Channel storefronts' sessions and sign-ins (a mixin of SandboxState)."""

    _lock: threading.Lock
    _clock: Clock

    def _get(self, store_hash: str) -> StoreData:  # SandboxState's
        raise NotImplementedError

    def _app_secrets(self, st: StoreData) -> dict[str, str]:  # AppDesk's
        raise NotImplementedError

    def _channel_sessions(self, store_hash: str, channel_id: int) -> dict[str, int]:
        """Channel N's storefront sessions (session id -> customer id), apart from the
        default storefront's: each storefront domain has its own."""
        every: dict[tuple[str, int], dict[str, int]] = self.__dict__.setdefault(
            "_sessions_by_channel", {}
        )
        return every.setdefault((store_hash, channel_id), {})

    def channel_login(
        self,
        store_hash: str,
        channel_id: int,
        token: str,
        remote_addr: str | None,
        old_session: str | None,
    ) -> LoginOutcome:
        with self._lock:
            st = self._get(store_hash)
            other_channel(st.settings, channel_id)
            now = self._clock() + st.faults.clock_offset
            sessions = self._channel_sessions(store_hash, channel_id)
            secrets = self._app_secrets(st)
            return attempt_channel_login(
                st, sessions, channel_id, token, remote_addr, old_session, now, secrets
            )

    def channel_customer(
        self, store_hash: str, channel_id: int, session_id: str | None
    ) -> JSONDict | None:
        """The customer signed in on channel N's storefront with this session, or None."""
        with self._lock:
            st = self._get(store_hash)
            other_channel(st.settings, channel_id)
            customer_id = self._channel_sessions(store_hash, channel_id).get(session_id or "")
            customer = st.customers.records.get(customer_id) if customer_id else None
            return copy_json(customer) if customer is not None else None

    def end_channel_session(self, store_hash: str, channel_id: int, session_id: str | None) -> None:
        with self._lock:
            self._channel_sessions(store_hash, channel_id).pop(session_id or "", None)

    def channel_customer_jwt(
        self, store_hash: str, channel_id: int, session_id: str | None, app_client_id: str
    ) -> str | None:
        """The Current Customer JWT on channel N's storefront (None: a guest there);
        SandboxNotFound for a client id neither the store's nor an installed app's."""
        with self._lock:
            st = self._get(store_hash)
            signers = login.signing_keys(st.settings, self._app_secrets(st))
            if app_client_id not in signers:
                raise SandboxNotFound(f"no app {app_client_id!r} on store {store_hash!r}")
            customer_id = self._channel_sessions(store_hash, channel_id).get(session_id or "")
            customer = st.customers.records.get(customer_id) if customer_id else None
            if customer is None:
                return None
            now = int(self._clock() + st.faults.clock_offset)
            return login.current_customer_jwt(
                st.settings, customer, now, app_client_id, signers[app_client_id]
            )

    def channel_json(self, store_hash: str) -> list[JSONDict]:
        """The store's channels as ``GET /v3/channels`` shows them."""
        with self._lock:
            settings = self._get(store_hash).settings
            return [channel_json(settings, c) for c in settings.channel_ids]
