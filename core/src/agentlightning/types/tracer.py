"""The span model: an OpenTelemetry span as the store keeps it, tagged with its rollout, attempt and sequence id."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Sequence, Union

import attrs

from agentlightning._modelcompat import ModelCompat
from agentlightning._strenum import ValueStrEnum

from .codegen import positional_builder
from .core import StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "AttributeValue",
    "Attributes",
    "SpanContext",
    "TraceStatus",
    "Event",
    "Link",
    "OtelResource",
    "SpanCoreFields",
    "Span",
    "SpanRecordingContext",
    "SpanNames",
    "SpanAttributeNames",
    "convert_timestamp",
]

AttributeValue = Union[str, bool, int, float, Sequence[Union[str, bool, int, float]]]
Attributes = Dict[str, Any]

VIRTUAL_SPAN_NAME = "agentlightning.virtual"


def _extras() -> Any:
    """A field that holds the JSON keys this model does not know, so that they survive a round trip."""
    return attrs.field(factory=dict, repr=False, eq=True, metadata={"extras": True})


def convert_timestamp(ts: Optional[float]) -> Optional[float]:
    """OpenTelemetry nanoseconds to float seconds; values already in seconds pass through; falsy becomes None."""
    if not ts:
        return None
    return ts / 1e9 if ts > 1e12 else float(ts)


@attrs.define(kw_only=True)
class SpanContext(ModelCompat):
    trace_id: str
    span_id: str
    is_remote: bool = False
    trace_state: Dict[str, str] = attrs.field(factory=dict)
    extras: Dict[str, Any] = _extras()


@attrs.define(kw_only=True)
class TraceStatus(ModelCompat):
    status_code: StatusCode = attrs.field(default="UNSET")
    description: Optional[str] = None
    extras: Dict[str, Any] = _extras()

    @status_code.validator
    def _check(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("UNSET", "OK", "ERROR"):
            raise ValueError(f"TraceStatus.status_code: {value!r} is not one of UNSET, OK, ERROR")


@attrs.define(kw_only=True)
class Event(ModelCompat):
    name: str
    attributes: Attributes = attrs.field(factory=dict)
    timestamp: Optional[float] = None
    extras: Dict[str, Any] = _extras()


@attrs.define(kw_only=True)
class Link(ModelCompat):
    context: SpanContext
    attributes: Optional[Attributes] = None
    extras: Dict[str, Any] = _extras()


@attrs.define(kw_only=True)
class OtelResource(ModelCompat):
    attributes: Attributes = attrs.field(factory=dict)
    schema_url: str = ""


@attrs.define(kw_only=True)
class SpanCoreFields(ModelCompat):
    """What an emitter or a recording context produces before the span is tagged with store ids."""

    name: str
    status: TraceStatus
    attributes: Attributes
    start_time: Optional[float]
    end_time: Optional[float]


class SpanRecordingContext(Protocol):
    def record_exception(self, exception: BaseException) -> None: ...
    def record_attributes(self, attributes: Attributes) -> None: ...
    def record_status(self, status_code: StatusCode, description: Optional[str] = None) -> None: ...
    def get_recorded_span(self) -> SpanCoreFields: ...


def _random_trace_id() -> str:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    return format(RandomIdGenerator().generate_trace_id(), "032x")


def _random_span_id() -> str:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    return format(RandomIdGenerator().generate_span_id(), "016x")


@attrs.define(kw_only=True)
class Span(ModelCompat):
    """A finished span as stored: OpenTelemetry's fields plus ``rollout_id``, ``attempt_id`` and ``sequence_id``.

    JSON keys this model does not know are kept in ``extras`` and written back out unchanged.
    """

    rollout_id: str
    attempt_id: str
    sequence_id: int
    trace_id: str
    span_id: str
    parent_id: Optional[str]
    name: str
    status: TraceStatus
    attributes: Attributes
    events: List[Event]
    links: List[Link]
    start_time: Optional[float]
    end_time: Optional[float]
    context: Optional[SpanContext]
    parent: Optional[SpanContext]
    resource: OtelResource
    extras: Dict[str, Any] = _extras()

    @classmethod
    def from_opentelemetry(cls, src: ReadableSpan, rollout_id: str, attempt_id: str, sequence_id: int) -> Span:
        """Convert a finished OpenTelemetry SDK span."""
        from opentelemetry.trace import format_span_id, format_trace_id

        ctx = src.context
        trace_id = format_trace_id(ctx.trace_id) if ctx else "0" * 32
        span_id = format_span_id(ctx.span_id) if ctx else "0" * 16
        parent = src.parent
        status_code: Any = src.status.status_code.name if src.status is not None else "UNSET"

        def to_context(c: Any) -> SpanContext:
            return SpanContext(
                trace_id=format_trace_id(c.trace_id),
                span_id=format_span_id(c.span_id),
                is_remote=bool(c.is_remote),
                trace_state=dict(c.trace_state or {}),
            )

        return cls(
            rollout_id=rollout_id,
            attempt_id=attempt_id,
            sequence_id=sequence_id,
            trace_id=trace_id,
            span_id=span_id,
            parent_id=format_span_id(parent.span_id) if parent is not None else None,
            name=src.name,
            status=TraceStatus(status_code=status_code, description=src.status.description if src.status else None),
            attributes=_plain_attributes(src.attributes),
            events=[
                Event(name=e.name, attributes=_plain_attributes(e.attributes), timestamp=convert_timestamp(e.timestamp))
                for e in src.events
            ],
            links=[
                Link(context=to_context(link.context), attributes=_plain_attributes(link.attributes))
                for link in src.links
            ],
            start_time=convert_timestamp(src.start_time),
            end_time=convert_timestamp(src.end_time),
            context=to_context(ctx) if ctx else None,
            parent=to_context(parent) if parent is not None else None,
            resource=OtelResource(
                attributes=_plain_attributes(src.resource.attributes), schema_url=src.resource.schema_url or ""
            ),
        )

    @classmethod
    def from_attributes(
        cls,
        *,
        attributes: Attributes,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
        sequence_id: Optional[int] = None,
        name: Optional[str] = None,
        trace_id: Optional[str] = None,
        span_id: Optional[str] = None,
        parent_id: Optional[str] = None,
        start_time: Optional[float] = None,
        end_time: Optional[float] = None,
        resource: Optional[OtelResource] = None,
        status: Optional[TraceStatus] = None,
    ) -> Span:
        """Build a span from attributes alone; missing ids are generated."""
        trace_id = trace_id or _random_trace_id()
        span_id = span_id or _random_span_id()
        if cls is Span:  # the common case, built without keyword parsing (subclasses may add fields: use __init__)
            return _build_span(
                rollout_id or "",
                attempt_id or "",
                sequence_id or 0,
                trace_id,
                span_id,
                parent_id,
                name or VIRTUAL_SPAN_NAME,
                status or _build_status("OK", None, {}),
                dict(attributes),
                [],
                [],
                start_time,
                end_time,
                _build_context(trace_id, span_id, False, {}, {}),
                _build_context(trace_id, parent_id, False, {}, {}) if parent_id else None,
                resource or _build_resource({}, ""),
                {},
            )
        return cls(
            rollout_id=rollout_id or "",
            attempt_id=attempt_id or "",
            sequence_id=sequence_id or 0,
            trace_id=trace_id,
            span_id=span_id,
            parent_id=parent_id,
            name=name or VIRTUAL_SPAN_NAME,
            status=status or TraceStatus(status_code="OK"),
            attributes=dict(attributes),
            events=[],
            links=[],
            start_time=start_time,
            end_time=end_time,
            context=SpanContext(trace_id=trace_id, span_id=span_id, is_remote=False),
            parent=SpanContext(trace_id=trace_id, span_id=parent_id, is_remote=False) if parent_id else None,
            resource=resource or OtelResource(attributes={}, schema_url=""),
        )

    @classmethod
    def from_core_fields(
        cls,
        core: SpanCoreFields,
        *,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
        sequence_id: Optional[int] = None,
    ) -> Span:
        """Tag an emitter's :class:`SpanCoreFields` with store ids."""
        return cls.from_attributes(
            attributes=core.attributes,
            rollout_id=rollout_id,
            attempt_id=attempt_id,
            sequence_id=sequence_id,
            name=core.name,
            status=core.status,
            start_time=core.start_time or time.time(),
            end_time=core.end_time,
        )


# ``Cls(...)`` with every field given positionally, generated from the field lists (hot paths build tens of
# thousands of spans): no keyword parsing, and no validation (only for values already checked: a copy of a stored
# span, or constants)
_build_span: Callable[..., Span] = positional_builder(Span)
_build_status: Callable[[StatusCode, Optional[str], Dict[str, Any]], TraceStatus] = positional_builder(TraceStatus)
_build_context: Callable[..., SpanContext] = positional_builder(SpanContext)
_build_resource: Callable[[Attributes, str], OtelResource] = positional_builder(OtelResource)


def _plain_attributes(attributes: Any) -> Attributes:
    """OpenTelemetry attribute mappings hold tuples for sequences; the store keeps JSON-friendly lists."""
    if not attributes:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}


class SpanNames(ValueStrEnum):
    """Span names upstream used before the semantic conventions module (kept for compatibility)."""

    REWARD = "agentlightning.reward"
    MESSAGE = "agentlightning.message"
    OBJECT = "agentlightning.object"
    EXCEPTION = "agentlightning.exception"
    VIRTUAL = VIRTUAL_SPAN_NAME
    ROLLOUT_ID = "agentlightning.rollout_id"
    ATTEMPT_ID = "agentlightning.attempt_id"
    SPAN_SEQUENCE_ID = "agentlightning.span_sequence_id"


class SpanAttributeNames(ValueStrEnum):
    MESSAGE = "message"
    OBJECT = "object"


def __getattr__(name: str) -> Any:
    """``SpanLike`` (upstream v0.3's ``Union[ReadableSpan, Span]``), built on first use: it needs the OTel SDK."""
    if name == "SpanLike":
        from opentelemetry.sdk.trace import ReadableSpan as _ReadableSpan

        value = Union[_ReadableSpan, Span]
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
