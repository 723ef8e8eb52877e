"""agentlightning's store conformance suites, run against this plugin's store and backend."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from agentlightning.store import LightningStore
from agentlightning.testing.store import EngineStoreConformance, StorageBackendConformance, StoreFactory
from agentlightning_myplugin.store import DictBackend, DictLightningStore


class TestDictStore(EngineStoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        async def make(**options: Any) -> LightningStore:
            return DictLightningStore(**options)  # a fresh, empty store; the suite closes it

        return make


class TestDictBackend(StorageBackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[DictBackend]:
        backend = DictBackend()
        yield backend
        backend.close()
