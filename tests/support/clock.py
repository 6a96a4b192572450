"""The one test clock: a callable the broker, the sandbox and the dev IdP take as ``clock``."""

from __future__ import annotations

import time


class Clock:
    """Stands still until a test moves it (``clock.now += 60`` or ``clock.advance(60)``)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
