"""`broker demo` with the flags that try other flows, driven over real HTTP with httpx.

The demo runs in a subprocess as a newcomer starts it (no npm, no browser). It prints one URL
(the storefront); ``--link confirm`` seeds alice@example.com with a store password, so her
first sign-in asks for it; ``--b2b`` makes her a company user on signing in.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from broker.sandbox.demo import EXISTING_PASSWORD
from tests.support.flows import sign_in, visit_storefront
from tests.support.serve import free_port

ANY_PORTS = ("--sandbox-port", "0", "--idp-port", "0")


@pytest.fixture
def run_demo(tmp_path: Path) -> Iterator[Callable[..., tuple[str, str]]]:
    """``run_demo(*flags)``: start `broker demo`; (what it printed, the broker's URL)."""
    started: list[subprocess.Popen[str]] = []

    def start(*flags: str) -> tuple[str, str]:
        # A free port can be taken by another test process before the demo binds it (the demo
        # then says so and exits): try another, a few times.
        for _ in range(3):
            outcome = attempt(flags)
            if outcome is not None:
                return outcome
        pytest.fail("broker demo: three free ports were all taken before it could bind one")

    def attempt(flags: tuple[str, ...]) -> tuple[str, str] | None:
        log = (tmp_path / f"demo-{len(started)}.log").open("w+")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", "demo", "--port", str(port), *ANY_PORTS, *flags],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                return "".join(lines), f"http://127.0.0.1:{port}"
        log.seek(0)
        stderr = log.read()
        if not lines and f"port {port} on 127.0.0.1 is in use" in stderr:
            return None
        pytest.fail(f"broker demo printed:\n{''.join(lines)}\nstderr:\n{stderr}")

    try:
        yield start
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)


def test_the_demo_prints_one_url(run_demo: Callable[..., tuple[str, str]]) -> None:
    printed, broker = run_demo()
    assert re.findall(r"https?://\S+", printed) == [
        re.search(r"Open (http://127\.0\.0\.1:\d+/s/demo1/)", printed).group(1)  # type: ignore[union-attr]
    ]
    port = broker.rsplit(":", 1)[1]
    assert f"The broker listens on port {port}" in printed
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        outcome = sign_in(http, broker, "alice@example.com", path="/demo/login/dev")
        assert outcome.status == 302, outcome.response.text  # created on the spot


def test_link_confirm_asks_the_seeded_customer_for_her_store_password(
    run_demo: Callable[..., tuple[str, str]],
) -> None:
    printed, broker = run_demo("--link", "confirm")
    assert f"store password '{EXISTING_PASSWORD}'" in printed
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        asked = sign_in(http, broker, "alice@example.com", path="/demo/login/dev")
        assert asked.status == 303, asked.response.text
        assert asked.location == "/demo/link/confirm"
        page = http.get(broker + asked.location)
        assert page.status_code == 200
        assert 'id="password"' in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        form = {"csrf_token": csrf.group(1), "password": "not-it"}
        wrong = http.post(f"{broker}/demo/link/confirm", data=form)
        assert wrong.status_code != 302  # a wrong password signs nobody in
        form["password"] = EXISTING_PASSWORD
        right = http.post(f"{broker}/demo/link/confirm", data=form)
        assert right.status_code == 302, right.text
        assert "/login/token/" in right.headers["location"]


def test_b2b_signs_example_com_in_as_a_company_user(
    run_demo: Callable[..., tuple[str, str]],
) -> None:
    printed, broker = run_demo("--b2b")
    assert "company users of Example Corp Buyers" in printed
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        outcome = sign_in(http, broker, "alice@example.com", path="/demo/login/dev")
        assert outcome.status == 302, outcome.response.text
        account = visit_storefront(http, outcome.location)
        assert account.status_code == 200, account.text
        # IdP group "buyers" -> role 1, senior buyer.
        company = re.search(r'id="customer-company">([^<]+)<', account.text)
        assert company, account.text
        assert html.unescape(company.group(1)) == "Example Corp Buyers · Senior Buyer"
