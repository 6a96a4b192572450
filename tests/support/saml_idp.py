"""A real third-party SAML 2.0 identity provider for tests: node ``samlify`` (pinned in
``tests/saml_idp/package.json``) run by ``tests/saml_idp/server.mjs`` on 127.0.0.1.

Use::

    with start_saml_idp(
        sp={"entity_id": SP_ID, "acs_url": ACS, "slo_url": SLO},
        users={"alice": {"email": "alice@example.com", "first_name": "Alice",
                         "last_name": "Liddell", "groups": ["buyers"]}},
        idp={"sign_assertion": True, "sign_response": False},
    ) as idp:
        idp.metadata_url, idp.entity_id, idp.sso_url, idp.slo_url, idp.cert_pem
        acs, form = complete_sso(http, sp_redirect_to_idp, "alice")
        # form == {"SAMLResponse": ..., "RelayState": ...}: POST it to ``acs`` yourself

``sp`` is the service provider as the IdP knows it: ``entity_id``, ``acs_url`` (HTTP-POST),
``slo_url`` (optional; registered for HTTP-Redirect and HTTP-POST), ``encryption_cert_pem``
(needed by ``encrypt_assertion``), ``signing_cert_pem`` (verifies signed AuthnRequests and
LogoutRequests), or ``metadata_xml`` (the SP's metadata, used instead of the fields; the PEM
fields still override its certificates).

``idp`` options (defaults first):

- ``sign_assertion`` True / ``sign_response`` False: where the ``<ds:Signature>`` goes, inside the
  ``<saml:Assertion>`` and/or the ``<samlp:Response>`` (both may be on, or both off). These win
  over the SP metadata's ``WantAssertionsSigned``.
- ``encrypt_assertion`` False: the assertion (signed first if asked) becomes
  ``<saml:EncryptedAssertion>``: ``data_encryption`` ("aes256-cbc"; "aes128-cbc", "aes128-gcm",
  "aes256-gcm", "tripledes-cbc"), the key wrapped with ``key_encryption`` ("rsa-oaep-mgf1p";
  "rsa-1_5") for the SP's encryption certificate; a response signature is made after the
  encryption.
- ``signature_algorithm`` "rsa-sha256" ("rsa-sha1" uses the sha1 digest too; "rsa-sha512").
- ``want_authn_requests_signed`` / ``want_logout_requests_signed`` False: refuse unsigned
  requests from the SP (Redirect: SigAlg + Signature; POST: an enveloped XML signature).
- ``name_id_format`` "emailAddress" (NameID = the user's email), "persistent" (a stable opaque
  id), "transient" (a new one at each login) or "unspecified" (the login).
- ``attributes``: attribute names to send, by key; ``None`` leaves one out. Defaults:
  :data:`ATTRIBUTES`, all with NameFormat ``urn:oasis:names:tc:SAML:2.0:attrname-format:uri``
  (``attribute_name_format`` changes it) and ``xsi:type="xs:string"`` values; ``groups`` is one
  attribute with one ``AttributeValue`` per group. A user's own ``"attributes": {name: value or
  [values]}`` are added as they are.
- ``time_offset_seconds`` 0 (shifts every instant the IdP writes: negative for expired
  assertions), ``assertion_lifetime_seconds`` 300, ``entity_id_path`` "/metadata".
- ``expose_key_for_tests`` False: True hands the IdP's private signing key (PEM) to the test as
  :attr:`SamlIdp.key_pem`, for forging IdP-signed messages (see ``tests/support/saml_forge.py``);
  otherwise ``key_pem`` is None.

A login that is not a key of ``users`` is refused: the SP gets a Response with status
``Responder`` / ``AuthnFailed`` and no assertion (signed unless both signing options are off).
Logout messages the IdP sends are always signed. :meth:`SamlIdp.events` lists what happened.
"""

from __future__ import annotations

import base64
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from tests.support.node_process import NPM_CI_TIMEOUT as NPM_CI_TIMEOUT
from tests.support.node_process import STARTUP_TIMEOUT, NodeServer, stop_process
from tests.support.node_process import STOP_TIMEOUT as STOP_TIMEOUT

IDP_DIR = Path(__file__).resolve().parent.parent / "saml_idp"
SERVER_SCRIPT = IDP_DIR / "server.mjs"

#: The attribute names sent for a user's fields, unless ``idp["attributes"]`` says otherwise.
ATTRIBUTES = {
    "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
}

_SERVER = NodeServer(
    directory=IDP_DIR,
    script=SERVER_SCRIPT,
    name="SAML IdP",
    config_variable="SAML_IDP_CONFIG",
)


def ensure_node_modules() -> None:
    """Install the pinned IdP packages with ``npm ci`` unless those versions are installed."""
    _SERVER.ensure_node_modules()


class SamlIdp:
    """A running samlify IdP; made by :func:`start_saml_idp`."""

    metadata_url: str
    entity_id: str
    sso_url: str
    slo_url: str
    cert_pem: str
    #: The IdP's private signing key (PEM), only with ``idp={"expose_key_for_tests": True}``.
    key_pem: str | None

    def __init__(
        self, announced: dict[str, Any], process: subprocess.Popen[str], stderr: list[str]
    ) -> None:
        self.metadata_url = str(announced["metadata_url"])
        self.entity_id = str(announced["entity_id"])
        self.sso_url = str(announced["sso_url"])
        self.slo_url = str(announced["slo_url"])
        self.cert_pem = str(announced["cert_pem"])
        key_pem = announced.get("key_pem")
        self.key_pem = None if key_pem is None else str(key_pem)
        self._process = process
        self._stderr = stderr

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.metadata_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def stderr(self) -> str:
        """What the IdP has written to stderr so far (its last lines)."""
        return "".join(self._stderr)

    def events(self) -> list[dict[str, Any]]:
        """What the IdP did, oldest first: ``authn_request``, ``login``, ``login_refused``,
        ``logout_request`` (from the SP, with ``ended_sessions``), ``logout_request_sent`` and
        ``logout_response`` (from the SP, with ``status``, ``signed`` and ``verified``)."""
        response = httpx.get(f"{self.base_url}/events", timeout=10)
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()
        return events

    def stop(self) -> None:
        """Stop the IdP: SIGTERM, then SIGKILL if it has not exited within a few seconds."""
        stop_process(self._process)


@contextmanager
def start_saml_idp(
    *,
    sp: dict[str, Any],
    users: dict[str, dict[str, Any]],
    idp: dict[str, Any] | None = None,
    key: tuple[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[SamlIdp]:
    """Run the samlify IdP on a free port of 127.0.0.1 for the duration of the block.

    ``key`` is a signing key and its certificate (PEM) to use instead of a new pair: those of
    an IdP that has stopped (its ``key_pem`` and ``cert_pem``)."""
    ensure_node_modules()
    config: dict[str, Any] = {"port": 0, "idp": idp or {}, "sp": sp, "users": users}
    if key is not None:
        config["key"] = {"private_key_pem": key[0], "cert_pem": key[1]}
    with _SERVER.run(
        config, announces="itself", required_key="metadata_url", startup_timeout=startup_timeout
    ) as run:
        yield SamlIdp(run.announced, run.process, run.stderr)


# -- driving the browser side over HTTP ---------------------------------------------------------


class _Forms(HTMLParser):
    """Collects the forms of a page: id, action, method and the named inputs' values."""

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
        elif tag == "input" and "name" in attributes and self._current is not None:
            self._current["fields"][attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def _describe(response: httpx.Response) -> str:
    text = response.text if "html" in response.headers.get("content-type", "") else ""
    excerpt = " ".join(text.split())[:1500]
    return f"{response.status_code} {response.headers.get('content-type', '')} {excerpt}".strip()


def auto_post_form(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and fields of an HTTP-POST binding page (the IdP's auto-submitting form)."""
    if response.status_code == 200:
        for form in _forms(response.text):
            if form["id"] == "saml-post":
                action = urljoin(str(response.request.url), form["action"])
                return action, dict(form["fields"])
    raise AssertionError(f"not an auto-post page: {_describe(response)}")


def complete_sso(http: httpx.Client, redirect_url: str, login: str) -> tuple[str, dict[str, str]]:
    """Sign in as ``login`` at the IdP, starting at ``redirect_url`` (the SP's redirect to the
    IdP's ``/sso`` with a SAMLRequest, or any URL that redirects there), and return the SP's ACS
    URL and the form to POST to it (``SAMLResponse`` and, if any, ``RelayState``) without posting.

    ``http`` should not follow redirects itself. A login that is not a user of the IdP gets a
    SAMLResponse too, with status Responder / AuthnFailed. Raises AssertionError when the IdP
    answers anything but the login form and then the auto-post page.
    """
    trail: list[str] = []
    response = http.get(redirect_url)
    for _ in range(10):
        trail.append(f"{response.request.method} {response.request.url} -> {response.status_code}")
        if response.is_redirect:
            response = http.get(urljoin(str(response.request.url), response.headers["location"]))
            continue
        break
    forms = _forms(response.text) if response.status_code == 200 else []
    form = next((f for f in forms if f["id"] == "login-form"), None)
    if form is None:
        raise AssertionError(
            f"no login form at the IdP: {_describe(response)}; steps:\n  " + "\n  ".join(trail)
        )
    data = {**form["fields"], "login": login}
    answer = http.post(urljoin(str(response.request.url), form["action"]), data=data)
    return auto_post_form(answer)


def idp_initiated(
    http: httpx.Client, idp: SamlIdp, login: str, relay_state: str | None = None
) -> tuple[str, dict[str, str]]:
    """An IdP-initiated (unsolicited) login of ``login``: the SP's ACS URL and the form to POST
    to it (``SAMLResponse``, ``RelayState`` if given), without posting it."""
    query = {"login": login}
    if relay_state is not None:
        query["relay_state"] = relay_state
    return auto_post_form(http.get(f"{idp.base_url}/initiate?{urlencode(query)}"))


def _logout_message(response: httpx.Response) -> tuple[str, dict[str, str]]:
    if response.is_redirect:
        return urljoin(str(response.request.url), response.headers["location"]), {}
    return auto_post_form(response)


def complete_slo(http: httpx.Client, redirect_url: str) -> tuple[str, dict[str, str]]:
    """Take an SP-initiated LogoutRequest to the IdP (``redirect_url``: the SP's redirect to the
    IdP's ``/slo``) and return the IdP's LogoutResponse to the SP, without sending it:
    ``(url, {})`` for the HTTP-Redirect binding (the URL carries SAMLResponse, RelayState,
    SigAlg and Signature), or ``(slo_url, form)`` for HTTP-POST."""
    return _logout_message(http.get(redirect_url))


def initiate_logout(
    http: httpx.Client,
    idp: SamlIdp,
    login: str,
    *,
    binding: str = "redirect",
    relay_state: str | None = None,
) -> tuple[str, dict[str, str]]:
    """An IdP-initiated LogoutRequest for ``login`` (naming the last SessionIndex issued to it),
    returned like :func:`complete_slo`: ``(url, {})`` for HTTP-Redirect, ``(slo_url, form)`` for
    HTTP-POST. Send the SP's LogoutResponse to ``idp.slo_url`` to have it recorded."""
    query = {"login": login, "binding": binding}
    if relay_state is not None:
        query["relay_state"] = relay_state
    return _logout_message(http.get(f"{idp.base_url}/initiate-logout?{urlencode(query)}"))


def decode_post_message(value: str) -> str:
    """The XML of a ``SAMLResponse`` or ``SAMLRequest`` form field (HTTP-POST binding)."""
    return base64.b64decode(value).decode("utf-8")


def decode_redirect_message(value: str) -> str:
    """The XML of a ``SAMLResponse`` or ``SAMLRequest`` query parameter (HTTP-Redirect binding:
    base64 of raw DEFLATE), as decoded from the URL."""
    return zlib.decompress(base64.b64decode(value), -15).decode("utf-8")
