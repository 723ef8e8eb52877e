"""The plugin system: pluggy hook specs, a lazy plugin manager and per-kind registries.

Plugins are distributions that declare an entry point in the ``agentlightning`` group pointing at a light *hooks*
module. That module implements the ``agentlightning_register_*`` hooks with :data:`hookimpl`; each hook receives a
``register(name, factory, ...)`` callable.
"""

from __future__ import annotations

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
from .manager import KINDS, PluginFailure, PluginInfo, PluginManager, get_plugin_manager, reset_plugin_manager  # noqa: E402
from .registry import Registration, Registry  # noqa: E402

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
