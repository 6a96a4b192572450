"""The storage's conformance suite: one module per repository, each run on SQLite and on
PostgreSQL (the ``storage`` fixture of conftest.py)."""
