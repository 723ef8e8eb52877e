"""Stand-ins for upstream's collection interfaces: see :mod:`agentlightning.store.collection`."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

__all__ = [
    "Collection",
    "Queue",
    "KeyValue",
    "LightningCollections",
    "ListBasedCollection",
    "DequeBasedQueue",
    "DictBasedKeyValue",
]


class _StandIn:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} is upstream v0.3's storage internal; this package stores through "
            "agentlightning.store.StorageBackend and EngineLightningStore (see docs/writing-plugins.md)"
        )


class Collection(_StandIn, Generic[T]):
    """Upstream's table of items (stand-in)."""


class Queue(_StandIn, Generic[T]):
    """Upstream's FIFO queue (stand-in)."""


class KeyValue(_StandIn, Generic[K, V]):
    """Upstream's key-value map (stand-in)."""


class LightningCollections(_StandIn):
    """Upstream's bundle of collections behind a store (stand-in)."""


class ListBasedCollection(Collection[T]):
    """Upstream's in-memory table (stand-in)."""


class DequeBasedQueue(Queue[T]):
    """Upstream's in-memory queue (stand-in)."""


class DictBasedKeyValue(KeyValue[K, V]):
    """Upstream's in-memory key-value map (stand-in)."""
