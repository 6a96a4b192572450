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

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tests.support.node_process import NPM_CI_TIMEOUT as NPM_CI_TIMEOUT
from tests.support.node_process import STARTUP_TIMEOUT, NodeServer, stop_process
from tests.support.node_process import STOP_TIMEOUT as STOP_TIMEOUT

PROVIDER_DIR = Path(__file__).resolve().parent.parent / "oidc_provider"
SERVER_SCRIPT = PROVIDER_DIR / "server.mjs"

_SERVER = NodeServer(
    directory=PROVIDER_DIR,
    script=SERVER_SCRIPT,
    name="OpenID provider",
    config_variable="OIDC_PROVIDER_CONFIG",
    packages=("oidc-provider",),
)


def ensure_node_modules() -> None:
    """Install the pinned provider with ``npm ci`` unless that version is already installed."""
    _SERVER.ensure_node_modules()


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
        stop_process(self._process)


@contextmanager
def start_oidc_provider(
    *,
    clients: list[dict[str, Any]],
    accounts: dict[str, dict[str, Any]],
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[OidcProvider]:
    """Run oidc-provider on a free port of 127.0.0.1 for the duration of the block."""
    ensure_node_modules()
    config = {"port": 0, "clients": clients, "accounts": accounts}
    with _SERVER.run(config, announces="its issuer", startup_timeout=startup_timeout) as run:
        yield OidcProvider(str(run.announced["issuer"]), run.process, run.stderr)


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
