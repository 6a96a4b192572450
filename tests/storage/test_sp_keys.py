"""The broker's own SAML SP key pairs (:mod:`broker.sp_keys`) on SQLite and PostgreSQL: made
once however many workers start at once, sealed at rest, rolled over on a schedule."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from broker.errors import ConfigError
from broker.keys import make_pem_pair
from broker.settings.secrets import SecretBox, derived_box
from broker.sp_keys import FIRST_KEY_ID, PREVIOUS_DECRYPTS_DAYS, SPKeyRing
from broker.storage import SQLStorage, StoredSPKey
from tests.support.clock import Clock

DAY = 86400
#: Making a 3072-bit key takes a quarter of a second: the tests reuse a few.
_PAIRS = [make_pem_pair() for _ in range(3)]


def pairs() -> object:
    """A make_pair that hands out the prepared pairs in turn."""
    lock = threading.Lock()
    counter = iter(range(10_000))

    def make() -> tuple[str, str]:
        with lock:
            return _PAIRS[next(counter) % len(_PAIRS)]

    return make


def ring(storage: SQLStorage, clock: Clock, box: SecretBox | None = None) -> SPKeyRing:
    return SPKeyRing(
        storage,
        box or derived_box("s" * 40, purpose="sp-keys"),
        clock=clock,
        make_pair=pairs(),  # type: ignore[arg-type]
    )


def test_the_first_use_makes_one_pair_sealed_at_rest(storage: SQLStorage) -> None:
    keys = ring(storage, Clock()).current()
    [stored] = storage.sp_keys()
    assert stored.id == FIRST_KEY_ID
    assert "PRIVATE KEY" not in stored.key_pem, "the private key is sealed in the database"
    assert Path(keys.active.key_file).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path(keys.active.key_file).stat().st_mode & 0o777 == 0o600
    assert keys.upcoming == keys.previous == ()


def test_forty_workers_starting_at_once_make_one_pair(storage: SQLStorage) -> None:
    clock = Clock()
    rings = [ring(storage, clock) for _ in range(40)]
    barrier = threading.Barrier(40)

    def first_use(one: SPKeyRing) -> str:
        barrier.wait()
        return one.current().active.cert_pem

    with ThreadPoolExecutor(40) as pool:
        certificates = set(pool.map(first_use, rings))
    assert len(storage.sp_keys()) == 1
    assert len(certificates) == 1, "every worker uses the one stored pair"


def test_only_if_none_refuses_a_second_first_pair(storage: SQLStorage) -> None:
    key = StoredSPKey(id="a", key_pem="x", cert_pem="y", created_at=1, activates_at=1)
    assert storage.add_sp_key(key, only_if_none=True)
    other = StoredSPKey(id="b", key_pem="x", cert_pem="y", created_at=1, activates_at=1)
    assert not storage.add_sp_key(other, only_if_none=True)
    assert not storage.add_sp_key(key), "an id is used once"
    assert [k.id for k in storage.sp_keys()] == ["a"]
    assert storage.remove_sp_key("a")
    assert not storage.remove_sp_key("a")


def test_a_rollover_publishes_the_next_pair_before_it_signs(storage: SQLStorage) -> None:
    clock = Clock()
    keys = ring(storage, clock)
    first = keys.current().active
    keys.rollover(activate_in_days=14)
    before = keys.current()
    assert before.active == first, "the current pair still signs"
    [upcoming] = before.upcoming
    assert upcoming.cert_pem != first.cert_pem
    assert [pair.cert_pem for pair in before.published] == [first.cert_pem, upcoming.cert_pem]
    clock.advance(14 * DAY + 1)
    after = keys.current()
    assert after.active.cert_pem == upcoming.cert_pem, "the next pair signs once due"
    assert [pair.cert_pem for pair in after.previous] == [first.cert_pem], "the old decrypts"
    assert after.published == (after.active,)
    assert [s.state for s in keys.states()] == ["previous", "active"]


def test_a_previous_pair_decrypts_for_a_while_then_is_deleted(storage: SQLStorage) -> None:
    clock = Clock()
    keys = ring(storage, clock)
    keys.current()
    keys.rollover(activate_in_days=0)
    clock.advance((PREVIOUS_DECRYPTS_DAYS - 1) * DAY)
    assert len(keys.current().previous) == 1
    clock.advance(2 * DAY)
    assert keys.current().previous == (), "past its decryption time"
    keys.rollover(activate_in_days=14)
    assert FIRST_KEY_ID not in [k.id for k in storage.sp_keys()], "deleted at the next rollover"


def test_another_process_sees_a_rollover_within_the_cache_time(storage: SQLStorage) -> None:
    clock = Clock()
    one, other = ring(storage, clock), ring(storage, clock)
    assert one.current() == other.current()
    one.rollover(activate_in_days=1)
    clock.advance(61)
    assert len(other.current().upcoming) == 1


def test_the_same_key_set_object_while_nothing_changes(storage: SQLStorage) -> None:
    clock = Clock()
    keys = ring(storage, clock)
    first = keys.current()
    clock.advance(3600)
    assert keys.current() is first, "providers rebuild only when the pairs change"


def test_a_pair_sealed_with_another_secret_is_a_clear_error(storage: SQLStorage) -> None:
    ring(storage, Clock()).current()
    other = ring(storage, Clock(), SecretBox([Fernet.generate_key().decode()]))
    with pytest.raises(ConfigError, match="secret_key changed"):
        other.current()


def test_a_negative_delay_is_refused(storage: SQLStorage) -> None:
    with pytest.raises(ValueError, match="negative"):
        ring(storage, Clock()).rollover(activate_in_days=-1)
    assert len(storage.sp_keys()) <= 1
