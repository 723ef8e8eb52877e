from __future__ import annotations

import agentlightning_myplugin.hooks
from agentlightning.cli import run
from agentlightning.plugins import PluginManager


def test_command_is_registered(plugin_manager: PluginManager, capsys) -> None:  # type: ignore[no-untyped-def]
    plugin_manager.register(agentlightning_myplugin.hooks, "myplugin")
    assert run(["myplugin-hello", "--name", "tests"]) == 0
    assert "hello tests from myplugin" in capsys.readouterr().out
