"""A real third-party SAML 2.0 identity provider for tests: SimpleSAMLphp (the Debian package
``simplesamlphp``, 1.19 in bookworm) served by ``php -S`` on 127.0.0.1, besides samlify
(:mod:`tests.support.saml_idp`).

Use::

    with start_simplesamlphp(workdir) as idp:
        idp.metadata_url, idp.entity_id, idp.sso_url, idp.slo_url, idp.cert_pem
        with idp.registered(broker_sp_metadata_xml, {"assertion.encryption": True}):
            acs, form = complete_sso(http, broker_redirect_to_idp, idp, "alice")
            # form == {"SAMLResponse": ..., "RelayState": ...}: POST it to ``acs`` yourself

The configuration is private to the run: the templates of ``tests/simplesamlphp/`` copied to
``workdir`` with a ``settings.json`` beside them (base URL, a new secret salt, directories, the
users of :data:`USERS` with generated passwords), a signing key pair generated here, PHP sessions
in ``workdir``, and ``SIMPLESAMLPHP_CONFIG_DIR`` pointing ``php -S`` at it. The IdP's entity ID
is its metadata URL, ``{base_url}saml2/idp/metadata.php``. Service providers are registered
while it runs (:meth:`SimpleSAMLphp.register_sp`): SimpleSAMLphp reads its metadata files at
each request, so one server serves the tests of a session (of an xdist worker) and each test
registers its own broker.

When php, its DOM or mbstring extensions, or SimpleSAMLphp are missing, starting raises
:class:`SimpleSAMLphpMissing`, naming ``scripts/setup``: these tests fail, never skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from tests.support.certificates import self_signed
from tests.support.node_process import STDERR_KEEP, stop_process
from tests.support.serve import free_port

TEMPLATES = Path(__file__).resolve().parent.parent / "simplesamlphp"
#: Where Debian's package puts SimpleSAMLphp (``dpkg -L simplesamlphp`` is asked first).
KNOWN_LOCATIONS = (Path("/usr/share/simplesamlphp"),)
#: The environment variable that names another SimpleSAMLphp installation (its root directory).
LOCATION_VARIABLE = "SIMPLESAMLPHP_DIR"
#: The PHP extensions SimpleSAMLphp cannot run without (php-xml, php-mbstring in Debian).
PHP_EXTENSIONS = ("dom", "mbstring", "openssl", "xml", "zlib")
SETUP_HINT = (
    "run scripts/setup (as root it installs the Debian packages simplesamlphp, php-cli, "
    "php-xml and php-mbstring)"
)
STARTUP_TIMEOUT = 20.0

#: The IdP's users by login: the attributes SimpleSAMLphp's exampleauth:UserPass gives them
#: (a password is generated for each at start).
USERS: dict[str, dict[str, list[str]]] = {
    "alice": {
        "uid": ["alice"],
        "mail": ["alice@example.com"],
        "givenName": ["Alice"],
        "sn": ["Liddell"],
        "eduPersonAffiliation": ["member", "staff"],
        "isMemberOf": ["buyers"],
    },
    "bob": {
        "uid": ["bob"],
        "mail": ["bob@example.com"],
        "givenName": ["Bob"],
        "sn": ["Builder"],
        "eduPersonAffiliation": ["member"],
        "isMemberOf": [],
    },
}

REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


class SimpleSAMLphpMissing(RuntimeError):
    """php, one of its extensions, or SimpleSAMLphp is not installed."""


def find_simplesamlphp() -> Path:
    """SimpleSAMLphp's root directory (the one with ``www/_include.php``): ``$SIMPLESAMLPHP_DIR``,
    else where ``dpkg -L simplesamlphp`` says, else Debian's known location."""
    candidates: list[Path] = []
    if os.environ.get(LOCATION_VARIABLE):
        candidates.append(Path(os.environ[LOCATION_VARIABLE]))
    dpkg = shutil.which("dpkg")
    if dpkg is not None:
        listed = subprocess.run(
            [dpkg, "-L", "simplesamlphp"], capture_output=True, text=True, check=False
        )
        for line in listed.stdout.splitlines():
            if line.endswith("/www/_include.php"):
                candidates.append(Path(line).parent.parent)
    candidates.extend(KNOWN_LOCATIONS)
    for root in candidates:
        if (root / "www" / "_include.php").is_file():
            return root
    raise SimpleSAMLphpMissing(
        f"SimpleSAMLphp is not installed (no www/_include.php in ${LOCATION_VARIABLE}, "
        f"dpkg -L simplesamlphp or {', '.join(map(str, KNOWN_LOCATIONS))}): {SETUP_HINT}"
    )


def find_php() -> str:
    """The php command line, with the extensions SimpleSAMLphp needs."""
    php = shutil.which("php")
    if php is None:
        raise SimpleSAMLphpMissing(f"php is not on PATH: {SETUP_HINT}")
    listed = subprocess.run([php, "-m"], capture_output=True, text=True, check=False)
    modules = {line.strip().lower() for line in listed.stdout.splitlines()}
    missing = [name for name in PHP_EXTENSIONS if name not in modules]
    if missing:
        raise SimpleSAMLphpMissing(f"php lacks the extensions {', '.join(missing)}: {SETUP_HINT}")
    return php


def _attribute_map_dir(root: Path) -> Path:
    """The attribute maps (name2oid.php, ...): Debian keeps them with the configuration."""
    for candidate in (root / "attributemap", root / "config" / "attributemap"):
        if (candidate / "name2oid.php").is_file():
            return candidate.resolve()
    raise SimpleSAMLphpMissing(f"SimpleSAMLphp in {root} has no attributemap/name2oid.php")


def make_key_pair(common_name: str) -> tuple[str, str]:
    """A new RSA key and a self-signed certificate for it (PEM), valid from a day ago."""
    return self_signed(common_name)


class SimpleSAMLphp:
    """A running SimpleSAMLphp IdP; made by :func:`start_simplesamlphp`."""

    def __init__(
        self,
        base_url: str,
        workdir: Path,
        passwords: dict[str, str],
        cert_pem: str,
        process: subprocess.Popen[str],
        stderr: list[str],
    ) -> None:
        #: With a trailing slash, as SimpleSAMLphp's ``baseurlpath``.
        self.base_url = base_url
        self.workdir = workdir
        self.passwords = passwords
        self.cert_pem = cert_pem
        self.entity_id = f"{base_url}saml2/idp/metadata.php"
        self.metadata_url = self.entity_id
        self.sso_url = f"{base_url}saml2/idp/SSOService.php"
        self.slo_url = f"{base_url}saml2/idp/SingleLogoutService.php"
        self._process = process
        self._stderr = stderr

    @property
    def sp_dir(self) -> Path:
        return self.workdir / "sp"

    @property
    def keys_dir(self) -> Path:
        return self.workdir / "keys"

    def log(self) -> str:
        """SimpleSAMLphp's own log and the last lines ``php -S`` wrote, for failure messages."""
        path = self.workdir / "log" / "simplesamlphp.log"
        own = path.read_text(errors="replace") if path.exists() else "(no log yet)"
        return f"simplesamlphp.log:\n{own[-6000:]}\nphp -S:\n{''.join(self._stderr[-40:])}"

    def register_sp(
        self,
        metadata_xml: str | None,
        overrides: dict[str, Any] | None = None,
        *,
        entity_id: str | None = None,
    ) -> Path:
        """Register a service provider from its SAML metadata (as SimpleSAMLphp's metadata
        converter reads it), with IdP-side ``overrides`` of the saml20-sp-remote entry (see
        docs/idps/simplesamlphp.md); ``entity_id`` registers it under another entity ID.
        Returns the registration's file, for :meth:`unregister`."""
        key = entity_id or _entity_id(metadata_xml)
        path = self.sp_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
        entry = {"metadata_xml": metadata_xml, "overrides": overrides or {}}
        if entity_id is not None:
            entry["entity_id"] = entity_id
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(entry))
        temporary.replace(path)  # never half a file for a request that reads it meanwhile
        return path

    def unregister(self, path: Path) -> None:
        with suppress(FileNotFoundError):
            path.unlink()

    @contextmanager
    def registered(
        self,
        metadata_xml: str | None,
        overrides: dict[str, Any] | None = None,
        *,
        entity_id: str | None = None,
    ) -> Iterator[Path]:
        path = self.register_sp(metadata_xml, overrides, entity_id=entity_id)
        try:
            yield path
        finally:
            self.unregister(path)

    def write_key(self, name: str, key_pem: str, cert_pem: str) -> tuple[str, str]:
        """Store another key pair in the IdP's key directory; the paths of key and certificate
        (for an SP entry's ``signature.privatekey`` and ``signature.certificate``)."""
        key_path, cert_path = self.keys_dir / f"{name}.key", self.keys_dir / f"{name}.crt"
        key_path.write_text(key_pem)
        key_path.chmod(0o600)
        cert_path.write_text(cert_pem)
        return str(key_path), str(cert_path)

    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        stop_process(self._process)


def _entity_id(metadata_xml: str | None) -> str:
    from defusedxml.ElementTree import fromstring

    if metadata_xml is None:
        raise ValueError("an SP without metadata needs an entity_id")
    return str(fromstring(metadata_xml).attrib["entityID"])


@contextmanager
def start_simplesamlphp(
    workdir: Path,
    users: dict[str, dict[str, list[str]]] | None = None,
    *,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[SimpleSAMLphp]:
    """Run SimpleSAMLphp under ``php -S`` on a free port of 127.0.0.1 for the block, its
    configuration in ``workdir`` (which should be empty or absent)."""
    root = find_simplesamlphp()
    php = find_php()
    attribute_maps = _attribute_map_dir(root)
    users = USERS if users is None else users
    shutil.copytree(TEMPLATES, workdir, dirs_exist_ok=True)
    directories = {
        name: workdir / name for name in ("keys", "log", "data", "tmp", "sessions", "sp")
    }
    for path in directories.values():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_pem, cert_pem = make_key_pair("simplesamlphp-test-idp")
    (directories["keys"] / "idp.key").write_text(key_pem)
    (directories["keys"] / "idp.key").chmod(0o600)
    (directories["keys"] / "idp.crt").write_text(cert_pem)
    passwords = {login: secrets.token_urlsafe(12) for login in users}
    last_error: RuntimeError | None = None
    for _ in range(3):  # a free port may be taken before php binds it
        port = free_port()
        base_url = f"http://127.0.0.1:{port}/"
        settings = {
            "base_url": base_url,
            "secret_salt": secrets.token_urlsafe(32),
            "admin_password": secrets.token_urlsafe(16),
            "keys_dir": str(directories["keys"]),
            "log_dir": str(directories["log"]),
            "data_dir": str(directories["data"]),
            "temp_dir": str(directories["tmp"]),
            "session_dir": str(directories["sessions"]),
            "metadata_dir": str(workdir / "metadata"),
            "attribute_map_dir": str(attribute_maps),
            "trusted_hosts": [r"127\.0\.0\.1:[0-9]+", r"127\.0\.0\.1"],
            "users": {
                login: {"password": passwords[login], "attributes": attributes}
                for login, attributes in users.items()
            },
        }
        (workdir / "config" / "settings.json").write_text(json.dumps(settings, indent=1))
        env = {**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(workdir / "config")}
        process = subprocess.Popen(
            [php, "-S", f"127.0.0.1:{port}", "-t", str(root / "www")],
            cwd=root / "www",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        stderr: list[str] = []
        drain = threading.Thread(target=_drain, args=(process.stderr, stderr), daemon=True)
        drain.start()
        idp = SimpleSAMLphp(base_url, workdir, passwords, cert_pem, process, stderr)
        try:
            _wait_ready(idp, process, startup_timeout)
        except RuntimeError as error:
            stop_process(process)
            drain.join(timeout=5)
            last_error = error
            if "Address already in use" in "".join(stderr):
                continue
            raise
        try:
            yield idp
        finally:
            stop_process(process)
            drain.join(timeout=5)
        return
    assert last_error is not None
    raise last_error


def _drain(stream: Any, sink: list[str]) -> None:
    try:
        for line in stream:
            sink.append(line)
            if len(sink) > STDERR_KEEP:
                del sink[0]
    except (OSError, ValueError):  # closed by stop_process()
        pass


def _wait_ready(idp: SimpleSAMLphp, process: subprocess.Popen[str], timeout: float) -> None:
    """Until the IdP's metadata answers 200 with its entity ID (the configuration loads)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            time.sleep(0.1)  # let the stderr thread catch up
            raise RuntimeError(
                f"SimpleSAMLphp (php -S) exited with code {process.returncode} before it was "
                f"ready; {idp.log()}"
            )
        try:
            answer = httpx.get(idp.metadata_url, timeout=5)
            if answer.status_code == 200 and idp.entity_id in answer.text:
                return
            last = f"{answer.status_code}: {' '.join(answer.text.split())[:800]}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.1)
    raise RuntimeError(
        f"SimpleSAMLphp did not serve its metadata within {timeout:g} s (last: {last}); {idp.log()}"
    )


# -- driving the browser side over HTTP ---------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page: action, method and the named inputs' values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = {
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


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def describe(response: httpx.Response) -> str:
    text = response.text if "html" in response.headers.get("content-type", "") else ""
    excerpt = " ".join(text.split())[:1500]
    return (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"{response.headers.get('content-type', '')} {excerpt}"
    ).strip()


def follow(http: httpx.Client, response: httpx.Response, *, within: str) -> httpx.Response:
    """Follow redirects while they stay at ``within`` (an origin, e.g. the IdP's base URL)."""
    for _ in range(10):
        if not response.is_redirect:
            return response
        target = urljoin(str(response.request.url), response.headers["location"])
        if not target.startswith(within):
            return response
        response = http.get(target)
    raise AssertionError(f"too many redirects: {describe(response)}")


def post_form(response: httpx.Response, field: str) -> tuple[str, dict[str, str]]:
    """The action and fields of SimpleSAMLphp's auto-submitting HTTP-POST page carrying
    ``field`` (``SAMLResponse`` or ``SAMLRequest``)."""
    if response.status_code == 200:
        for form in forms(response.text):
            if field in form["fields"]:
                return urljoin(str(response.request.url), form["action"]), dict(form["fields"])
    raise AssertionError(f"no HTTP-POST form with {field}: {describe(response)}")


def log_in(
    http: httpx.Client, idp: SimpleSAMLphp, response: httpx.Response, login: str
) -> httpx.Response:
    """Fill SimpleSAMLphp's username/password page (``response``, after the redirects to it)
    as ``login`` with that user's password; the IdP's answer, its own redirects followed."""
    page = follow(http, response, within=idp.base_url)
    form = next((f for f in forms(page.text) if "password" in f["fields"]), None)
    if page.status_code != 200 or form is None:
        raise AssertionError(f"no login form at SimpleSAMLphp: {describe(page)}\n{idp.log()}")
    password = idp.passwords.get(login, "not-the-password")
    data = {**form["fields"], "username": login, "password": password}
    answer = http.post(urljoin(str(page.request.url), form["action"] or "?"), data=data)
    return follow(http, answer, within=idp.base_url)


def complete_sso(
    http: httpx.Client, idp: SimpleSAMLphp, redirect_url: str, login: str
) -> tuple[str, dict[str, str]]:
    """Sign in as ``login`` at SimpleSAMLphp, starting at ``redirect_url`` (the SP's redirect to
    the IdP's SSO service), and return the SP's ACS URL and the form to POST there (SAMLResponse
    and RelayState) without posting it. A browser that has an IdP session already gets the form
    without the login page (single sign-on). ``http`` should not follow redirects itself."""
    answer = follow(http, http.get(redirect_url), within=idp.base_url)
    if not any("SAMLResponse" in form["fields"] for form in forms(answer.text)):
        answer = log_in(http, idp, answer, login)
    try:
        return post_form(answer, "SAMLResponse")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{idp.log()}") from None


def idp_initiated(
    http: httpx.Client,
    idp: SimpleSAMLphp,
    sp_entity_id: str,
    login: str,
    relay_state: str | None = None,
) -> tuple[str, dict[str, str]]:
    """An IdP-initiated (unsolicited) sign-in of ``login`` to the SP ``sp_entity_id``
    (SimpleSAMLphp's ``SSOService.php?spentityid=``): the ACS URL and the form, not posted. A
    browser with an IdP session already signed in gets the form without the login page."""
    query = {"spentityid": sp_entity_id}
    if relay_state is not None:
        query["RelayState"] = relay_state
    answer = follow(http, http.get(f"{idp.sso_url}?{urlencode(query)}"), within=idp.base_url)
    if not any("SAMLResponse" in form["fields"] for form in forms(answer.text)):
        answer = log_in(http, idp, answer, login)
    try:
        return post_form(answer, "SAMLResponse")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{idp.log()}") from None


def initiate_logout(http: httpx.Client, idp: SimpleSAMLphp, return_to: str) -> httpx.Response:
    """IdP-initiated single logout of this browser's IdP session (SimpleSAMLphp's
    ``initSLO.php``; ``return_to`` is where it ends): the IdP's answer, a redirect carrying the
    LogoutRequest to the first SP's SLO endpoint (HTTP-Redirect binding)."""
    query = urlencode({"RelayState": return_to})
    return http.get(f"{idp.base_url}saml2/idp/initSLO.php?{query}")


def same_endpoint(url: str, endpoint: str) -> bool:
    """Whether ``url`` (with a query) is at ``endpoint`` (scheme, host, port and path)."""
    a, b = urlsplit(url), urlsplit(endpoint)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
