"""Emitters: record rewards, messages, objects, exceptions, annotations and operations in the active trace.

Outside a trace context an emitter warns (:class:`NoActiveTracerWarning`) and returns the span it would have
recorded; ``propagate=False`` builds the span without recording it and without warning.
"""

from __future__ import annotations

from ._common import NoActiveTracerWarning
from .annotation import emit_annotation
from .exception import emit_exception
from .message import emit_message, get_message_value
from .object import emit_object, encode_object, get_object_value
from .operation import OperationContext, operation
from .reward import (
    emit_reward,
    find_final_reward,
    find_reward_spans,
    get_reward_value,
    get_rewards_from_span,
    is_reward_span,
    reward,
)

__all__ = [
    "NoActiveTracerWarning",
    "emit_annotation",
    "emit_exception",
    "emit_message",
    "get_message_value",
    "emit_object",
    "encode_object",
    "get_object_value",
    "operation",
    "OperationContext",
    "emit_reward",
    "reward",
    "get_rewards_from_span",
    "get_reward_value",
    "is_reward_span",
    "find_reward_spans",
    "find_final_reward",
]
