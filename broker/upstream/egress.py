"""Where the broker may connect on an identity provider's word: its SSRF policy.

A connection's issuer comes from the configuration, but everything else about the IdP comes
from the IdP: its discovery document names the token, JWKS, userinfo and logout endpoints, and
a hostile or careless document could point them at the broker's own network (a cloud metadata
service at 169.254.169.254, a database on 10.0.0.5, an admin port on 127.0.0.1). The rule:

- every endpoint is an absolute ``https`` URL without credentials in it; ``http`` only when the
  endpoint and the configured issuer are both on loopback (the tests' and ``broker demo``'s
  IdPs on 127.0.0.1);
- the broker connects only to *public* addresses: never a private (10/8, 172.16/12,
  192.168/16, fc00::/7), shared (100.64/10), link-local (169.254/16 with the metadata
  address, fe80::/10), unspecified, multicast, reserved or documentation address, nor one of
  those wrapped in IPv6 (``::ffff:a.b.c.d``, NAT64, 6to4); loopback only when the configured
  issuer is itself on loopback. Other hosts than the issuer's are fine: Google's issuer is
  accounts.google.com, its token endpoint oauth2.googleapis.com, its keys www.googleapis.com.

:func:`endpoint_problem` applies the rule to a URL (resolving its host) so that discovery can
refuse a bad document at once, naming the endpoint. :class:`GuardedTransport` applies it again
to the address each connection actually goes to, after DNS, so that a name which resolves to
a public address when checked and to an internal one when used (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOOPBACK_NAMES = frozenset({"localhost"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback address literal (what the configuration allows http on)."""
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    address = _literal(host)
    return address is not None and _unwrap(address).is_loopback


def address_allowed(address: IPAddress, *, allow_loopback: bool) -> bool:
    """Whether the broker may connect to ``address`` for an identity provider."""
    address = _unwrap(address)
    if address.is_loopback:
        return allow_loopback
    if address.is_multicast or (
        isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    ):
        return False
    return address.is_global


def endpoint_problem(url: object, *, fetched: bool, allow_loopback: bool) -> str | None:
    """Why the broker refuses ``url`` as an IdP endpoint, or None when it is acceptable.

    ``fetched``: the broker itself connects to it (token, JWKS, userinfo), so its addresses are
    checked too; the browser alone visits the others (authorization, end session).
    The reason names no part of the URL: it goes to the log.
    """
    if not isinstance(url, str):
        return "not a URL"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "not an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL"
    if parts.scheme == "http" and not (allow_loopback and is_loopback_host(host)):
        return "not https"
    if not fetched:
        return None
    for address in _addresses(host, port or (443 if parts.scheme == "https" else 80)):
        if not address_allowed(address, allow_loopback=allow_loopback):
            return f"its host is {_describe(address)}"
    return None


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting only to addresses :func:`address_allowed` admits.

    The check runs on the address the socket is opened to, after name resolution; TLS still
    verifies the certificate against the URL's host name.
    """

    def __init__(self, *, allow_loopback: bool, retries: int = 1) -> None:
        super().__init__(retries=retries)
        limits = httpx.Limits()
        # httpx builds its pool in __init__ and has no parameter for its network backend: the
        # pool is rebuilt the same way with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=retries,
            network_backend=_GuardedBackend(allow_loopback=allow_loopback),
        )


class _GuardedBackend(httpcore.SyncBackend):
    def __init__(self, *, allow_loopback: bool) -> None:
        self._allow_loopback = allow_loopback

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _addresses(host, port)
        if not addresses:
            raise httpcore.ConnectError("the host name does not resolve")
        refused = [
            a for a in addresses if not address_allowed(a, allow_loopback=self._allow_loopback)
        ]
        if refused:
            raise httpcore.ConnectError(f"refused: the host is {_describe(refused[0])}")
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = httpcore.ConnectError(str(exc))
        raise error or httpcore.ConnectError("no address to connect to")


def _addresses(host: str, port: int) -> list[IPAddress]:
    """The host's addresses: itself when it is a literal, else what DNS says (empty when the
    name does not resolve: connecting will fail anyway, and be checked again then)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        address = _literal(str(info[4][0]))
        if address is not None and address not in found:
            found.append(address)
    return found


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def _describe(address: IPAddress) -> str:
    address = _unwrap(address)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private-network address"
    return "not a public address"
