"""Semantic conventions: the span and attribute names agentlightning writes and reads (upstream v0.3 wire names)."""

from __future__ import annotations

import attrs

from ._modelcompat import ModelCompat
from ._strenum import ValueStrEnum

__all__ = [
    "AGL_ANNOTATION",
    "AGL_MESSAGE",
    "AGL_OBJECT",
    "AGL_EXCEPTION",
    "AGL_OPERATION",
    "AGL_REWARD",
    "AGL_VIRTUAL",
    "LightningResourceAttributes",
    "LightningSpanAttributes",
    "RewardAttributes",
    "LinkAttributes",
    "RewardPydanticModel",
    "LinkPydanticModel",
    "RewardDimension",
    "LinkSpec",
    "ExceptionAttributes",
]

AGL_ANNOTATION = "agentlightning.annotation"
AGL_MESSAGE = "agentlightning.message"
AGL_OBJECT = "agentlightning.object"
AGL_EXCEPTION = "agentlightning.exception"
AGL_OPERATION = "agentlightning.operation"
AGL_REWARD = "agentlightning.reward"
AGL_VIRTUAL = "agentlightning.virtual"


class LightningResourceAttributes(ValueStrEnum):
    """Resource-level attributes that tag spans with their store ids."""

    ROLLOUT_ID = "agentlightning.rollout_id"
    ATTEMPT_ID = "agentlightning.attempt_id"
    SPAN_SEQUENCE_ID = "agentlightning.span_sequence_id"
    TRACER_NAME = "agentlightning.tracer.name"


class LightningSpanAttributes(ValueStrEnum):
    """Span attributes. Names marked "prefix" are followed by ``.<index>`` or ``.<key>`` segments."""

    REWARD = "agentlightning.reward"  # prefix: agentlightning.reward.<i>.name / .value, index 0 = primary
    LINK = "agentlightning.link"  # prefix: agentlightning.link.<i>.key_match / .value_match
    TAG = "agentlightning.tag"  # prefix: agentlightning.tag.<i>
    MESSAGE_BODY = "agentlightning.message.body"
    OBJECT_TYPE = "agentlightning.object.type"
    OBJECT_LITERAL = "agentlightning.object.literal"
    OBJECT_JSON = "agentlightning.object.json"
    OPERATION_NAME = "agentlightning.operation.name"
    OPERATION_INPUT = "agentlightning.operation.input"  # prefix
    OPERATION_OUTPUT = "agentlightning.operation.output"  # prefix


class RewardAttributes(ValueStrEnum):
    REWARD_NAME = "name"
    REWARD_VALUE = "value"


class LinkAttributes(ValueStrEnum):
    KEY_MATCH = "key_match"
    VALUE_MATCH = "value_match"


class ExceptionAttributes(ValueStrEnum):
    """OpenTelemetry's exception attribute names."""

    TYPE = "exception.type"
    MESSAGE = "exception.message"
    ESCAPED = "exception.escaped"
    STACKTRACE = "exception.stacktrace"


@attrs.define(frozen=True)
class RewardDimension(ModelCompat):
    """One named reward value; the first dimension of a reward span is the primary one."""

    name: str
    value: float


@attrs.define(frozen=True)
class LinkSpec(ModelCompat):
    """A link from one span to others: spans whose ``key_match`` attribute equals ``value_match``."""

    key_match: str
    value_match: str


# Upstream's names for the same models (pydantic there, attrs here).
RewardPydanticModel = RewardDimension
LinkPydanticModel = LinkSpec
