"""The shared store conformance suites (agentlightning.testing.store) against a real PostgreSQL server.

Each store and backend gets a schema of its own on the session's server (``store_factory`` and ``backend`` in
conftest.py). Engine options (``scan_debounce_seconds``, ``watchdog_interval``, ``clock``) pass straight through.
"""

from __future__ import annotations

from agentlightning.testing.store import EngineStoreConformance, StorageBackendConformance


class TestPostgresStore(EngineStoreConformance):
    """The store_factory fixture of conftest.py feeds the suite (the state machine included)."""


class TestPostgresBackend(StorageBackendConformance):
    """The backend fixture of conftest.py: a fresh PostgresBackend on its own schema."""
