"""The broker's own SAML SP key pairs, for SAML connections that name no key files.

A SAML connection without ``sp_key_file``/``sp_cert_file`` (and no ``[broker] saml_key_file``)
uses the broker's own pair: made on first use and stored in the database, the private key
sealed (:mod:`broker.settings.secrets`, with ``[app] encryption_key``, else a key derived from
``[broker] secret_key``), so no ``broker keys`` step is needed to start. Every broker process
and instance on the database uses the same pair; two making the first at once store one.

Rollover (``broker keys --rollover``) adds a *next* pair that becomes active
``activate_in_days`` later. Until then the SP metadata publishes both certificates, for
signing and for encryption, so each IdP that refreshes our metadata trusts the next one
before it signs anything; assertions encrypted to either are decrypted. Once the next pair is
active the previous one is no longer published or used to sign, but still decrypts for
:data:`PREVIOUS_DECRYPTS_DAYS` (an IdP that has not refreshed our metadata yet), and is deleted
at the next rollover after that.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from broker.errors import ConfigError
from broker.keys import make_pem_pair
from broker.settings.secrets import SEALED, SecretBox
from broker.settings.stored import private_file
from broker.storage.model import SPKeyStore, StoredSPKey
from broker.upstream.saml_keys import KeyFiles, SPKeySet

#: The id of the first pair: two processes making it at once collide on it.
FIRST_KEY_ID = "first"
#: How long a previous pair still decrypts after the next one became active.
PREVIOUS_DECRYPTS_DAYS = 30
#: How long a process uses what it read before it reads the key pairs again (a rollover made
#: by another process is seen within this time; an activation exactly when it is due).
CACHE_SECONDS = 60
_DAY = 86400


@dataclass(frozen=True)
class KeyState:
    """One stored pair as ``broker keys --list`` shows it."""

    id: str
    state: str  # "active", "next" or "previous"
    activates_at: int
    not_after: int


class SPKeyRing:
    """The broker's own SP key pairs, read from ``storage``. Thread-safe."""

    def __init__(
        self,
        storage: SPKeyStore,
        box: SecretBox,
        *,
        clock: Callable[[], float] = time.time,
        make_pair: Callable[[], tuple[str, str]] = make_pem_pair,
    ) -> None:
        self._storage = storage
        self._box = box
        self._clock = clock
        self._make_pair = make_pair
        self._lock = threading.Lock()
        self._cached: tuple[float, SPKeySet] | None = None

    def current(self) -> SPKeySet:
        """The pairs to use now; the first one made and stored if there is none."""
        now = self._clock()
        with self._lock:
            if self._cached is not None and now < self._cached[0]:
                return self._cached[1]
        stored = self._storage.sp_keys()
        if not stored:
            self._add(FIRST_KEY_ID, activates_at=int(now), only_if_none=True)
            stored = self._storage.sp_keys()
        keys = self._arranged(stored, now)
        upcoming = [key.activates_at for key in stored if key.activates_at > now]
        until = min([now + CACHE_SECONDS, *upcoming])
        with self._lock:
            if self._cached is not None and self._cached[1] == keys:
                keys = self._cached[1]  # the same object while nothing changed (providers
                # rebuild their pysaml2 client when it is another)
            self._cached = (until, keys)
        return keys

    def rollover(self, *, activate_in_days: float) -> StoredSPKey:
        """Add a next pair, active ``activate_in_days`` from now; delete previous pairs past
        their decryption time."""
        if activate_in_days < 0:
            raise ValueError("activate_in_days must not be negative")
        self.current()  # the first pair exists before a next one
        now = self._clock()
        key = self._add(
            f"k{int(now)}-{secrets.token_hex(4)}", activates_at=int(now + activate_in_days * _DAY)
        )
        stored = self._storage.sp_keys()
        for old in stored:
            if _retired(stored, old, now):
                self._storage.remove_sp_key(old.id)
        with self._lock:
            self._cached = None
        return key

    def states(self) -> list[KeyState]:
        now = self._clock()
        stored = self._storage.sp_keys()
        active = _active(stored, now)
        out = []
        for key in stored:
            if key.activates_at > now:
                state = "next"
            elif active is not None and key.id == active.id:
                state = "active"
            else:
                state = "previous"
            cert = x509.load_pem_x509_certificate(key.cert_pem.encode())
            out.append(
                KeyState(
                    id=key.id,
                    state=state,
                    activates_at=key.activates_at,
                    not_after=int(cert.not_valid_after_utc.timestamp()),
                )
            )
        return out

    def _add(self, key_id: str, *, activates_at: int, only_if_none: bool = False) -> StoredSPKey:
        key_pem, cert_pem = self._make_pair()
        key = StoredSPKey(
            id=key_id,
            key_pem=self._box.seal(key_pem)[SEALED],
            cert_pem=cert_pem,
            created_at=int(self._clock()),
            activates_at=activates_at,
        )
        self._storage.add_sp_key(key, only_if_none=only_if_none)
        return key

    def _arranged(self, stored: list[StoredSPKey], now: float) -> SPKeySet:
        active = _active(stored, now)
        assert active is not None  # there is at least one pair, and the first is active
        files = {key.id: self._files(key) for key in stored}
        return SPKeySet(
            active=files[active.id],
            upcoming=tuple(files[key.id] for key in stored if key.activates_at > now),
            previous=tuple(
                files[key.id]
                for key in stored
                if key.activates_at <= now
                and key.id != active.id
                and not _retired(stored, key, now)
            ),
        )

    def _files(self, key: StoredSPKey) -> KeyFiles:
        try:
            key_pem = self._box.open({SEALED: key.key_pem})
        except ConfigError:
            raise ConfigError(
                [
                    "the broker's stored SAML SP key cannot be opened: [app] encryption_key or "
                    "[broker] secret_key changed since it was made. Restore the old value, or "
                    "delete the rows of the sp_keys table to make a new pair (then register "
                    "the new SP metadata at each IdP)"
                ]
            ) from None
        return KeyFiles(
            key_file=str(private_file(key_pem, ".key")),
            cert_file=str(private_file(key.cert_pem, ".crt")),
            cert_pem=key.cert_pem,
        )


def _active(stored: list[StoredSPKey], now: float) -> StoredSPKey | None:
    """The pair activated last by ``now`` (the first pair when none is due yet)."""
    due = [key for key in stored if key.activates_at <= now]
    return due[-1] if due else (stored[0] if stored else None)


def _retired(stored: list[StoredSPKey], key: StoredSPKey, now: float) -> bool:
    """Whether a previous pair is past its decryption time: a pair after it (``stored`` is in
    the order they take over) has been active for PREVIOUS_DECRYPTS_DAYS."""
    later = stored[stored.index(key) + 1 :]
    succeeded = [k.activates_at for k in later if k.activates_at <= now]
    return bool(succeeded) and now - min(succeeded) > PREVIOUS_DECRYPTS_DAYS * _DAY
