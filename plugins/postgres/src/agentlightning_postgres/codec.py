"""Records to JSON text and back, through the project's converter (:func:`agentlightning.types.to_dict`).

The text is pure ASCII (``ensure_ascii``): PostgreSQL text holds neither NUL characters nor lone surrogates, and
JSON escapes keep both.
"""

from __future__ import annotations

import json
from typing import Any, Type, TypeVar

from agentlightning.store.errors import InvalidRequestError
from agentlightning.types import from_dict, rollout_from_dict, to_dict
from agentlightning.types.core import Rollout

__all__ = ["encode", "decode", "decode_rollout"]

T = TypeVar("T")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def encode(record: Any) -> str:
    """A model as compact JSON; refuses values JSON cannot hold with an error naming the record."""
    try:
        return _dumps(to_dict(record))
    except (TypeError, ValueError) as exc:
        name = type(record).__name__
        ident = getattr(record, "rollout_id", None) or getattr(record, "resources_id", None) or ""
        raise InvalidRequestError(f"{name} {ident}".strip() + f" cannot be stored as JSON: {exc}") from exc


def decode(text: str, cls: Type[T]) -> T:
    return from_dict(json.loads(text), cls)


def decode_rollout(text: str) -> Rollout:
    """A Rollout, or an AttemptedRollout if one was stored."""
    return rollout_from_dict(json.loads(text))
