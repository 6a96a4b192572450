"""`broker demo --app` driven over real HTTP with httpx, step by step as it prints them.

The demo runs in a subprocess, as a newcomer starts it. The merchant opens the printed
control-panel page and follows its iframe (the install), adds the printed connection with the
admin's form as a browser would post it, runs its test; then a shopper signs in at the
printed URL and lands on the storefront signed in, on either of the store's two channels.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.flows import sign_in, visit_storefront
from tests.support.serve import free_port

#: The sandbox and the IdP on ports the system picks (their defaults are fixed: tests run
#: side by side).
ANY_PORTS = ("--sandbox-port", "0", "--idp-port", "0")

#: The labelled lines of the demo's output, and what each holds.
LABELS = {
    "control_panel": "Control panel",
    "key": "Key",
    "issuer": "Issuer",
    "client_id": "Client ID",
    "client_secret": "Client secret",
    "shopper_login": "Shopper sign-in",
}


@dataclass
class Printed:
    """What `broker demo --app` printed."""

    values: dict[str, str]
    output: str

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    @property
    def broker(self) -> str:
        parts = urlsplit(self["shopper_login"])
        return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def app_demo(tmp_path: Path) -> Iterator[Printed]:
    """Run `broker demo --app` in a subprocess; yield what it printed once it is ready."""
    log = (tmp_path / "demo.log").open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "demo",
            "--app",
            "--port",
            str(free_port()),
            *ANY_PORTS,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        values = {}
        for name, label in LABELS.items():
            match = re.search(rf"^ +{re.escape(label)} +(\S+)$", output, re.MULTILINE)
            if match:
                values[name] = match.group(1)
        if len(values) != len(LABELS):
            log.seek(0)
            pytest.fail(f"broker demo --app printed:\n{output}\nstderr:\n{log.read()}")
        yield Printed(values, output)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class _Forms(HTMLParser):
    """The fields each POST form of a page would send, as a browser fills them by default."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self.forms.append((a.get("action", ""), []))
        if not self.forms:
            return
        fields = self.forms[-1][1]
        if tag == "input" and a.get("name") and a.get("type") != "file":
            if a.get("type") == "checkbox":
                if "checked" in a:
                    fields.append((a["name"], a.get("value") or "on"))
            else:
                fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._select_value = a.get("name"), None
        elif tag == "option" and self._select is not None:
            if self._select_value is None or "selected" in a:
                self._select_value = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            fields.append((self._textarea or "", ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.forms:
            fields = self.forms[-1][1]
            fields[-1] = (fields[-1][0], fields[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self.forms:
            self.forms[-1][1].append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def post_form(page: httpx.Response, action: str) -> tuple[str, list[tuple[str, str]]]:
    """The URL and default fields of the page's POST form whose action ends with ``action``."""
    parser = _Forms()
    parser.feed(page.text)
    for url, fields in parser.forms:
        if url.endswith(action):
            return urljoin(str(page.url), url), fields
    raise AssertionError(f"no form posting to {action} on {page.url}")


def link(page: httpx.Response, pattern: str) -> str:
    """The absolute URL of the first link whose tag matches ``pattern`` (an href inside)."""
    match = re.search(pattern, page.text)
    assert match, f"no link {pattern!r} on {page.url}"
    return urljoin(str(page.url), html.unescape(match.group(1)))


def test_the_printed_steps_install_the_app_and_a_shopper_signs_in(app_demo: Printed) -> None:
    broker = app_demo.broker
    sandbox = "{0.scheme}://{0.netloc}".format(urlsplit(app_demo["control_panel"]))
    assert urlsplit(broker).hostname == "localhost"  # a site of its own beside the sandbox's
    assert urlsplit(sandbox).hostname == "127.0.0.1"
    assert app_demo["key"] == "corp"
    assert app_demo["shopper_login"].endswith("/login/corp")
    store_hash = urlsplit(app_demo["shopper_login"]).path.split("/")[1]

    with (
        httpx.Client(follow_redirects=False, timeout=20, trust_env=False) as merchant,
        httpx.Client(follow_redirects=False, timeout=20, trust_env=False) as shopper,
    ):
        # 1. The control panel frames the app's install; the app opens its admin.
        panel = merchant.get(app_demo["control_panel"])
        assert panel.status_code == 200, panel.text
        frame = link(panel, r'<iframe id="app-frame"[^>]* src="([^"]+)"')
        assert frame.startswith(f"{broker}/bigcommerce/auth?"), frame
        installed = merchant.get(frame)
        assert installed.status_code == 303, installed.text
        home = merchant.get(urljoin(frame, installed.headers["location"]))
        assert home.status_code == 200, home.text
        assert f"frame-ancestors {sandbox}" in home.headers["content-security-policy"]
        assert "set-cookie" not in home.headers
        assert "Demo store" in home.text

        # 2. Add an OpenID Connect IdP with the printed values, as the form posts it.
        new = merchant.get(link(home, r'id="add-oidc" href="([^"]+)"'))
        assert new.status_code == 200, new.text
        action, fields = post_form(new, "/connections/new")
        typed = {
            "key": app_demo["key"],
            "issuer": app_demo["issuer"],
            "client_id": app_demo["client_id"],
            "client_secret": app_demo["client_secret"],
        }
        body: dict[str, list[str]] = {k: [v] for k, v in typed.items()}
        for name, value in fields:
            if name not in typed:
                body.setdefault(name, []).append(value)
        saved = merchant.post(action, data=body, headers={"Origin": broker})
        assert saved.status_code == 200, saved.text
        assert "Saved the connection corp." in saved.text, saved.text

        # 3. Test: every check passes.
        tested = merchant.get(link(saved, r'href="([^"]+/connections/corp/test\?[^"]+)"'))
        assert tested.status_code == 200, tested.text
        assert re.search(r'id="test-result">ready<', tested.text), tested.text

        # 4. A shopper signs in at the printed URL and lands on the storefront signed in.
        path = urlsplit(app_demo["shopper_login"]).path
        outcome = sign_in(shopper, broker, "alice@example.com", path=path)
        assert outcome.status == 302, outcome.response.text
        assert outcome.location.startswith(f"{sandbox}/s/{store_hash}/login/token/")
        account = visit_storefront(shopper, outcome.location)
        assert account.status_code == 200, account.text
        assert urlsplit(str(account.url)).path.endswith("/account.php")
        assert re.search(r'id="customer-email">alice@example.com<', account.text)

        # The store's second channel (Catalyst) was learned at install and signs in too.
        second = sign_in(shopper, broker, "alice@example.com", path=f"{path}?channel=2")
        assert second.status == 302, second.response.text
        assert second.location.startswith(f"{sandbox}/s/{store_hash}/c/2/login/token/")
