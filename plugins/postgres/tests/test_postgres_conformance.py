"""The shared store conformance suites (agentlightning.testing.store) against a real PostgreSQL server.

Each store gets a schema of its own on the session's server (see conftest.py). Engine options
(``scan_debounce_seconds``, ``watchdog_interval``, ``clock``) pass straight through.
"""

from __future__ import annotations

from typing import Any, Iterator, List

import pytest
from agentlightning.store import LightningStore
from agentlightning.testing.store import EngineStoreConformance, StorageBackendConformance
from agentlightning_postgres import PostgresLightningStore

from conftest import new_schema_url


@pytest.fixture
def store_factory(postgres_url: str) -> Iterator[Any]:
    """``await store_factory(**engine_options)`` -> a fresh PostgresLightningStore on its own schema."""
    created: List[PostgresLightningStore] = []

    async def factory(**options: Any) -> LightningStore:
        store = PostgresLightningStore(new_schema_url(postgres_url), **options)
        created.append(store)
        return store

    yield factory
    for store in created:  # the suite closes what it uses; this also covers stores a failing test left open
        if store._watchdog is not None:
            store._watchdog.stop()
        store._closed = True
        store.backend.close()


class TestPostgresStore(EngineStoreConformance):
    """The store_factory above feeds the suite."""


class TestPostgresBackend(StorageBackendConformance):
    """The backend fixture of conftest.py: a fresh PostgresBackend on its own schema."""
