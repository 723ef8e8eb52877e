"""The store contract, its errors, and store lookup by name or URL.

To write a store backend, implement :class:`StorageBackend` and :class:`StorageTransaction` (storage and atomicity)
and wrap it in :class:`EngineLightningStore`, which supplies the whole LightningStore behaviour; these three load
lazily, on first access, so ``import agentlightning.store`` stays light. See ``docs/writing-plugins.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import UNSET, LightningStore, LightningStoreCapabilities, LightningStoreStatistics, Unset, is_unset
from .errors import (
    InvalidRequestError,
    NotFoundError,
    SpansEvictedError,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from .backend import StorageBackend, StorageTransaction
    from .engine import EngineLightningStore

__all__ = [
    "LightningStore",
    "EngineLightningStore",
    "StorageBackend",
    "StorageTransaction",
    "LightningStoreCapabilities",
    "LightningStoreStatistics",
    "UNSET",
    "Unset",
    "is_unset",
    "open_store",
    "StoreError",
    "NotFoundError",
    "InvalidRequestError",
    "SpansEvictedError",
    "StoreClosedError",
    "StoreUnavailableError",
    "StoreCorruptError",
]


_LAZY = {
    "EngineLightningStore": ".engine",
    "StorageBackend": ".backend",
    "StorageTransaction": ".backend",
    # upstream v0.3's names at this path (the store implementations come from plugins)
    "LightningStoreThreaded": ".threading",
    "CollectionBasedLightningStore": ".collection_based",
    "InMemoryLightningStore": ".memory",
    "LightningStoreServer": ".client_server",
    "LightningStoreClient": ".client_server",
}


def __getattr__(name: str) -> Any:
    """``EngineLightningStore``, ``StorageBackend``, ``StorageTransaction`` and upstream's store names, imported on
    first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def open_store(target: Any = "memory://", **kwargs: Any) -> LightningStore:
    """A store from a URL (``memory://``, ``sqlite:///run.db``, ``http://127.0.0.1:4747``), a registered name, or a
    store instance (returned as is).

    URLs resolve through the URL schemes that store plugins register; the factory receives ``url=`` and ``kwargs``.
    Names resolve through the store registry; the factory receives ``kwargs``.
    """
    if isinstance(target, LightningStore):
        return target
    if not isinstance(target, str):
        raise TypeError(f"open_store expects a URL, a store name or a LightningStore, got {type(target).__name__}")
    from agentlightning.plugins import get_plugin_manager

    manager = get_plugin_manager()
    if "://" in target:
        scheme = target.split("://", 1)[0].lower()
        return manager.get_scheme("stores", scheme).create(url=target, **kwargs)
    return manager.create("stores", target, **kwargs)
