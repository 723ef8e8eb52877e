"""Registration hooks. Keep this module light: name factories as "module:attribute" strings, so that nothing here
imports the implementation (agentlightning imports every plugin's hooks module at startup)."""

from __future__ import annotations

from agentlightning.plugins import Register, hookimpl


@hookimpl
def agentlightning_register_stores(register: Register) -> None:
    register(
        "mydict",
        "agentlightning_myplugin.store:DictLightningStore",
        description="A LightningStore in dicts (the plugin template's example backend).",
        url_schemes=("mydict",),
    )


@hookimpl
def agentlightning_register_commands(register: Register) -> None:
    register("myplugin-hello", "agentlightning_myplugin.command:configure", description="Say hello from myplugin.")
