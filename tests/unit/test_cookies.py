"""The broker's cookies carry the attributes werkzeug writes itself, ``Expires`` included (it
is formatted once a second here)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from broker.web import cookies


def _both(max_age: int, secure: bool) -> tuple[str, str]:
    ours, theirs = Response(), Response()
    cookies.give(ours, "broker_x", "v", secure=secure, max_age=max_age)
    theirs.set_cookie(
        cookies.cookie_name("broker_x", secure), "v", max_age=max_age, path="/", secure=secure,
        httponly=True, samesite="Lax",
    )  # fmt: skip
    return ours.headers["Set-Cookie"], theirs.headers["Set-Cookie"]


def test_a_cookie_given_is_the_one_werkzeug_would_write() -> None:
    for max_age in (0, 1, 600, 86400, 400 * 86400):
        for secure in (False, True):
            ours, theirs = _both(max_age, secure)
            if ours != theirs:  # a second began between the two: both again
                ours, theirs = _both(max_age, secure)
            assert ours == theirs
            assert "Expires=" in ours
