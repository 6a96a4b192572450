"""Each store's shopper pages in its own look and language: ``[stores.X.branding]`` from the
file and through the admin API, its checks, the colours' contrast, a folder of templates that
overrides ours page by page, and the language chosen from ``ui_locales``, the flow and
Accept-Language within the store's ``languages``."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.config import parse_settings
from broker.errors import ConfigError
from broker.web.pages import PAGE_BACKGROUND, contrast, ink, text_on
from tests.conftest import World
from tests.flows.test_admin_api import AppWorld, app_world  # noqa: F401 (a fixture)
from tests.support import settings as docs
from tests.support.flows import page_field as raw_field


def page_field(html: str, element_id: str) -> str | None:
    found = raw_field(html, element_id)
    return None if found is None else unescape(found)


ACME = {
    "name": "Acme Supply",
    "logo_url": "https://cdn.acme.example/logo.png?v=2",
    "favicon_url": "https://cdn.acme.example/favicon.ico",
    "primary_color": "#0A6E4F",
    "support": "mailto:help@acme.example",
    "languages": ["de", "en"],
}


def _document(branding: Any) -> dict[str, Any]:
    store = {
        "store_hash": "abc123",
        "access_token": "token",
        "client_id": "client",
        "client_secret": "s" * 32,
        "storefront_url": "https://shop.acme.example",
        "branding": branding,
        "connections": {
            "corp": docs.oidc_connection(issuer="https://idp.acme.example", client_secret="x" * 24)
        },
    }
    return docs.document("http://127.0.0.1:8000", {"acme": store})


def _problems(branding: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_settings(_document(branding), env={})
    return raised.value.problems


def test_the_branding_table_is_read_with_its_defaults() -> None:
    store = parse_settings(_document(ACME), env={}).stores["acme"]
    assert store.branding.name == "Acme Supply"
    assert store.branding.primary_color == "#0a6e4f"
    assert store.branding.languages == ("de", "en")
    plain = parse_settings(_document({}), env={}).stores["acme"].branding
    assert (plain.name, plain.languages, plain.template_dir) == (None, ("en",), None)


@pytest.mark.parametrize(
    ("branding", "key", "says"),
    [
        ({"primary_color": "green"}, "primary_color", "#rrggbb"),
        ({"primary_color": "#12345"}, "primary_color", "#rrggbb"),
        ({"primary_color": "#0a6e4f; background:url(x)"}, "primary_color", "#rrggbb"),
        ({"languages": ["en", "xx"]}, "languages", "'xx'"),
        ({"languages": []}, "languages", "at least one language"),
        ({"logo_url": "javascript:alert(1)"}, "logo_url", "not an http(s) URL"),
        ({"logo_url": "http://cdn.acme.example/logo.png"}, "logo_url", "must use https"),
        ({"support": "help@acme.example"}, "support", "neither mailto"),
        ({"support": "mailto:nobody"}, "support", "mailto:someone@example.com"),
        ({"template_dir": "/nonexistent/templates"}, "template_dir", "no such folder"),
        ({"colour": "#000000"}, "colour", "unknown key"),
    ],
)
def test_a_bad_branding_value_is_named_by_its_key(
    branding: dict[str, Any], key: str, says: str
) -> None:
    problems = _problems(branding)
    assert any(p.startswith(f"stores.acme.branding.{key}: ") and says in p for p in problems), (
        problems
    )


@pytest.mark.parametrize("color", ["#ffff00", "#0a6e4f", "#777777", "#000000", "#ffffff"])
def test_the_text_on_the_brand_colour_and_its_links_keep_aa_contrast(color: str) -> None:
    assert contrast(color, text_on(color)) >= 4.5
    assert contrast(ink(color), "#ffffff") >= 4.5
    assert contrast(ink(color, PAGE_BACKGROUND), PAGE_BACKGROUND) >= 4.5


def test_a_stores_pages_carry_its_name_logo_colour_favicon_and_language(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"branding": ACME})
    page = browser_http.get(f"{world.broker.url}/acme/login")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="de">' in html  # the store's first language, as no other matches
    assert "<title>Anmelden · Acme Supply</title>" in html
    assert page_field(html, "choose-title") == "Bei Acme Supply anmelden"
    assert 'src="https://cdn.acme.example/logo.png?v=2" alt="Acme Supply"' in html
    assert '<link rel="icon" href="https://cdn.acme.example/favicon.ico">' in html
    assert "--brand: #0a6e4f; --on-brand: #ffffff;" in html
    policy = page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.acme.example;" in policy
    # The store's own password sign-in is offered.
    assert f'href="{world.storefront}/login.php"' in html


def test_the_language_follows_ui_locales_then_the_flow_then_accept_language(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"branding": {**ACME, "languages": ["en", "fr", "nl"]}})
    chooser = f"{world.broker.url}/acme/login"

    def lang(response: httpx.Response) -> str:
        found = re.search(r'<html lang="([^"]+)"', response.text)
        assert found, response.text
        return found.group(1)

    assert lang(browser_http.get(chooser)) == "en"
    assert lang(browser_http.get(chooser, headers={"Accept-Language": "nl-BE,nl;q=0.9"})) == "nl"
    # A language the store does not offer is passed over; Spanish is not in its list.
    assert lang(browser_http.get(chooser, headers={"Accept-Language": "es, fr;q=0.5"})) == "fr"
    assert lang(browser_http.get(chooser, params={"ui_locales": "xx-YY es"})) == "en"
    french = browser_http.get(chooser, params={"ui_locales": "fr-CA en"})
    assert lang(french) == "fr"
    assert "Se connecter avec Corp" in french.text
    # Chosen in the query, it holds for the rest of the flow (the IdP's way back, its errors).
    start = browser_http.get(f"{world.broker.url}/acme/login/corp", params={"ui_locales": "fr"})
    assert start.status_code == 302
    assert "ui_locales=fr" in start.headers["location"]
    expired = browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state=x&code=y")
    assert lang(expired) == "fr"
    assert page_field(expired.text, "error-title") == "Cette connexion n'a pas pu aboutir"


def test_a_german_error_page_never_shows_an_untranslated_message(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"branding": ACME})
    unknown = browser_http.get(f"{world.broker.url}/acme/login/nope")
    assert unknown.status_code == 404
    assert page_field(unknown.text, "error-message") == (
        "Diese Anmeldeoption gibt es in diesem Shop nicht."
    )
    assert page_field(unknown.text, "error-title") == "Nicht gefunden"
    assert 'href="mailto:help@acme.example"' in unknown.text
    assert "help@acme.example kontaktieren</a>" in unknown.text


def test_a_template_folder_overrides_one_page_and_keeps_ours_for_the_rest(
    make_world: Callable[..., World], browser_http: httpx.Client, tmp_path: Path
) -> None:
    folder = tmp_path / "acme-pages"
    folder.mkdir()
    (folder / "choose.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 id="own-title">{{ brand.name }}: '
        "{{ _('Sign in') }}</h1>{% for c in connections %}<a href=\"{{ url_for('sso.login', "
        'store_key=store.key, conn_key=c.key) }}">{{ c.display_name }}</a>{% endfor %}'
        "{% endblock %}"
    )
    world = make_world(store={"branding": {**ACME, "template_dir": str(folder)}})
    own = browser_http.get(f"{world.broker.url}/acme/login")
    assert page_field(own.text, "own-title") == "Acme Supply: Anmelden"
    assert 'href="/acme/login/corp"' in own.text
    ours = browser_http.get(f"{world.broker.url}/acme/login/nope")
    assert page_field(ours.text, "error-title") == "Nicht gefunden"


def test_branding_through_the_admin_api(app_world: AppWorld) -> None:  # noqa: F811
    patched = app_world.api(
        "PATCH", "/settings", json={"branding": {"name": "App Goods", "primary_color": "#aa0000"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["branding"]["name"] == "App Goods"
    again = app_world.api("PATCH", "/settings", json={"branding": {"languages": ["nl"]}})
    assert again.json()["branding"]["primary_color"] == "#aa0000"  # merged, not replaced
    assert again.json()["branding"]["languages"] == ["nl"]

    bad = app_world.api(
        "PATCH",
        "/settings",
        json={"branding": {"primary_color": "red", "template_dir": "/etc", "languages": ["tlh"]}},
    )
    assert bad.status_code == 422
    keys = {e["key"] for e in bad.json()["errors"]}
    assert keys == {"branding.primary_color", "branding.template_dir", "branding.languages"}
    assert app_world.api("GET", "/settings").json()["branding"]["primary_color"] == "#aa0000"

    page = httpx.get(f"{app_world.broker.url}/app123/login/nope")
    assert '<html lang="nl">' in page.text
    assert "· App Goods</title>" in page.text
    assert "--brand: #aa0000;" in page.text
