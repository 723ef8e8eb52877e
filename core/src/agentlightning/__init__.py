"""agentlightning: train AI agents with almost no code change.

``import agentlightning as agl`` is light: it imports the data model and the contracts, never a plugin. Names that
plugins provide (``agl.InMemoryLightningStore``, ``agl.APO``, ...) resolve on first access.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.4.0"

from .store.base import UNSET, LightningStore
from .store.errors import NotFoundError, StoreError
from .types import *  # noqa: F403
from .types import __all__ as _types_all

# Names defined in core but imported on first access, to keep `import agentlightning` light.
_LAZY_CORE: dict[str, str] = {
    "hookimpl": "agentlightning.plugins:hookimpl",
    "open_store": "agentlightning.store:open_store",
    "PluginManager": "agentlightning.plugins:PluginManager",
    "get_plugin_manager": "agentlightning.plugins:get_plugin_manager",
}

__all__ = ["__version__", "LightningStore", "UNSET", "StoreError", "NotFoundError", *_types_all]


def register_lazy(name: str, target: str) -> None:
    """Make ``agentlightning.<name>`` resolve to ``"module:attribute"`` on first access (used by core modules)."""
    _LAZY_CORE[name] = target


def __getattr__(name: str) -> Any:
    from .plugins.registry import resolve_factory

    target = _LAZY_CORE.get(name)
    if target is not None:
        value = resolve_factory(target)
        globals()[name] = value
        return value
    if name.startswith("_"):
        raise AttributeError(name)
    from .plugins import get_plugin_manager
    from .plugins.errors import UnknownComponentError

    manager = get_plugin_manager()
    registration = manager.registry("exports").get(name)
    if registration is None:
        try:
            manager.get("exports", name)
        except UnknownComponentError as exc:
            if ("exports", name) in _known_exports():
                raise ImportError(f"agentlightning.{name} is not installed: {exc}") from None
        raise AttributeError(f"module 'agentlightning' has no attribute {name!r}")
    value = registration.load()
    globals()[name] = value
    return value


def _known_exports() -> set[tuple[str, str]]:
    from .plugins.manager import KNOWN_PROVIDERS

    return set(KNOWN_PROVIDERS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CORE))
