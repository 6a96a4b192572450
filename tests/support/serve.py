"""`broker serve` as operators run it: gunicorn in a subprocess on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support import toml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker_serve(
    workdir: Path,
    document: Callable[[str], dict[str, Any]],
    *,
    env: dict[str, str] | None = None,
    workers: int = 2,
    threads: int = 4,
    port: int | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Write the config that ``document(base_url)`` returns, serve it, yield the base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    config = workdir / "broker.toml"
    config.write_text(toml.dumps(document(url)))
    log_path = workdir / "server.log"
    with log_path.open("w+") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            _wait_ready(url, process, log_path)
            yield url
        finally:
            stop_server(process)
            # Captured, so pytest shows the server's last lines with a failing test only.
            log.seek(0)
            print("".join(log.readlines()[-40:]))


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn at once: SIGINT is its quick shutdown (SIGTERM, the graceful one, waits
    for its workers' kept-alive connections, seconds per test), then SIGKILL after 20 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"broker serve did not become ready:\n{log_path.read_text()}")
