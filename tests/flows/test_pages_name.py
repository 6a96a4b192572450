"""The "What's your name?" page: a sign-in that would create a customer the IdP gave no
first or last name for asks the shopper once, then creates the customer with what they typed
(BigCommerce requires both; no ``-`` is ever stored). Nothing is created before a valid answer;
a blank or over-long one shows the form again; a replayed, foreign or forged post creates
nothing; returning shoppers (linked, or found by e-mail) are never asked; SAML alike. Real
HTTP: the development IdP or samlify, the sandbox store, the broker."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import httpx

from broker.sandbox.idp import DevUser
from tests.conftest import World
from tests.saml_fixtures import SamlWorld
from tests.support.flows import Outcome, page_field, sign_in, visit_storefront

NAME_PAGE = "/acme/signin/name"
KIM = DevUser(sub="dev-kim", email="kim@example.com", password="password", given_name="Kim")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _input(html: str, name: str) -> str:
    """The ``<input>`` tag of field ``name``."""
    match = re.search(rf'<input type="text" id="{name}"[^>]*>', html)
    assert match, html
    return match.group(0)


def _names(world: World | SamlWorld) -> list[tuple[str, str, str]]:
    return [(c["email"], c["first_name"], c["last_name"]) for c in world.customers()]


def test_a_sign_in_without_a_family_name_asks_for_it_then_creates_the_customer(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"branding": {"name": "Acme Supply"}})
    world.idp.state.add_user(KIM)
    asked = sign_in(browser_http, world.broker.url, "kim@example.com")
    assert (asked.status, asked.location) == (303, NAME_PAGE)
    assert world.customers() == []  # nothing created before the shopper answers

    page = browser_http.get(world.broker.url + NAME_PAGE)
    assert page.status_code == 200, page.text
    assert unescape(page_field(page.text, "name-title") or "") == "Your name for Acme Supply"
    first, last = _input(page.text, "first_name"), _input(page.text, "last_name")
    assert 'value="Kim"' in first
    assert 'autocomplete="given-name"' in first
    assert 'value=""' in last
    assert 'autocomplete="family-name"' in last
    assert "required" in first
    assert "required" in last
    # The focus is on the field still empty.
    assert "autofocus" in last
    assert "autofocus" not in first
    assert 'role="alert"' not in page.text

    token = _csrf(page.text)
    blank = browser_http.post(
        world.broker.url + NAME_PAGE,
        data={"csrf_token": token, "first_name": "Kim", "last_name": "   "},
    )
    assert blank.status_code == 422
    assert page_field(blank.text, "last_name-error") == "Enter your last name."
    assert 'id="last_name-error" role="alert"' in blank.text
    last = _input(blank.text, "last_name")
    assert 'aria-invalid="true"' in last
    assert "autofocus" in last
    too_long = browser_http.post(
        world.broker.url + NAME_PAGE,
        data={"csrf_token": token, "first_name": "K" * 256, "last_name": "Nakamura"},
    )
    assert too_long.status_code == 422
    assert page_field(too_long.text, "first_name-error") == "Use at most 255 characters."
    assert 'value="Nakamura"' in _input(too_long.text, "last_name")  # what they typed is kept
    assert world.customers() == []

    before = browser_http.cookies.jar.__class__()
    for cookie in browser_http.cookies.jar:
        before.set_cookie(cookie)
    done = Outcome(
        browser_http.post(
            world.broker.url + NAME_PAGE,
            data={"csrf_token": token, "first_name": " Kim ", "last_name": "Nakamura"},
        )
    )
    assert done.status == 302, done.response.text
    landing = visit_storefront(browser_http, done.location)
    assert page_field(landing.text, "customer-email") == "kim@example.com"
    assert _names(world) == [("kim@example.com", "Kim", "Nakamura")]
    [login] = world.logins()
    assert login["ok"] is True

    # The same post again, with the cookies it had (a replay): the step was used up.
    replayed = httpx.post(
        world.broker.url + NAME_PAGE,
        data={"csrf_token": token, "first_name": "Eve", "last_name": "Evil"},
        cookies=httpx.Cookies(before),
    )
    assert replayed.status_code == 400
    assert page_field(replayed.text, "error-message") == (
        "This sign-in has expired or was already used. Please start signing in again."
    )
    assert browser_http.get(world.broker.url + NAME_PAGE).status_code == 400
    assert _names(world) == [("kim@example.com", "Kim", "Nakamura")]

    # Kim comes back: linked now, never asked again.
    again = sign_in(browser_http, world.broker.url, "kim@example.com")
    assert again.status == 302
    assert len(world.customers()) == 1


def test_a_forged_or_foreign_name_post_creates_nothing(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.idp.state.add_user(KIM)
    assert sign_in(browser_http, world.broker.url, "kim@example.com").status == 303
    page = browser_http.get(world.broker.url + NAME_PAGE)
    answer = {"first_name": "Kim", "last_name": "Nakamura"}
    no_token = browser_http.post(world.broker.url + NAME_PAGE, data=answer)
    assert no_token.status_code == 400
    wrong_token = browser_http.post(
        world.broker.url + NAME_PAGE, data={**answer, "csrf_token": "x" * 43}
    )
    assert wrong_token.status_code == 400
    # Another browser, with a token of its own but no pending sign-in.
    with httpx.Client() as other:
        # (a page with a form of the broker's: the sign-out question gives it a token)
        form = other.get(
            f"{world.broker.url}/acme/logout", headers={"Sec-Fetch-Site": "cross-site"}
        )
        foreign = other.post(
            world.broker.url + NAME_PAGE, data={**answer, "csrf_token": _csrf(form.text)}
        )
    assert foreign.status_code == 400
    assert world.customers() == []
    # The shopper's own form still works: the refusals used nothing up.
    done = browser_http.post(
        world.broker.url + NAME_PAGE, data={**answer, "csrf_token": _csrf(page.text)}
    )
    assert done.status_code == 302
    assert _names(world) == [("kim@example.com", "Kim", "Nakamura")]


def test_a_shopper_the_store_already_has_is_not_asked(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()  # link = "auto"
    world.sandbox.state.add_customer(
        world.store.store_hash, email="bob@example.com", first_name="Robert", last_name="Brown"
    )
    outcome = sign_in(browser_http, world.broker.url, "bob@example.com")  # no names at the IdP
    assert outcome.status == 302, outcome.error_message
    assert _names(world) == [("bob@example.com", "Robert", "Brown")]


def test_the_name_page_speaks_the_stores_language(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"branding": {"name": "Acme", "languages": ["de"]}})
    assert sign_in(browser_http, world.broker.url, "bob@example.com").status == 303
    page = browser_http.get(world.broker.url + NAME_PAGE)
    assert '<html lang="de">' in page.text
    assert "<title>Wie heißen Sie? · Acme</title>" in page.text
    assert page_field(page.text, "name-title") == "Ihr Name für Acme"
    # Nothing from the IdP: both empty, the focus on the first.
    assert "autofocus" in _input(page.text, "first_name")
    blank = browser_http.post(
        world.broker.url + NAME_PAGE,
        data={"csrf_token": _csrf(page.text), "first_name": "", "last_name": ""},
    )
    assert page_field(blank.text, "first_name-error") == "Geben Sie Ihren Vornamen ein."
    assert page_field(blank.text, "last_name-error") == "Geben Sie Ihren Nachnamen ein."


def test_a_saml_sign_in_without_a_surname_is_asked_too(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    world = make_saml_world(idp={"attributes": {"last_name": None}})
    asked = world.post(browser_http, world.sso(browser_http))
    assert (asked.status, asked.location) == (303, NAME_PAGE)
    assert world.customers() == []
    page = browser_http.get(world.broker.url + NAME_PAGE)
    assert 'value="Alice"' in _input(page.text, "first_name")
    done = browser_http.post(
        world.broker.url + NAME_PAGE,
        data={"csrf_token": _csrf(page.text), "first_name": "Alice", "last_name": "Liddell"},
    )
    assert done.status_code == 302, done.text
    assert _names(world) == [("alice@example.com", "Alice", "Liddell")]
