"""The example plugin, exercised as a user would: through the registry, store URLs and the CLI."""

from __future__ import annotations

import json
from typing import Any

import agentlightning_example.hooks
import agentlightning_memory.hooks
import pytest
from agentlightning.cli import run
from agentlightning.plugins import PluginManager
from agentlightning.store import open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def manager(plugin_manager: PluginManager) -> PluginManager:
    plugin_manager.register(agentlightning_memory.hooks, "memory")
    plugin_manager.register(agentlightning_example.hooks, "example")
    return plugin_manager


async def test_counting_store_wraps_the_inner_store_and_counts(manager: PluginManager) -> None:
    store: Any = open_store("counting://memory://")
    async with store:
        rollout = await store.enqueue_rollout(input={"q": 1})
        claimed = await store.dequeue_rollout(worker_id="w")
        assert claimed is not None and claimed.rollout_id == rollout.rollout_id
        stats = await store.statistics()
    assert store.calls == {"enqueue_rollout": 1, "dequeue_rollout": 1}
    assert stats["total_rollouts"] == 1 and stats["example_calls"] == 2


async def test_export_resolves_lazily(manager: PluginManager) -> None:
    import agentlightning
    from agentlightning_example.store import CountingStore

    assert agentlightning.CountingStore is CountingStore


def test_stats_command(manager: PluginManager, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["example-stats", "--store", "memory://"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total_rollouts"] == 0 and stats["name"] == "InMemoryLightningStore"
