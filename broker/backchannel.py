"""HTTP clients for the broker's calls to other servers (IdPs, BigCommerce): no cookie jar.

httpx keeps the cookies every answer sets, in the client, and sends them with the client's
later requests. The broker's clients are shared: one per identity provider, one per store, for
every shopper's sign-in. A cookie an IdP's token endpoint sets (a load balancer's affinity
cookie, a session its gateway opens) would ride along with the next shopper's code; one set by
an API's edge (Cloudflare's ``__cf_bm`` on BigCommerce's) would be shared by every store the
broker serves. None of these servers needs a cookie back from a server-to-server client, so
:class:`BackChannelClient` keeps none. Taking each answer's cookies in (httpx builds a
``urllib`` request and response for the cookie jar to read) also costs some 25 µs of CPU per
answer, as much as the rest of reading it.
"""

from __future__ import annotations

from typing import Any

import httpx


class _NoCookies(httpx.Cookies):
    """Cookies that stay empty: what an answer sets is dropped."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class BackChannelClient(httpx.Client):
    """An :class:`httpx.Client` that keeps no cookies (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("a back-channel client keeps no cookies")
