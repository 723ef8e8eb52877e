"""The span model: an OpenTelemetry span as the store keeps it, tagged with its rollout, attempt and sequence id."""

from __future__ import annotations

import inspect
import time
from operator import itemgetter
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

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

T = TypeVar("T")


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
        if cls is not Span:  # subclasses may add fields: build them through __init__
            names = [f.name for f in attrs.fields(Span)]
            return cls(**dict(zip(names, _otel_fields(src, rollout_id, attempt_id, sequence_id), strict=True)))
        return _otel_span(_build_span, src, rollout_id, attempt_id, sequence_id)

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
_build_event: Callable[..., Event] = positional_builder(Event)
_build_link: Callable[..., Link] = positional_builder(Link)

_NO_TRACE_ID = "0" * 32
_NO_SPAN_ID = "0" * 16
_last_resource: List[Tuple[Any, Attributes, str]] = [(None, {}, "")]
"""The last OpenTelemetry resource converted, with its attributes and schema_url (a tracer's spans share one); one
tuple, replaced whole, so that concurrent converters never read a mix of two resources."""


_last_status: List[Tuple[Any, Any, Optional[str]]] = [(None, "UNSET", None)]
"""The last OpenTelemetry status converted, with its code's name and its description (a tracer's spans share the
SDK's few status objects, which are immutable); one tuple, replaced whole, as :data:`_last_resource`."""


def _status_parts(status: Any) -> Tuple[Any, Optional[str]]:
    """An OpenTelemetry ``Status``'s code name and description."""
    code = status.status_code
    code_name: Any = getattr(code, "_name_", None)  # an enum member's name, without the property
    if type(code_name) is not str:  # an object standing for the enum (a test double): its public name
        code_name = code.name
    return code_name, status.description


_readable_fields = itemgetter(
    "_context",
    "_parent",
    "_status",
    "_resource",
    "_attributes",
    "_events",
    "_links",
    "_start_time",
    "_end_time",
    "_name",
)
"""The fields the converter reads from an SDK ``ReadableSpan``'s ``__dict__``, in one C call."""

_HEX_CACHE_SIZE = 1024
_trace_hex: Dict[int, str] = {}
_span_hex: Dict[int, str] = {}
"""Trace ids and parent span ids formatted lately, by width: every span of a trace repeats them (bounded caches,
cleared when full; dict reads and writes are atomic, so concurrent converters at worst format an id twice)."""


def _repeated_hex(value: int, width: int) -> str:
    """The lower-case zero-padded hex of an id that recurs in a trace (its trace id, a parent's span id), formatted
    once lately (``to_bytes().hex()``: faster than ``"%032x" % value``)."""
    cache = _trace_hex if width == 16 else _span_hex
    found = cache.get(value)
    if found is None:
        if len(cache) >= _HEX_CACHE_SIZE:
            cache.clear()
        found = cache[value] = value.to_bytes(width, "big").hex()
    return found


_empty_trace_state: List[Any] = [None]
"""The last empty OpenTelemetry ``TraceState`` seen: the SDK gives every context the same default one, whose
emptiness is then known without a call of its Python ``__len__``."""


def _trace_state(state: Any) -> Dict[str, str]:
    if state is None or state is _empty_trace_state[0]:
        return {}
    if state:
        return dict(state)
    _empty_trace_state[0] = state
    return {}


_TUPLE_CONTEXTS: Dict[type, bool] = {}
"""Whether a class of OpenTelemetry ``SpanContext`` is the API's tuple ``(trace_id, span_id, is_remote, trace_flags,
trace_state, is_valid)``, whose fields are Python properties: such a context is unpacked at C speed instead."""


def _tuple_context(c: Any) -> bool:
    """Whether ``c``'s class keeps the API's tuple layout (learnt from its first instance, then remembered)."""
    cls = type(c)
    found = _TUPLE_CONTEXTS.get(cls)
    if found is None:
        found = isinstance(c, tuple) and len(c) == 6
        if found:
            found = c[0] == c.trace_id and c[1] == c.span_id and c[2] is c.is_remote and c[4] is c.trace_state
        _TUPLE_CONTEXTS[cls] = found
    return found


def _otel_context(c: Any, trace_hex: Optional[str] = None) -> SpanContext:
    """An OpenTelemetry ``SpanContext`` as ours (``trace_hex``: its trace id, already formatted)."""
    return _build_context(
        trace_hex or _repeated_hex(c.trace_id, 16),
        _repeated_hex(c.span_id, 8),
        bool(c.is_remote),
        _trace_state(c.trace_state),
        {},
    )


_READABLE_ACCESSORS = (
    "get_span_context",
    "parent",
    "status",
    "resource",
    "events",
    "links",
    "start_time",
    "end_time",
    "name",
    "attributes",
)
_PLAIN_READABLE: Dict[type, bool] = {}
"""Whether a class of span reads every field above through the SDK ``ReadableSpan``'s own accessors, each of which
returns one private attribute (``_context``, ``_parent``, ...; ``events`` and ``links`` a tuple of it): the converter
then reads the instance's attributes directly instead of calling ten Python properties per span."""


def _plain_readable(src: Any) -> bool:
    """Whether ``src``'s class keeps ``ReadableSpan``'s accessors (learnt once per class, then remembered)."""
    cls = type(src)
    found = _PLAIN_READABLE.get(cls)
    if found is None:
        try:
            from opentelemetry.sdk.trace import ReadableSpan
        except ImportError:  # pragma: no cover - the SDK made the span
            found = False
        else:
            found = all(
                inspect.getattr_static(cls, name, None) is inspect.getattr_static(ReadableSpan, name)
                for name in _READABLE_ACCESSORS
            ) and hasattr(src, "__dict__")
        _PLAIN_READABLE[cls] = found
    return found


def _otel_span(build: Callable[..., T], src: Any, rollout_id: str, attempt_id: str, sequence_id: int) -> T:
    """``build(*fields)`` of a finished OpenTelemetry SDK span's fields, in :class:`Span`'s field order.

    The hot path of ``add_otel_span``, written out inline (every helper call costs here): the context is read once
    (``get_span_context()``, not the deprecated ``context`` property), the ids that recur in a trace (its trace id,
    the parent's span id) are formatted once, and the resource, shared by every span of a tracer provider, is
    converted once (each span gets its own copy of the attributes dict).
    """
    fields = src.__dict__ if _PLAIN_READABLE.get(type(src)) or _plain_readable(src) else None
    if fields is not None:
        try:
            ctx, parent, status, resource, own, events, links, start, end, name = _readable_fields(fields)
        except KeyError:  # an instance its __init__ did not fill: through the accessors, as any other span
            fields = None
    if fields is None:
        get_context = getattr(src, "get_span_context", None)
        ctx = get_context() if get_context is not None else src.context
        parent, status, resource = src.parent, src.status, src.resource
        own = getattr(src, "_attributes", None)  # the SDK span's own mapping, skipping the copy ``attributes`` makes
        events, links, start, end, name = src.events, src.links, src.start_time, src.end_time, src.name
    trace_id: Any = None
    if ctx is not None:
        if _TUPLE_CONTEXTS.get(type(ctx)) or _tuple_context(ctx):
            trace_id, span_id, is_remote, _, state, _ = ctx
        else:
            trace_id, span_id, is_remote, state = ctx.trace_id, ctx.span_id, ctx.is_remote, ctx.trace_state
        trace_hex = _trace_hex.get(trace_id) or _repeated_hex(trace_id, 16)
        span_hex = span_id.to_bytes(8, "big").hex()  # a span's own id does not recur: not cached
        context: Optional[SpanContext] = _build_context(
            trace_hex,
            span_hex,
            bool(is_remote),
            {} if state is None or state is _empty_trace_state[0] else _trace_state(state),
            {},
        )
    else:
        trace_hex, span_hex, context = _NO_TRACE_ID, _NO_SPAN_ID, None
    if parent is not None:
        if _TUPLE_CONTEXTS.get(type(parent)) or _tuple_context(parent):
            parent_trace, parent_span, is_remote, _, state, _ = parent
        else:
            parent_trace, parent_span = parent.trace_id, parent.span_id
            is_remote, state = parent.is_remote, parent.trace_state
        parent_id: Optional[str] = _span_hex.get(parent_span) or _repeated_hex(parent_span, 8)
        parent_context: Optional[SpanContext] = _build_context(
            trace_hex if ctx is not None and parent_trace == trace_id else _repeated_hex(parent_trace, 16),
            parent_id,
            bool(is_remote),
            {} if state is None or state is _empty_trace_state[0] else _trace_state(state),
            {},
        )
    else:
        parent_context = parent_id = None
    if status is None:
        trace_status = _build_status("UNSET", None, {})
    else:
        last_status = _last_status[0]
        if status is not last_status[0]:
            last_status = _last_status[0] = (status, *_status_parts(status))
        trace_status = _build_status(last_status[1], last_status[2], {})
    last = _last_resource[0]
    if resource is not last[0]:
        if resource is None:
            last = (None, {}, "")
        else:
            last = (resource, _plain_attributes(resource.attributes), resource.schema_url or "")
        _last_resource[0] = last
    if type(own) is dict:  # a plain dict (no BoundedAttributes): copied at C speed unless it holds a tuple
        for value in own.values():  # a plain loop: cheaper than any C-level scan for a few values
            if type(value) is tuple:
                attributes = _plain_attributes(own)
                break
        else:
            attributes = own.copy()
    else:
        attributes = _plain_attributes(own if isinstance(own, Mapping) else src.attributes)
    return build(
        rollout_id,
        attempt_id,
        sequence_id,
        trace_hex,
        span_hex,
        parent_id,
        name,
        trace_status,
        attributes,
        [_build_event(e.name, _plain_attributes(e.attributes), convert_timestamp(e.timestamp), {}) for e in events]
        if events
        else [],
        [_build_link(_otel_context(x.context), _plain_attributes(x.attributes), {}) for x in links] if links else [],
        (start / 1e9 if start > 1e12 else float(start)) if start else None,  # convert_timestamp, inline
        (end / 1e9 if end > 1e12 else float(end)) if end else None,
        context,
        parent_context,
        _build_resource(last[1].copy(), last[2]),
        {},
    )


def _fields(*fields: Any) -> Tuple[Any, ...]:
    return fields


def _otel_fields(src: Any, rollout_id: str, attempt_id: str, sequence_id: int) -> Tuple[Any, ...]:
    """A finished OpenTelemetry SDK span's fields, in :class:`Span`'s field order."""
    return _otel_span(_fields, src, rollout_id, attempt_id, sequence_id)


def _span_attributes(src: Any) -> Any:
    """The SDK span's own attribute mapping (skipping the copy its ``attributes`` property makes), or, for any other
    object standing for a ``ReadableSpan``, its ``attributes``."""
    own = getattr(src, "_attributes", None)
    return own if isinstance(own, Mapping) else src.attributes


def _plain_attributes(attributes: Any) -> Attributes:
    """OpenTelemetry attribute mappings hold tuples for sequences; the store keeps JSON-friendly lists."""
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)  # the SDK's BoundedAttributes: read its dict, not the Mapping API
    items = inner.items() if type(inner) is dict or isinstance(inner, dict) else attributes.items()
    return {k: list(v) if type(v) is tuple else v for k, v in items}


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
