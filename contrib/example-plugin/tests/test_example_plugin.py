"""The example plugin, exercised as a user would: through the registry, store URLs and the CLI."""

from __future__ import annotations

import json
from typing import Any

import agentlightning_example.hooks
import agentlightning_memory.hooks
import pytest
from agentlightning.cli import run
from agentlightning.plugins import PluginManager
from agentlightning.store import LightningStore, open_store
from agentlightning.testing.store import StoreConformance, StoreFactory
from agentlightning_example.store import CountingStore
from agentlightning_memory import InMemoryLightningStore


@pytest.fixture
def manager(plugin_manager: PluginManager) -> PluginManager:
    plugin_manager.register(agentlightning_memory.hooks, "memory")
    plugin_manager.register(agentlightning_example.hooks, "example")
    return plugin_manager


@pytest.mark.anyio
async def test_counting_store_wraps_the_inner_store_and_counts(manager: PluginManager) -> None:
    store: Any = open_store("counting://memory://")
    async with store:
        rollout = await store.enqueue_rollout(input={"q": 1})
        claimed = await store.dequeue_rollout(worker_id="w")
        assert claimed is not None and claimed.rollout_id == rollout.rollout_id
        stats = await store.statistics()
    assert store.calls == {"enqueue_rollout": 1, "dequeue_rollout": 1}
    assert stats["total_rollouts"] == 1 and stats["example_calls"] == 2


@pytest.mark.anyio
async def test_export_resolves_lazily(manager: PluginManager) -> None:
    import agentlightning

    assert agentlightning.CountingStore is CountingStore


def test_stats_command(manager: PluginManager, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["example-stats", "--store", "memory://"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total_rollouts"] == 0 and stats["name"] == "InMemoryLightningStore"


class TestCountingStore(StoreConformance):
    """The store contract holds through the wrapper. CountingStore is not built on EngineLightningStore (it forwards
    to any store), so it runs the contract suite, not the engine one."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        async def make(**options: Any) -> LightningStore:
            # scanning in every call: the contract wants overdue attempts noticed within seconds
            return CountingStore(InMemoryLightningStore(scan_debounce_seconds=0, watchdog_interval=None, **options))

        return make
