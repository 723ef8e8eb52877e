"""The plugin's registrations, used as a user would: through the plugin manager, store URLs and the CLI."""

from __future__ import annotations

import agentlightning_myplugin.hooks
import pytest
from agentlightning.cli import run
from agentlightning.plugins import PluginManager
from agentlightning.store import open_store
from agentlightning_myplugin.store import DictLightningStore


@pytest.fixture
def manager(plugin_manager: PluginManager) -> PluginManager:
    """``plugin_manager`` (from agentlightning's pytest plugin) with this plugin registered for one test."""
    plugin_manager.register(agentlightning_myplugin.hooks, "myplugin")
    return plugin_manager


def test_command_is_registered(manager: PluginManager, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["myplugin-hello", "--name", "tests"]) == 0
    assert "hello tests from myplugin" in capsys.readouterr().out


@pytest.mark.anyio
async def test_store_opens_by_url_and_by_name(manager: PluginManager) -> None:
    async with open_store("mydict://") as store:
        assert isinstance(store, DictLightningStore)
        rollout = await store.enqueue_rollout({"question": "2+2"})
        claimed = await store.dequeue_rollout(worker_id="w-1")
        assert claimed is not None and claimed.rollout_id == rollout.rollout_id
    named = open_store("mydict", watchdog_interval=None)
    assert isinstance(named, DictLightningStore)
    await named.close()
