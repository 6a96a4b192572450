"""A real third-party OpenID provider for tests: node ``oidc-provider`` (pinned in
``tests/oidc_provider/package.json``) run by ``tests/oidc_provider/server.mjs`` on 127.0.0.1.

Use::

    with start_oidc_provider(clients=[...], accounts={"alice": {"email": ...}}) as op:
        op.issuer  # "http://127.0.0.1:NNNN"
        # discovery: op.issuer + "/.well-known/openid-configuration"

``clients`` is oidc-provider client metadata (``client_id``, ``client_secret``, ``redirect_uris``,
``token_endpoint_auth_method``, ``backchannel_logout_uri``, ...). Plain ``http://127.0.0.1:<port>/``
redirect URIs work for the default ``application_type`` "web". ``accounts`` maps a sub to its claims
(``email``, ``email_verified``, ``name``, ``given_name``, ``family_name``, ``groups``).

The provider shows its built-in login form (any login name, no password check; the login name is
the sub; a name that is not in ``accounts`` is refused with access_denied), never asks for
consent, requires PKCE (S256) from every client, puts the requested scopes' claims in the ID
token, and offers RP-initiated and back-channel logout (back-channel calls to 127.0.0.1 work).
:func:`complete_login` and :func:`complete_logout` drive the browser side over plain HTTP.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

PROVIDER_DIR = Path(__file__).resolve().parent.parent / "oidc_provider"
SERVER_SCRIPT = PROVIDER_DIR / "server.mjs"

STARTUP_TIMEOUT = 20.0
NPM_CI_TIMEOUT = 300.0
STOP_TIMEOUT = 5.0
_STDERR_KEEP = 200  # lines of the provider's stderr kept for error messages

_npm_lock = threading.Lock()


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not on PATH; the OpenID provider tests need node 20+ and npm"
        )
    return path


def _pinned_version() -> str:
    package = json.loads((PROVIDER_DIR / "package.json").read_text(encoding="utf-8"))
    return str(package["dependencies"]["oidc-provider"])


def _installed_version() -> str | None:
    installed = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    try:
        return str(json.loads(installed.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_modules() -> None:
    """Install the pinned provider with ``npm ci`` unless that version is already installed."""
    with _npm_lock:
        if _installed_version() == _pinned_version():
            return
        command = [
            _executable("npm"),
            "ci",
            "--prefix",
            str(PROVIDER_DIR),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
        if result.returncode != 0 or _installed_version() != _pinned_version():
            raise RuntimeError(
                f"npm ci for the test OpenID provider failed (exit {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )


class OidcProvider:
    """A running node oidc-provider; made by :func:`start_oidc_provider`."""

    issuer: str

    def __init__(self, issuer: str, process: subprocess.Popen[str], stderr: list[str]) -> None:
        self.issuer = issuer
        self._process = process
        self._stderr = stderr

    @property
    def port(self) -> int:
        port = urlsplit(self.issuer).port
        assert port is not None
        return port

    @property
    def stderr(self) -> str:
        """What the provider has written to stderr so far (its last lines)."""
        return "".join(self._stderr)

    def stop(self) -> None:
        """Stop the provider: SIGTERM, then SIGKILL if it has not exited within a few seconds."""
        _stop_process(self._process)


def _stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _drain_stderr(stream: Any, sink: list[str]) -> None:
    try:
        for line in stream:
            sink.append(line)
            if len(sink) > _STDERR_KEEP:
                del sink[0]
    except (OSError, ValueError):  # closed by stop()
        pass


def _drain_stdout(stream: Any, lines: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):
        pass
    lines.put(None)


@contextmanager
def start_oidc_provider(
    *,
    clients: list[dict[str, Any]],
    accounts: dict[str, dict[str, Any]],
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[OidcProvider]:
    """Run oidc-provider on a free port of 127.0.0.1 for the duration of the block."""
    ensure_node_modules()
    env = dict(os.environ)
    env["OIDC_PROVIDER_CONFIG"] = json.dumps({"port": 0, "clients": clients, "accounts": accounts})
    process = subprocess.Popen(
        [_executable("node"), str(SERVER_SCRIPT)],
        cwd=PROVIDER_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    stderr: list[str] = []
    stdout_lines: queue.Queue[str | None] = queue.Queue()
    threads = [
        threading.Thread(target=_drain_stderr, args=(process.stderr, stderr), daemon=True),
        threading.Thread(target=_drain_stdout, args=(process.stdout, stdout_lines), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        issuer = _wait_for_issuer(process, stdout_lines, stderr, startup_timeout)
        provider = OidcProvider(issuer, process, stderr)
        yield provider
    finally:
        _stop_process(process)
        for thread in threads:
            thread.join(timeout=STOP_TIMEOUT)


def _wait_for_issuer(
    process: subprocess.Popen[str],
    stdout_lines: queue.Queue[str | None],
    stderr: list[str],
    timeout: float,
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(
                f"the test OpenID provider did not announce its issuer within {timeout:g} s; "
                f"stderr:\n{''.join(stderr)}"
            )
        try:
            line = stdout_lines.get(timeout=min(remaining, 0.1))
        except queue.Empty:
            continue
        if line is None:  # stdout closed: the process is exiting
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
            time.sleep(0.1)  # let the stderr thread catch up
            raise RuntimeError(
                f"the test OpenID provider exited (code {code}) before it was ready; "
                f"stderr:\n{''.join(stderr)}"
            )
        try:
            announced = json.loads(line)
        except ValueError:
            raise RuntimeError(
                f"the test OpenID provider printed an unexpected line: {line!r}; "
                f"stderr:\n{''.join(stderr)}"
            ) from None
        return str(announced["issuer"])


# -- driving the browser side over HTTP ---------------------------------------------------------


class _Forms(HTMLParser):
    """Collects the forms of a page: action, method and the named inputs' values.

    Inputs outside a form that name it with a ``form`` attribute are counted in, as the
    provider's logout page does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = {
                "id": attributes.get("id", ""),
                "action": attributes.get("action", ""),
                "method": attributes.get("method", "get").lower(),
                "fields": {},
            }
            self.forms.append(self._current)
        elif tag == "input" and "name" in attributes:
            form = self._current
            if "form" in attributes:
                form = next((f for f in self.forms if f["id"] == attributes["form"]), None)
            if form is not None:
                form["fields"][attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(response: httpx.Response) -> str:
    text = response.text if "html" in response.headers.get("content-type", "") else ""
    excerpt = " ".join(text.split())[:1500]
    return f"{response.status_code} {response.headers.get('content-type', '')} {excerpt}".strip()


def _walk(
    http: httpx.Client,
    response: httpx.Response,
    *,
    stop_at: str | None,
    provider_origin: str,
    submit: Any,
    what: str,
    max_steps: int = 20,
) -> str:
    """Follow redirects within the provider, letting ``submit`` answer its pages, until a
    Location starts with ``stop_at`` (returned, never requested). With ``stop_at`` None, the
    URL of the first page that ``submit`` does not answer is returned instead."""
    trail: list[str] = []
    for _ in range(max_steps):
        trail.append(f"{response.request.method} {response.request.url} -> {response.status_code}")
        if response.is_redirect:
            location = urljoin(str(response.request.url), response.headers["location"])
            if stop_at is not None and location.startswith(stop_at):
                return location
            if _origin(location) != provider_origin:
                raise AssertionError(
                    f"{what}: redirected to {location}, outside the provider and not under "
                    f"{stop_at}; steps:\n  " + "\n  ".join(trail)
                )
            response = http.get(location)
            continue
        follow = submit(response) if response.status_code == 200 else None
        if follow is None:
            if stop_at is None and response.status_code == 200:
                return str(response.request.url)
            raise AssertionError(
                f"{what}: stopped at a page that is not a step of the flow (expected a redirect "
                f"to {stop_at}): {_describe(response)}; steps:\n  " + "\n  ".join(trail)
            )
        response = follow
    raise AssertionError(f"{what}: more than {max_steps} steps; steps:\n  " + "\n  ".join(trail))


def complete_login(http: httpx.Client, authorize_url: str, login: str, *, stop_at: str) -> str:
    """Sign in as ``login`` through the provider's built-in login form, starting at
    ``authorize_url``, and return the first redirect whose URL starts with ``stop_at`` (the
    relying party's redirect URI) without requesting it.

    ``http`` must keep cookies and not follow redirects itself (``follow_redirects=False``).
    If the provider already has a session in ``http``'s cookies, it shows no form and that
    session's account is used, whatever ``login`` says; add ``prompt=login`` to the authorization
    request to insist. The returned URL carries ``code``, ``state`` and ``iss`` on success, or
    ``error`` if the provider refused the request; a login that is not a key of ``accounts`` is
    refused with ``error=access_denied``. Raises AssertionError when the flow goes anywhere else.
    """
    submitted = False

    def submit(page: httpx.Response) -> httpx.Response | None:
        nonlocal submitted
        for form in _forms(page.text):
            fields: dict[str, str] = form["fields"]
            if "login" not in fields:
                continue
            if submitted:
                raise AssertionError(
                    f"the provider showed the login form again after login {login!r}"
                )
            submitted = True
            data = {**fields, "login": login, "password": "any"}
            return http.post(urljoin(str(page.request.url), form["action"]), data=data)
        return None

    return _walk(
        http,
        http.get(authorize_url),
        stop_at=stop_at,
        provider_origin=_origin(authorize_url),
        submit=submit,
        what=f"login as {login!r}",
    )


def complete_logout(http: httpx.Client, end_session_url: str, *, stop_at: str | None = None) -> str:
    """Confirm an RP-initiated logout at the provider's ``end_session_url`` (with whatever
    ``id_token_hint``, ``client_id``, ``post_logout_redirect_uri`` and ``state`` it carries).

    Back-channel logout requests are sent by the provider before it answers the confirmation.
    Returns the first redirect starting with ``stop_at`` (the post-logout redirect URI) without
    requesting it, or, with ``stop_at`` None, the URL of the provider's sign-out success page.
    """

    def submit(page: httpx.Response) -> httpx.Response | None:
        for form in _forms(page.text):
            if form["id"] == "op.logoutForm":
                data = {**form["fields"], "logout": "yes"}
                return http.post(urljoin(str(page.request.url), form["action"]), data=data)
        return None

    return _walk(
        http,
        http.get(end_session_url),
        stop_at=stop_at,
        provider_origin=_origin(end_session_url),
        submit=submit,
        what="logout",
    )
