"""The SSRF policy's last line: the transport the broker talks to IdPs through connects to
loopback only when the connection's issuer is on loopback, checked after name resolution."""

from __future__ import annotations

import httpx
import pytest
from flask import Flask

from broker.upstream.egress import GuardedTransport
from tests.support.servers import serve_in_thread


def test_the_guarded_transport_connects_to_loopback_only_when_allowed() -> None:
    hits: list[str] = []
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        hits.append("/")
        return "ok"

    with serve_in_thread(app) as server:
        by_name = server.url.replace("127.0.0.1", "localhost")  # resolved, then refused
        for url in (server.url, by_name):
            guarded = httpx.Client(transport=GuardedTransport(allow_loopback=False))
            with guarded as client, pytest.raises(httpx.ConnectError):
                client.get(url + "/")
        assert hits == [], "no request reached the server"
        with httpx.Client(transport=GuardedTransport(allow_loopback=True)) as client:
            assert client.get(server.url + "/").text == "ok"
        assert hits == ["/"]
