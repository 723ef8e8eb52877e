"""Upstream's ``CollectionBasedLightningStore`` path.

Upstream v0.3 builds its stores on "collections" (tables, queues, key-value maps). Ours build on a
:class:`~agentlightning.store.backend.StorageBackend` wrapped in
:class:`~agentlightning.store.engine.EngineLightningStore`, which plays the same role:
``CollectionBasedLightningStore`` is that class, so ``isinstance`` checks and subclasses that only use the
LightningStore API keep working. Subclasses that override upstream's collection hooks need porting to a
``StorageBackend`` (see docs/writing-plugins.md and docs/migrating.md).
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["CollectionBasedLightningStore"]  # noqa: F822 (resolved lazily by __getattr__)

_ = time  # upstream's tests patch ``collection_based.time.time``; our engine takes a ``clock`` argument instead


def __getattr__(name: str) -> Any:
    if name == "CollectionBasedLightningStore":
        from .engine import EngineLightningStore

        return EngineLightningStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
