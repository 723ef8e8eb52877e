"""The plugin system: pluggy hook specs, a lazy plugin manager and per-kind registries.

Plugins are distributions that declare an entry point in the ``agentlightning`` group pointing at a light *hooks*
module. pluggy registers that module and calls the ``agentlightning_register_*`` hooks it implements with
:data:`hookimpl` (see :mod:`agentlightning.plugins.hookspecs`); each hook receives a :class:`Register` callable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

PROJECT_NAME = "agentlightning"
ENTRY_POINT_GROUP = "agentlightning"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from .errors import (  # noqa: E402
    AgentLightningPluginWarning,
    ComponentTypeError,
    DuplicatePluginNameError,
    PluginLoadError,
    UnknownComponentError,
)

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from .manager import (
        ADAPTERS,
        ALGORITHMS,
        COMMANDS,
        EXECUTION_STRATEGIES,
        EXPORTS,
        KIND_SPECS,
        KINDS,
        STORE_SERVERS,
        STORES,
        TRACERS,
        WEB_APPS,
        PluginFailure,
        PluginInfo,
        PluginManager,
        get_plugin_manager,
        reset_plugin_manager,
    )
    from .registry import Kind, Register, Registration, Registry

_LAZY = {
    "KINDS": "manager",
    "KIND_SPECS": "manager",
    "STORES": "manager",
    "STORE_SERVERS": "manager",
    "TRACERS": "manager",
    "ADAPTERS": "manager",
    "ALGORITHMS": "manager",
    "EXECUTION_STRATEGIES": "manager",
    "EXPORTS": "manager",
    "COMMANDS": "manager",
    "WEB_APPS": "manager",
    "PluginManager": "manager",
    "PluginInfo": "manager",
    "PluginFailure": "manager",
    "get_plugin_manager": "manager",
    "reset_plugin_manager": "manager",
    "Registry": "registry",
    "Registration": "registry",
    "Register": "registry",
    "Kind": "registry",
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
    "KIND_SPECS",
    "Kind",
    "STORES",
    "STORE_SERVERS",
    "TRACERS",
    "ADAPTERS",
    "ALGORITHMS",
    "EXECUTION_STRATEGIES",
    "EXPORTS",
    "COMMANDS",
    "WEB_APPS",
    "PluginManager",
    "PluginInfo",
    "PluginFailure",
    "Registry",
    "Registration",
    "Register",
    "get_plugin_manager",
    "reset_plugin_manager",
    "PluginLoadError",
    "DuplicatePluginNameError",
    "UnknownComponentError",
    "ComponentTypeError",
    "AgentLightningPluginWarning",
]
