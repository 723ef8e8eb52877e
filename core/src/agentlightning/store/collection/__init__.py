"""Upstream's collection layer (``ListBasedCollection``, ``DequeBasedQueue``, ``DictBasedKeyValue``).

These were upstream v0.3's storage internals under ``CollectionBasedLightningStore``. Our stores sit on a
:class:`~agentlightning.store.backend.StorageBackend` instead, so these names exist only so that imports of the path
work; building one raises ``NotImplementedError`` naming the replacement.
"""

from __future__ import annotations

from . import base
from .base import *  # noqa: F403

__all__ = list(base.__all__)
