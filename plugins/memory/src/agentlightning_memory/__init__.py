"""In-memory LightningStore: the shared store engine over dicts, with a bounded span budget."""

from __future__ import annotations

from .backend import MemoryBackend, estimate_span_size
from .store import InMemoryLightningStore

__all__ = ["InMemoryLightningStore", "MemoryBackend", "estimate_span_size"]
