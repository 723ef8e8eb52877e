"""Registration hooks. Keep this module light: name factories as "module:attribute" strings, so that nothing here
imports the implementation (agentlightning imports every plugin's hooks module at startup)."""

from __future__ import annotations

from typing import Any

from agentlightning.plugins import hookimpl


@hookimpl
def agentlightning_register_stores(register: Any) -> None:
    register(
        "mydict",
        "agentlightning_myplugin.store:DictLightningStore",
        description="A LightningStore in dicts (the plugin template's example backend).",
        url_schemes=("mydict",),
    )


@hookimpl
def agentlightning_register_commands(register: Any) -> None:
    register("myplugin-hello", "agentlightning_myplugin.command:configure", description="Say hello from myplugin.")
