"""``broker serve --keep-alive``: how long an idle connection stays open. Behind a load
balancer that reuses its connections to the broker, a connection the broker closes just as the
balancer sends a request on it is a dropped request (a 502 to the shopper), so operators set it
above the balancer's idle timeout."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import DevIdP, Sandbox
from tests.support.serve import broker_serve
from tests.support.settings import document as settings_document
from tests.support.settings import oidc_connection, store_table

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: broker\r\n\r\n"


def _answer(sock: socket.socket) -> bytes:
    """One response's head and body (``Content-Length``), or b"" if the connection closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_an_idle_connection_stays_open_for_the_keep_alive_given(
    sandbox: Sandbox, dev_idp: DevIdP, tmp_path: Path
) -> None:
    store = sandbox.add_store("idle1")

    def document(base_url: str) -> dict[str, Any]:
        corp = oidc_connection(dev_idp.url, "secret")
        return settings_document(
            base_url,
            {"acme": store_table(sandbox.url, store, connections={"corp": corp})},
            database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        )

    with broker_serve(tmp_path, document, workers=1, args=("--keep-alive", "6")) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(REQUEST)
            assert _answer(sock).startswith(b"HTTP/1.1 200")
            time.sleep(3)  # past gunicorn's default of 2 s
            sock.sendall(REQUEST)
            assert _answer(sock).startswith(b"HTTP/1.1 200"), "closed while idle"


def test_a_keep_alive_that_is_not_a_number_of_seconds_is_refused(tmp_path: Path) -> None:
    for value, message in (("-1", "not between 0 and 3600"), ("soon", "not a whole number")):
        config = str(tmp_path / "x.toml")
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "serve",
                "--config",
                config,
                "--keep-alive",
                value,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2
        assert message in run.stderr
