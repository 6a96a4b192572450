"""The SP key files of stored stores: written privately, and gone when no longer used."""

from __future__ import annotations

import stat
from pathlib import Path

from broker.keys import make_pem_pair
from broker.settings.stored import readable_document, release_key_files


def _document(*pairs: tuple[str, str]) -> dict[str, object]:
    return {
        "connections": {
            f"c{n}": {"type": "saml", "sp_key_pem": key, "sp_cert_pem": cert}
            for n, (key, cert) in enumerate(pairs)
        }
    }


def test_key_files_are_private_and_follow_the_store() -> None:
    first, second = make_pem_pair(), make_pem_pair()
    opened = readable_document(_document(first, second), None, None, store_key="s1")
    files = [
        Path(opened["connections"][c][k])
        for c in ("c0", "c1")
        for k in ("sp_key_file", "sp_cert_file")
    ]
    assert all(f.is_file() for f in files)
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    assert "sp_key_pem" not in opened["connections"]["c0"]

    # The store drops its second connection: that pair's files go, the first's stay.
    readable_document(_document(first), None, None, store_key="s1")
    assert files[0].is_file()
    assert files[1].is_file()
    assert not files[2].exists()
    assert not files[3].exists()

    # Another store using the same pair keeps it when the first store goes.
    readable_document(_document(first), None, None, store_key="s2")
    release_key_files("s1")
    assert files[0].is_file()
    release_key_files("s2")
    assert not files[0].exists()
    assert not files[1].exists()
