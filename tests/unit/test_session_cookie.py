"""The broker's Flask session (broker.web.cookies.SignedSession): Flask's own signed cookie,
its serializer built once per key. Cookies pass both ways between it and Flask's stock
interface (nothing is lost at an upgrade), and a new key is honoured at once."""

from __future__ import annotations

from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface

from broker.web.cookies import SignedSession


def _app(interface: SecureCookieSessionInterface, key: str = "k" * 32) -> Flask:
    app = Flask(__name__)
    app.secret_key = key
    app.session_interface = interface

    @app.get("/put")
    def put() -> str:
        session["retry"] = {"store": "acme", "conn": "corp", "channel": None}
        return "ok"

    @app.get("/get")
    def get() -> str:
        return repr(session.get("retry"))

    return app


def _cookie(app: Flask) -> str:
    client = app.test_client()
    client.get("/put")
    found = client.get_cookie("session")
    assert found is not None
    return found.value


def _read(app: Flask, cookie: str) -> str:
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client.get("/get").get_data(as_text=True)


EXPECTED = "{'channel': None, 'conn': 'corp', 'store': 'acme'}"  # Flask sorts the keys


def test_cookies_pass_both_ways_between_it_and_flasks_own() -> None:
    ours, flasks = _app(SignedSession()), _app(SecureCookieSessionInterface())
    assert _read(ours, _cookie(flasks)) == EXPECTED
    assert _read(flasks, _cookie(ours)) == EXPECTED
    assert _read(ours, _cookie(ours)) == EXPECTED


def test_a_tampered_cookie_opens_an_empty_session() -> None:
    ours = _app(SignedSession())
    cookie = _cookie(ours)
    payload, _, signature = cookie.rpartition(".")
    forged = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    assert _read(ours, forged) == "None"


def test_a_new_key_is_honoured_at_once() -> None:
    ours = _app(SignedSession())
    cookie = _cookie(ours)
    assert _read(ours, cookie) == EXPECTED  # the serializer of the first key is built
    ours.secret_key = "n" * 32
    assert _read(ours, cookie) == "None"  # the old key's cookie no longer opens
    ours.config["SECRET_KEY_FALLBACKS"] = ["k" * 32]
    assert _read(ours, cookie) == EXPECTED  # Flask's fallback keys still open it
