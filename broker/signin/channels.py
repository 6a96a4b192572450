"""Which of a store's channels (storefronts) a sign-in is for, and where on it it lands.

A store may have several storefronts, one per channel, each on its own domain, Stencil or
headless Catalyst (docs/bigcommerce-api.md, "Multi-storefront and headless"). E-mails are
unique per channel, so the channel decides which customer an identity signs in as, the
``channel_id`` of the login JWT, and the storefront the browser is sent to. The rules, in
order (no Flask here; the web layer passes the query's values):

1. ``channel=ID`` names the channel. An id the store does not have, or a channel the
   connection is not offered on (its ``channels`` key), is :class:`~broker.errors.NotFound`:
   a 404 page, raised before anything is stored.
2. Else an absolute ``redirect_to`` on one of the store's storefronts chooses that channel
   (the longest storefront URL that contains it, since a storefront may live under a path).
3. Else the connection's home: the store's default channel, or the first of the
   connection's ``channels`` when it is not offered on the default one.

``redirect_to`` then becomes a path on the chosen channel's storefront: an absolute URL on that
very storefront becomes its path (query and fragment kept); an absolute URL anywhere else is
dropped, so the shopper lands on the channel's ``default_redirect`` (the open-redirect rules of
:func:`broker.bigcommerce.login_token.safe_redirect_path` apply to what is left, as before).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from broker.config import Channel, Connection, StoreSettings
from broker.errors import NotFound

_CHANNEL_ID = re.compile(r"[1-9][0-9]{0,9}")


def channel_for(store: StoreSettings, conn: Connection, channel_id: int | None) -> Channel:
    """The store's channel ``channel_id`` on which ``conn`` is offered; NotFound otherwise.
    None: the connection's home (rule 3). The one rule of where a connection signs in: the
    start of a sign-in and its completion both apply it."""
    if channel_id is None and not conn.offered_on(store.channel_id):
        channel_id = conn.channels[0]
    channel = store.channel(channel_id)
    if channel is None or not conn.offered_on(channel.id):
        raise NotFound(
            "This sign-in option is not available on this storefront.",
            detail=f"channel {channel_id} unknown or not offered by connection {conn.key}",
        )
    return channel


def choose_channel(
    store: StoreSettings, conn: Connection, *, requested: str | None, redirect_to: str | None
) -> tuple[Channel, str | None]:
    """The channel a sign-in starting now is for, and ``redirect_to`` as a path on its
    storefront (None: none usable). ``requested``: the ``channel`` query parameter (empty or
    absent: none)."""
    channel = channel_for(store, conn, _wanted(store, requested, redirect_to))
    return channel, path_on(store, channel, redirect_to)


def chooser_channel(
    store: StoreSettings, *, requested: str | None, redirect_to: str | None
) -> Channel:
    """The channel of the page listing the store's sign-in options (rules 1 and 2 without a
    connection; else the default channel); NotFound for a channel the store does not have."""
    channel = store.channel(_wanted(store, requested, redirect_to))
    if channel is None:
        raise NotFound(
            "This store has no such storefront.", detail="channel parameter names no channel"
        )
    return channel


def _wanted(store: StoreSettings, requested: str | None, redirect_to: str | None) -> int | None:
    """The channel id rules 1 and 2 give (None: neither says)."""
    if requested:
        if not _CHANNEL_ID.fullmatch(requested):
            raise NotFound(
                "This sign-in option is not available on this storefront.",
                detail="channel parameter is not a channel id",
            )
        return int(requested)
    found = channel_of_url(store, redirect_to) if redirect_to else None
    return found.id if found is not None else None


def channel_of_url(store: StoreSettings, url: str) -> Channel | None:
    """The channel whose storefront ``url`` is on (absolute URLs only), if any."""
    matches = [c for c in store.channels.values() if _remainder(c.storefront_url, url) is not None]
    return max(matches, key=lambda c: len(urlsplit(c.storefront_url).path), default=None)


def path_on(store: StoreSettings, channel: Channel, value: str | None) -> str | None:
    """``value`` as a path on the channel's storefront: a relative one as it is (checked
    later), an absolute URL on this storefront (and no other channel's within it) as its
    path, anything else None."""
    if value is None:
        return None
    parts = urlsplit(value)
    if not (parts.scheme or parts.netloc):
        return value
    owner = channel_of_url(store, value)
    return _remainder(channel.storefront_url, value) if owner == channel else None


def _remainder(storefront_url: str, url: str) -> str | None:
    """What follows the storefront's own URL in ``url`` (a path, query and fragment), or None
    when ``url`` is not on that storefront: scheme and host (with port, and any user info)
    equal without regard to case, and the storefront's path a whole-segment prefix."""
    base, parts = urlsplit(storefront_url), urlsplit(url)
    if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return None
    prefix = base.path.rstrip("/")
    path = parts.path or "/"
    if prefix:
        if path == prefix:
            path = "/"
        elif path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        else:
            return None
    return urlunsplit(("", "", path, parts.query, parts.fragment))
