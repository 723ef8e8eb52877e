"""The shared store conformance suites (agentlightning.testing.store) against SqliteLightningStore and SqliteBackend.

Each store gets its own file in a fresh directory (on ``/dev/shm`` when there is one: the suite checks semantics,
and a tmpfs spares it the fsyncs of creating and closing a few hundred databases). Engine options
(``scan_debounce_seconds``, ``watchdog_interval``, ``clock``) pass straight through.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from agentlightning.store import LightningStore
from agentlightning.testing.store import EngineStoreConformance, StorageBackendConformance
from agentlightning_sqlite import SqliteLightningStore


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    if not os.path.isdir("/dev/shm"):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="agl-sqlite-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def store_factory(store_dir: Path) -> Iterator[Any]:
    """``await store_factory(**engine_options)`` -> a fresh SqliteLightningStore on its own file."""
    created: List[SqliteLightningStore] = []
    numbers = itertools.count()

    async def factory(**options: Any) -> LightningStore:
        store = SqliteLightningStore(store_dir / f"store-{next(numbers)}.db", **options)
        created.append(store)
        return store

    yield factory
    for store in created:  # the suite closes what it uses; this also covers stores a failing test left open
        if store._watchdog is not None:
            store._watchdog.stop()
        store._closed = True
        store.backend.close()


class TestSqliteStore(EngineStoreConformance):
    """The store_factory above (module level) feeds the suite."""


class TestSqliteBackend(StorageBackendConformance):
    """The backend fixture of conftest.py: a fresh SqliteBackend on a temporary file."""
