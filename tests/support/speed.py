"""Two costs of the test servers that have nothing to do with what the tests check, removed.

- :func:`use_hashed_trust_store`: every ``httpx.Client()`` (and ``httpx.get``) builds a new SSL
  context and loads the whole CA bundle into it (``SSL_CERT_FILE``, else certifi's): 30 ms of
  CPU, paid by the broker's outbound clients and the tests' own, hundreds of times a run, though
  no test speaks TLS. A hashed certificate directory (``SSL_CERT_DIR``) is read lazily, only for
  a certificate being verified: certificates are still verified, against the system's store.
- :class:`KeyRecycler`: the development IdP makes a new 2048-bit RSA key for each instance and at
  each rotation, 60 ms of CPU each, and the samlify IdP one per start (more, in node). Keys are
  handed out again to later tests only: within a test, every key is new (two IdPs, or a
  rotation, never share one), as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

SYSTEM_CERT_DIR = Path("/etc/ssl/certs")


def use_hashed_trust_store(environ: MutableMapping[str, str] = os.environ) -> None:
    """Trust the system's hashed certificate directory instead of loading a bundle file."""
    directory = SYSTEM_CERT_DIR
    if not directory.is_dir() or not any(directory.glob("*.0")):
        return  # no hashed directory here: keep the bundle
    environ.pop("SSL_CERT_FILE", None)
    environ["SSL_CERT_DIR"] = str(directory)


class KeyRecycler:
    """Wraps a key factory: :meth:`make` gives a key no one in the current test has had, from
    the keys of earlier tests when there are any; :meth:`end_test` makes this test's keys
    available to the next one."""

    def __init__(self, factory: Callable[[], Any] | None = None) -> None:
        self._factory = factory
        self._free: list[Any] = []
        self._used: list[Any] = []
        self._lock = threading.Lock()

    def make(self) -> Any:
        key = self.take()
        if key is None:
            assert self._factory is not None, "no factory: take() and adopt() only"
            key = self._factory()
            self.adopt(key)
        return key

    def take(self) -> Any | None:
        """A key of an earlier test (now this test's), or None when there is none."""
        with self._lock:
            if not self._free:
                return None
            key = self._free.pop()
            self._used.append(key)
            return key

    def adopt(self, key: Any) -> None:
        """A key made in this test (elsewhere): handed on after it."""
        with self._lock:
            self._used.append(key)

    def end_test(self) -> None:
        with self._lock:
            self._free.extend(self._used)
            self._used.clear()
