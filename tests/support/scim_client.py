"""scim2-client over ``httpx``: its own engine needs the ``httpx2`` fork, and with that
installed Authlib switches to it (and then refuses the broker's ``httpx`` transports), so the
tests drive scim2-tester through this small engine instead (the same four methods)."""

from __future__ import annotations

from typing import Any

import httpx
from scim2_client.client import BaseSyncSCIMClient


class HttpxSCIMClient(BaseSyncSCIMClient):  # type: ignore[misc]
    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        url = self.client.build_request("GET", endpoint).url
        same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
        return same_origin and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)
