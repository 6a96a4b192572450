"""The app's ``ensure_sync`` answers as Flask's does: plain functions and methods as they
are, anything async (a partial of one included) handed to Flask's own handling."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from flask import Flask

from broker.app import BrokerFlask


def plain() -> str:
    return "ok"


async def later() -> str:
    return "ok"


class Hooks:
    def method(self) -> str:
        return "ok"

    async def async_method(self) -> str:
        return "ok"


def _flask_answer(app: Flask, func: Any) -> Any:
    try:
        return Flask.ensure_sync(app, func)
    except RuntimeError as error:  # Flask without its "async" extra
        return type(error)


def _ours(app: BrokerFlask, func: Any) -> Any:
    try:
        return app.ensure_sync(func)
    except RuntimeError as error:
        return type(error)


@pytest.mark.parametrize(
    "func",
    [plain, Hooks().method, later, Hooks().async_method, functools.partial(later)],
    ids=["function", "method", "async", "async-method", "async-partial"],
)
def test_each_kind_gets_flasks_answer(func: Any) -> None:
    app = BrokerFlask(__name__)
    theirs, ours = _flask_answer(app, func), _ours(app, func)
    if theirs is func:
        assert ours is func
    else:
        assert ours is not func
        assert type(ours) is type(theirs) or ours is theirs
