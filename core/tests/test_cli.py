"""The `agl` command line: version, plugin listing and plugin-provided commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from agentlightning import __version__
from agentlightning.cli import run
from agentlightning.plugins import AgentLightningPluginWarning, PluginManager, hookimpl


def test_version(capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager) -> None:
    assert run(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_plugins_lists_core_and_hand_registered(
    capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager
) -> None:
    class Mine:
        @hookimpl
        def agentlightning_register_stores(self, register: Any) -> None:
            register("mystore", "collections:OrderedDict")

    plugin_manager.register(Mine(), "mine")
    assert run(["plugins", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in payload["plugins"]}
    assert by_name["agentlightning"]["distribution"] == "agentlightning-core"
    assert by_name["mine"]["registrations"] == {"stores": ["mystore"]}
    assert payload["failures"] == []


def test_plugins_details_show_descriptions(capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager) -> None:
    class Described:
        @hookimpl
        def agentlightning_register_algorithms(self, register: Any) -> None:
            register(
                "gpu-algo", "collections:OrderedDict", description="Missing GPU extra (torch): pip install x[gpu]."
            )

    plugin_manager.register(Described(), "described")
    assert run(["plugins"]) == 0
    assert "Missing GPU extra" not in capsys.readouterr().out
    assert run(["plugins", "--details"]) == 0
    assert "gpu-algo: Missing GPU extra (torch): pip install x[gpu]." in capsys.readouterr().out


def test_plugins_strict_fails_on_a_broken_plugin(
    capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager
) -> None:
    class Broken:
        @hookimpl
        def agentlightning_register_stores(self, register: Any) -> None:
            raise RuntimeError("cannot register")

    plugin_manager.register(Broken(), "broken")
    assert run(["plugins"]) == 0
    err = capsys.readouterr().err
    # exactly one clear line, not a Python warning as well
    assert err.count("cannot register") == 1 and "FAILED plugin 'broken'" in err
    assert run(["plugins", "--strict"]) == 1


def test_plugins_lists_a_plugin_that_pluggy_rejected(
    capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager
) -> None:
    class WrongArgument:
        @hookimpl
        def agentlightning_register_tracers(self, registrar: Any) -> None:
            registrar("t", "x:y")

    with pytest.warns(AgentLightningPluginWarning):
        plugin_manager.register(WrongArgument(), "wrong-argument")
    assert run(["plugins", "--strict"]) == 1
    captured = capsys.readouterr()
    assert "wrong-argument" not in captured.out
    [line] = [line for line in captured.err.splitlines() if line.startswith("FAILED")]
    assert "plugin 'wrong-argument'" in line and "registrar" in line and "agentlightning_register_tracers" in line


def test_plugin_commands_are_added(capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager) -> None:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="world")
        parser.set_defaults(func=lambda args: print(f"hello {args.name}") or 3)

    class Commands:
        @hookimpl
        def agentlightning_register_commands(self, register: Any) -> None:
            register("hello", configure, description="Say hello.")
            register("broken-cmd", "no_such_module_xyz:configure")

    plugin_manager.register(Commands(), "cmds")
    assert run(["hello", "--name", "agl"]) == 3
    assert "hello agl" in capsys.readouterr().out
    assert run(["broken-cmd"]) == 2
    assert "failed to set up this command" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str], plugin_manager: PluginManager) -> None:
    assert run([]) == 0
    assert "usage: agl" in capsys.readouterr().out
