"""A browser's side of a sign-in, driven over HTTP with httpx (redirects followed by hand)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class Outcome:
    """What the broker answered at the end of a sign-in."""

    response: httpx.Response

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def location(self) -> str:
        return self.response.headers.get("location", "")

    @property
    def error_ref(self) -> str | None:
        match = re.search(r'id="error-ref">([0-9a-f]+)<', self.response.text)
        return match.group(1) if match else None

    @property
    def error_message(self) -> str:
        match = re.search(r'id="error-message">([^<]*)<', self.response.text)
        return match.group(1) if match else ""


def start_login(http: httpx.Client, broker_url: str, path: str) -> str:
    """GET the broker's login URL; return the IdP authorization URL it redirects to."""
    response = http.get(f"{broker_url}{path}")
    assert response.status_code == 302, response.text
    return response.headers["location"]


def dev_idp_sign_in(
    http: httpx.Client, authorize_url: str, email: str, password: str = "password"
) -> str:
    """Sign in on the development IdP's page; return the callback URL it redirects to."""
    page = http.get(authorize_url)
    assert page.status_code == 200, page.text
    answer = http.post(authorize_url, data={"email": email, "password": password})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def sign_in(
    http: httpx.Client,
    broker_url: str,
    email: str,
    *,
    path: str = "/acme/login/corp",
) -> Outcome:
    """The whole dance up to the broker's answer at its callback."""
    authorize_url = start_login(http, broker_url, path)
    callback = dev_idp_sign_in(http, authorize_url, email)
    return Outcome(http.get(callback))


def visit_storefront(http: httpx.Client, login_url: str) -> httpx.Response:
    """Follow the storefront's login-token URL to the page it lands on."""
    response = http.get(login_url)
    assert response.status_code == 302, response.text
    target = response.headers["location"]
    if target.startswith("/"):
        parts = urlsplit(login_url)
        target = f"{parts.scheme}://{parts.netloc}{target}"
    return http.get(target)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def page_field(html: str, element_id: str) -> str | None:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    return match.group(1).strip() if match else None


def give_name(
    http: httpx.Client, broker_url: str, first: str, last: str, *, store: str = "acme"
) -> Outcome:
    """Answer the broker's "What's your name?" page (a sign-in that would create a customer
    the IdP named no first or last name for) as the shopper would."""
    url = f"{broker_url}/{store}/signin/name"
    page = http.get(url)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return Outcome(
        http.post(url, data={"csrf_token": token.group(1), "first_name": first, "last_name": last})
    )
