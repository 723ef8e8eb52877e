"""Upstream's module path of ``InMemoryLightningStore`` (provided by the ``agentlightning-memory`` plugin)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from agentlightning._reexport import lazy_exports

__all__ = ["InMemoryLightningStore", "estimate_model_size"]  # noqa: F822 (resolved lazily by __getattr__)

__getattr__, __dir__ = lazy_exports(
    __name__, {"InMemoryLightningStore": "agentlightning_memory.store:InMemoryLightningStore"}, plugin="memory"
)


def estimate_model_size(obj: Any) -> int:
    """A rough recursive size in bytes of a model, mapping or sequence (``sys.getsizeof`` of every part)."""
    if hasattr(obj, "__attrs_attrs__") or hasattr(obj, "model_fields"):
        values = [getattr(obj, name) for name in _field_names(obj)]
        return sum(estimate_model_size(value) for value in values) + sys.getsizeof(obj)
    if isinstance(obj, Mapping):
        return sum(estimate_model_size(value) for value in obj.values()) + sys.getsizeof(obj)
    if isinstance(obj, (list, tuple, set)):
        return sum(estimate_model_size(value) for value in obj) + sys.getsizeof(obj)
    return sys.getsizeof(obj)


def _field_names(obj: Any) -> list[str]:
    attrs_fields = getattr(type(obj), "__attrs_attrs__", None)
    if attrs_fields is not None:
        return [field.name for field in attrs_fields]
    return list(getattr(type(obj), "model_fields", {}))
