"""``ModelCompat``: pydantic's model methods on the attrs models, for code written against upstream v0.3.

Upstream's data model was pydantic; ours is attrs (see docs/data-model.md). The common calls keep working:
``model_dump()``, ``model_dump_json()``, ``Model.model_validate(data)``, ``Model.model_validate_json(text)`` and
``model_copy(update=...)``. Dumps are JSON-ready data (the same as :func:`agentlightning.types.to_dict`).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Collection, Dict, Mapping, Optional, Type, TypeVar, Union

__all__ = ["ModelCompat"]

M = TypeVar("M", bound="ModelCompat")


def _prune(data: Any, exclude_none: bool) -> Any:
    if not exclude_none:
        return data
    if isinstance(data, dict):
        return {k: _prune(v, True) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_prune(v, True) for v in data]
    return data


class ModelCompat:
    """Mixin of pydantic-style methods (no state: it adds no slot)."""

    __slots__ = ()

    def model_dump(
        self,
        *,
        mode: str = "python",
        include: Optional[Collection[str]] = None,
        exclude: Optional[Collection[str]] = None,
        exclude_none: bool = False,
        **_: Any,
    ) -> Dict[str, Any]:
        """The model as a dict of JSON-ready data; ``include``/``exclude`` name top-level fields."""
        from agentlightning.types.serialization import to_dict

        data: Dict[str, Any] = to_dict(self)
        if include is not None:
            data = {k: v for k, v in data.items() if k in include}
        if exclude is not None:
            data = {k: v for k, v in data.items() if k not in exclude}
        pruned: Dict[str, Any] = _prune(data, exclude_none)
        return pruned

    def model_dump_json(self, *, indent: Optional[int] = None, **kwargs: Any) -> str:
        return json.dumps(self.model_dump(**kwargs), indent=indent)

    @classmethod
    def model_validate(cls: Type[M], obj: Any, **_: Any) -> M:
        """Build from a dict (or return ``obj`` if it already is one); raises ``ValidationError``."""
        if isinstance(obj, cls):
            return obj
        from agentlightning.types.serialization import from_dict

        return from_dict(obj, cls)

    @classmethod
    def model_validate_json(cls: Type[M], text: Union[str, bytes], **_: Any) -> M:
        from agentlightning.types.serialization import from_json

        return from_json(text, cls)

    def model_copy(self: M, *, update: Optional[Mapping[str, Any]] = None, deep: bool = False) -> M:
        """A copy with ``update`` applied (validated as the constructor validates)."""
        import attrs

        source = copy.deepcopy(self) if deep else self
        result: M = attrs.evolve(source, **dict(update or {}))  # type: ignore[misc]  # attrs models only
        return result
