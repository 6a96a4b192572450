"""The storage's model: no SQLAlchemy in it, and the Protocols the repositories implement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import broker.storage
from broker.storage import model, sql

#: Loads model.py and keys.py from their files with SQLAlchemy and Alembic made unimportable
#: (``import broker.storage.model`` would run the package's ``__init__``, which uses SQL).
WITHOUT_SQLALCHEMY = r"""
import importlib.util, sys
for name in ("sqlalchemy", "alembic"):
    sys.modules[name] = None
for name in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location(f"isolated_{name}", f"broker/storage/{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print("ok")
"""

AGGREGATES = {
    model.PendingStore: sql.SQLPendingStore,
    model.OnceStore: sql.SQLOnceStore,
    model.LinkStore: sql.SQLLinkStore,
    model.CreationStore: sql.SQLCreationStore,
    model.CounterStore: sql.SQLCounterStore,
    model.AuditStore: sql.SQLAuditStore,
    model.SessionStore: sql.SQLSessionStore,
    model.TenantStore: sql.SQLTenantStore,
    model.SignInStore: sql.SQLSignInStore,
}


def verbs(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_the_model_and_the_keys_import_no_sqlalchemy() -> None:
    root = Path(broker.storage.__file__).parent.parent.parent
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SQLALCHEMY, "model", "keys"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


@pytest.mark.parametrize(("protocol", "repository"), AGGREGATES.items())
def test_each_repository_offers_its_protocol(protocol: type, repository: type) -> None:
    assert verbs(protocol)
    assert verbs(protocol) <= set(dir(repository))


def test_storage_is_every_narrow_protocol_and_sqlstorage_offers_it_all() -> None:
    assert set(AGGREGATES) <= set(model.Storage.__mro__)
    everything = set().union(*map(verbs, AGGREGATES), verbs(model.Storage))
    assert everything <= set(dir(broker.storage.SQLStorage))
    # No verb in two aggregates: each belongs to one repository.
    assert sum(len(verbs(p)) for p in AGGREGATES) == len(set().union(*map(verbs, AGGREGATES)))
