"""The shared store conformance suites (agentlightning.testing.store) against InMemoryLightningStore and its
backend."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from agentlightning.store import LightningStore
from agentlightning.testing.store import EngineStoreConformance, StorageBackendConformance, StoreFactory
from agentlightning_memory import InMemoryLightningStore
from agentlightning_memory.backend import MemoryBackend


class TestInMemoryStore(EngineStoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        async def make(**options: Any) -> LightningStore:
            return InMemoryLightningStore(**options)

        return make


class TestMemoryBackend(StorageBackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[MemoryBackend]:
        backend = MemoryBackend()
        yield backend
        backend.close()
