"""The store contract, its errors, and store lookup by name or URL."""

from __future__ import annotations

from typing import Any

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

__all__ = [
    "LightningStore",
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
