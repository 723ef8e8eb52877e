"""Registration hooks. Keep this module light: name factories as "module:attribute" strings."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register("myplugin-hello", "agentlightning_myplugin.command:configure", description="Say hello from myplugin.")
