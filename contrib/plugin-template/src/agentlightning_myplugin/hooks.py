"""Registration hooks. Keep this module light: name factories as "module:attribute" strings."""

from __future__ import annotations

from typing import Any

from agentlightning.plugins import hookimpl


@hookimpl
def agentlightning_register_commands(register: Any) -> None:
    register("myplugin-hello", "agentlightning_myplugin.command:configure", description="Say hello from myplugin.")
