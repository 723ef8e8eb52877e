"""Errors and warnings of the plugin system."""

from __future__ import annotations


class AgentLightningPluginWarning(UserWarning):
    """A plugin failed to load; the others still work. Turn into an error with ``-W error`` or strict mode."""


class PluginLoadError(RuntimeError):
    """A plugin failed to load while strict mode was on; the message names the plugin and what failed."""


class DuplicatePluginNameError(ValueError):
    """Two plugins registered the same component name; the message names both."""


class ComponentTypeError(TypeError):
    """A plugin's factory built something that is not of its kind (a store that is not a ``LightningStore``, ...);
    the message names the plugin."""


class UnknownComponentError(LookupError):
    """No installed plugin provides the component; the message lists what is installed and what would provide it."""
