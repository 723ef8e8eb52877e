"""The plugin system: pluggy hook specs, a lazy plugin manager and per-kind registries.

Plugins are distributions that declare an entry point in the ``agentlightning`` group pointing at a light *hooks*
module. That module implements the ``agentlightning_register_*`` hooks with :data:`hookimpl`; each hook receives a
``register(name, factory, ...)`` callable.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT_NAME = "agentlightning"
ENTRY_POINT_GROUP = "agentlightning"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from .errors import (  # noqa: E402
    AgentLightningPluginWarning,
    DuplicatePluginNameError,
    PluginLoadError,
    UnknownComponentError,
)

_LAZY = {
    "KINDS": "manager",
    "PluginManager": "manager",
    "PluginInfo": "manager",
    "PluginFailure": "manager",
    "get_plugin_manager": "manager",
    "reset_plugin_manager": "manager",
    "Registry": "registry",
    "Registration": "registry",
}


def __getattr__(name: str) -> Any:
    """The manager and registries load on first use, so ``import agentlightning`` stays light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentlightning.plugins' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PROJECT_NAME",
    "ENTRY_POINT_GROUP",
    "hookspec",
    "hookimpl",
    "KINDS",
    "PluginManager",
    "PluginInfo",
    "PluginFailure",
    "Registry",
    "Registration",
    "get_plugin_manager",
    "reset_plugin_manager",
    "PluginLoadError",
    "DuplicatePluginNameError",
    "UnknownComponentError",
    "AgentLightningPluginWarning",
]
